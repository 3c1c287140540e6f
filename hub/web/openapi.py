"""The OpenAPI 3.1 document of the hub's HTTP routes, assembled from what each capability
contributes (Capability.openapi: its paths and the pydantic models they use), and the helpers
capabilities write their parts with. This module imports no capability: hub/web/app.py hands it
the list."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic.json_schema import models_json_schema

from hub.web.capability import Capability
from hub.web.schemas import ErrorOut

ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2147483647}

# A conversation's version as an entity tag (hub/web/preconditions.py).
ETAG = {"ETag": {"description": 'the conversation\'s version, W/"<version>": send it back in If-Match with a change',
                 "schema": {"type": "string"}}}
IF_MATCH = {
    "name": "If-Match", "in": "header", "required": False,
    "schema": {"type": "string", "maxLength": 200, "pattern": '^(\\*|(W/)?"[1-9][0-9]{0,9}")$'},
    "description": 'the ETag of the version this change was made on (W/"7" or "7"; one tag). If the conversation has '
                   "another version now, nothing is changed and the answer is 409 with its current state. "
                   '"*" or no header: no precondition, each field sent is written. The body\'s `version` does the same.',
}


def ref(model) -> dict:
    """A reference to a pydantic model in components/schemas."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_response(model, description: str = "") -> dict:
    """A response whose JSON body is `model`."""
    return {"description": description or model.__name__, "content": {"application/json": {"schema": ref(model)}}}


def versioned(model, description: str = "") -> dict:
    """A JSON response that carries the conversation's version in ETag."""
    return {**json_response(model, description), "headers": ETAG}


def errors(*codes: int) -> dict:
    """The error body ({"error": {"code", "message"}}) for each status code."""
    return {str(code): ERROR for code in codes}


def op(summary: str, responses: dict, *, body=None, params=None, security=True, tags=None) -> dict:
    """An operation; `body` a pydantic model for a required JSON body; security=False for a public route."""
    out: dict = {"summary": summary, "responses": responses}
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    if params:
        out["parameters"] = params
    if not security:
        out["security"] = []
    if tags:
        out["tags"] = tags
    return out


def path_id(name: str = "id") -> dict:
    """A path parameter that is a database id."""
    return {"name": name, "in": "path", "required": True, "schema": ID_SCHEMA}


def query(name: str, schema: dict, description: str) -> dict:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_UNREADABLE_QUERY = {
    "description": "a query parameter holds a control character (NUL...): the request is malformed",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}},
                "text/plain": {"schema": {"type": "string"}}},
}


def _document_unreadable_queries(paths: dict) -> None:
    """Every operation with query parameters can answer 400 (hub/web/app.py's readable_query_middleware)."""
    for item in paths.values():
        for operation in item.values():
            if any(p.get("in") == "query" for p in operation.get("parameters", ())):
                existing = operation["responses"].get("400")
                if existing is None:
                    operation["responses"]["400"] = _UNREADABLE_QUERY
                else:  # a copy: response objects are shared between operations
                    operation["responses"]["400"] = {**existing, "content": {**_UNREADABLE_QUERY["content"], **existing.get("content", {})}}


def build_document(capabilities: Iterable[Capability]) -> dict:
    """The document of the given capabilities' routes, in their order. Two capabilities documenting
    the same path and method is a mistake in the list, refused here rather than one hiding the other."""
    paths: dict = {}
    models: list = [ErrorOut]
    for cap in capabilities:
        if cap.openapi is None:
            continue
        part = cap.openapi()
        for path, item in part.paths.items():
            clash = set(item) & set(paths.get(path, {}))
            if clash:
                raise ValueError(f"capability {cap.name!r} documents {', '.join(sorted(clash)).upper()} {path} again")
            paths.setdefault(path, {}).update(item)
        models.extend(m for m in part.models if m not in models)
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    _document_unreadable_queries(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "servicehub API", "version": "1", "description": "Omnichannel customer-service hub. "
                 "Errors are {\"error\": {\"code\", \"message\"}}."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API token or agent session token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "servicehub_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
