"""The web form's routes in the hub's OpenAPI document (the hub merges them in through the channel
registry): pages for browsers, not JSON, but documented like every route so the contract test can
hold them to it."""

from __future__ import annotations

from channels.webform.form import HONEYPOT_FIELD, TOKEN_FIELD
from channels.webform.pages import ASSETS_PATH

ASSETS = {"webform.css": "text/css", "frame.js": "text/javascript"}
OPENAPI_MODELS: list = []


def openapi_paths() -> dict:
    """The paths of the form pages and their assets."""
    page = {"type": "string"}
    router_404 = {"description": "no such form", "content": {
        "text/html": {"schema": page}, "text/plain": {"schema": page},
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}

    def html(description: str) -> dict:
        return {"description": description, "content": {"text/html": {"schema": page}}}

    slug = {"name": "slug", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}}
    submission = {
        "type": "object",
        "description": "the form's fields by name (files as parts with a filename), its token and the honeypot",
        "properties": {TOKEN_FIELD: {"type": "string"}, HONEYPOT_FIELD: {"type": "string", "maxLength": 0}},
        "additionalProperties": True,
    }

    def operations(where: str) -> dict:
        return {
            "get": {"summary": f"The form {where}", "tags": ["web forms"], "security": [], "parameters": [slug],
                    "responses": {"200": html("the form"), "404": router_404}},
            "post": {
                "summary": f"Send the form {where}",
                "tags": ["web forms"], "security": [], "parameters": [slug],
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": submission},
                    "application/x-www-form-urlencoded": {"schema": submission}}},
                "responses": {
                    "200": html("the confirmation with the conversation reference"),
                    "400": {"description": "the body is not a form", "content": {
                        "text/html": {"schema": page}, "text/plain": {"schema": page}}},
                    "403": html("the form token is missing or invalid; nothing stored"),
                    "404": router_404,
                    "413": html("the files are too large"),
                    "422": html("the form again, with its errors and the values kept"),
                    "429": html("too many submissions from this client; see Retry-After"),
                },
            },
        }

    def asset(content_type: str) -> dict:
        return {"get": {"summary": "A static file of the form pages", "tags": ["web forms"], "security": [],
                        "responses": {"200": {"description": "the file", "content": {content_type: {"schema": page}}}}}}

    return {
        "/forms/{slug}": operations("as a page of its own"),
        "/forms/{slug}/embed": operations("for an iframe on another site"),
        "/forms/{slug}/embed.js": {"get": {
            "summary": "A script that inserts the embeddable form where it is included",
            "tags": ["web forms"], "security": [], "parameters": [slug],
            "responses": {"200": {"description": "the script", "content": {"text/javascript": {"schema": page}}},
                          "404": router_404}}},
        **{f"{ASSETS_PATH}/{name}": asset(content_type) for name, content_type in ASSETS.items()},
    }
