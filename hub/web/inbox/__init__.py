"""The unified inbox: server-rendered pages for agents, live through server-sent events.

pages.py: sign-in, the inbox list, a conversation and what agents do in it; live.py: the event
stream and presence; admin.py: the admin pages; common.py: templates, session and CSRF. The logic
lives in hub/ (inbox_list, timeline, read_marks, macros, mentions, lockout, presence, staff,
channel_status).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from hub.web.capability import ApiDoc, Capability
from hub.web.keys import ERROR_PAGE, INBOX_JINJA

STATIC = Path(__file__).parent / "static"
# The only files served from /inbox/static/: a fixed list, never a path from the request.
ASSETS = {"inbox.css": "text/css", "i18n.js": "text/javascript", "inbox.js": "text/javascript", "pages.css": "text/css", "admin.js": "text/javascript",
          "list.js": "text/javascript", "customer.js": "text/javascript", "people.js": "text/javascript", "panel.css": "text/css"}
FAVICON = STATIC / "favicon.svg"


def _versions() -> dict[str, str]:
    return {name: hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12] for name in ASSETS}


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound(text="no such file")
    # Versioned URLs (?v=<content hash>): a changed file gets a new URL, so caching it long is safe.
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "public, max-age=86400"})


async def favicon(request: web.Request) -> web.StreamResponse:
    # Browsers ask /favicon.ico of every page whatever the page links: the same small SVG answers.
    return web.FileResponse(FAVICON, headers={"Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"})


def setup(app: web.Application) -> None:
    """The pages' templates (with versioned asset URLs), the error page and the live-update broadcaster."""
    from hub.web.inbox import common, live

    common.setup_templates(app)
    app[ERROR_PAGE] = common.error_page
    versions = _versions()
    app[INBOX_JINJA].globals["asset"] = lambda name: f"/inbox/static/{name}?v={versions[name]}"
    live.setup(app)


def add_routes(app: web.Application) -> None:
    """The inbox pages, their static files and the live-update stream."""
    from hub.web.inbox import admin, customer_panel, directory, links, list_actions, live, pages, privacy, profile, reports, resolve

    live.add_routes(app)
    customer_panel.add_routes(app)
    directory.add_routes(app)
    pages.add_routes(app)
    profile.add_routes(app)
    admin.add_routes(app)
    links.add_routes(app)
    privacy.add_routes(app)
    reports.add_routes(app)
    resolve.add_routes(app)
    list_actions.add_routes(app)
    app.router.add_get("/inbox/static/{name}", static_file)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/favicon.svg", favicon)


def workers(app: web.Application) -> list:
    from hub.web.inbox import live

    return live.workers(app)


def openapi() -> ApiDoc:
    return ApiDoc(openapi_paths())


def openapi_paths() -> dict:
    """The inbox's routes in the hub's OpenAPI document: pages for browsers, not JSON, documented
    like every route so the contract test holds them to it. Without a session cookie every page
    redirects to the sign-in page."""
    text = {"type": "string"}

    def html(description: str) -> dict:
        return {"description": description, "content": {"text/html": {"schema": text}}}

    def errors(*codes: int) -> dict:
        reasons = {400: "the request cannot be read", 403: "not allowed: the role, or a missing or stale CSRF token",
                   404: "no such conversation, customer, message or file", 409: "conflicts with the current state",
                   413: "the request is too large", 422: "the input cannot be accepted; the page says why",
                   429: "too many attempts; see Retry-After"}
        out = {str(c): html(reasons[c]) for c in codes}
        for c in (413, 400):  # aiohttp itself answers these in plain text before any handler runs
            if str(c) in out:
                out[str(c)]["content"]["text/plain"] = {"schema": text}
        return out

    redirect = {"description": "to the sign-in page (no session), or back to the page after a change",
                "headers": {"Location": {"schema": {"type": "string"}}}}
    ident = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    form = {"type": "object", "additionalProperties": True,
            "description": "the page's form fields, with its CSRF token in _csrf"}
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form},
                                          "multipart/form-data": {"schema": form}}}
    session = [{"session": []}]
    tags = ["inbox"]

    def page(summary: str, *, params=(), query=(), codes=(403, 404, 422)) -> dict:
        return {"get": {"summary": summary, "tags": tags, "security": session, "parameters": [*params, *query],
                        "responses": {"200": html(summary), "303": redirect, **errors(*codes)}}}

    def action(summary: str, *, params=(), codes=(400, 403, 404, 409, 413, 422)) -> dict:
        return {"post": {"summary": summary, "tags": tags, "security": session, "parameters": list(params),
                         "requestBody": body,
                         "responses": {"200": html("the resulting page"), "201": html("created (shown once)"),
                                       "303": redirect, **errors(*codes)}}}

    def q(name: str, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": description}

    list_query = [q("view", "mine | unassigned | open | sla | all"), q("channel", "a channel name"),
                  q("status", "open | pending | resolved | closed"), q("q", "search text"),
                  q("sort", "activity | priority"), q("segment", "general | potential | key"),
                  q("cursor", "the next page's cursor"), q("within", "all (a search looks everywhere) | view (only in the view)"),
                  q("tag", "conversations with this tag")]
    paths = {
        "/inbox/login": {
            "get": {"summary": "The sign-in page", "tags": tags, "security": [], "parameters": [q("next", "where to go after")],
                    "responses": {"200": html("the sign-in form")}},
            "post": {"summary": "Sign in (sets the session cookie)", "tags": tags, "security": [], "requestBody": body,
                     "responses": {"303": redirect, "401": html("wrong email or password"),
                                   **errors(400, 403, 413, 429)}},
        },
        "/inbox/logout": action("Sign out (ends the session)"),
        "/inbox/availability": action("Set my availability for automatic assignment"),
        "/inbox/language": action("Set my interface language (en, zh)"),
        "/inbox": page("The inbox list", query=list_query, codes=(400, 403, 404, 422)),
        "/inbox/list": page("The inbox list's pane alone: views, filters, rows, next page (for the page's script)",
                            query=list_query, codes=(400, 403, 404, 422)),
        "/inbox/rows": page("The inbox list's rows (for live refresh)", query=list_query, codes=(400, 403, 404, 422)),
        "/inbox/events": {"get": {"summary": "The page's live stream (server-sent events)", "tags": tags, "security": session,
                                  "parameters": [q("conversation", "the conversation the page shows")],
                                  "responses": {"200": {"description": "text/event-stream",
                                                        "content": {"text/event-stream": {"schema": text}}},
                                                "303": redirect, **errors(403, 422)}}},
        "/inbox/presence": {"post": {"summary": "Heartbeat: the agent types in a conversation", "tags": tags,
                                     "security": session, "requestBody": body,
                                     "responses": {"200": {"description": "who views the conversation",
                                                           "content": {"application/json": {"schema": {"type": "object"}}}},
                                                   "303": redirect,
                                                   **{str(c): {"description": "refused", "content": {"application/json": {
                                                       "schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
                                                      for c in (400, 403, 413, 422)}}}},
        "/inbox/c/{id}": page("A conversation with the customer's whole timeline", params=[ident],
                              query=[q("macro", "a canned response to put in the reply")]),
        "/inbox/c/{id}/timeline": page("A conversation's timeline (for live refresh)", params=[ident]),
        "/inbox/c/{id}/pane": page("A conversation's panes alone (the workspace opens it beside the list)", params=[ident]),
        "/inbox/c/{id}/recipient": page("The composer's reply form alone, with whom the reply goes to (for the page's script)",
                                        params=[ident]),
        "/inbox/c/{id}/suggestions": page("The knowledge base's suggestions for a conversation (while it loads)", params=[ident]),
        "/inbox/c/{id}/reply": action("Reply to the customer (JSON for the page's script when it asks)", params=[ident]),
        "/inbox/c/{id}/note": action("Add an internal note (JSON for the page's script when it asks)", params=[ident]),
        "/inbox/c/{id}/update": action("Change status, priority, assignee: only the fields changed, on the version the page "
                                       "showed (409 and the current state when it changed meanwhile; JSON for the page's script)",
                                       params=[ident]),
        "/inbox/c/{id}/state": {"get": {"summary": "The side panel's values and version now (for the page's script)",
                                        "tags": tags, "security": session, "parameters": [ident],
                                        "responses": {"200": {"description": "status, priority, assignee and version",
                                                              "content": {"application/json": {"schema": {"type": "object"}}}},
                                                      "303": redirect, **errors(403, 404, 422)}}},
        "/inbox/c/{id}/resolve": page("The resolve control: whether resolving sends a satisfaction survey, and to whom "
                                      "(a page, or the form alone with fragment=1)", params=[ident],
                                      query=[q("fragment", "1: the control alone, for the page's script")]),
        "/inbox/bulk": action("One change (assign, resolve, tag, untag, snooze) to the checked rows of the list", codes=(400, 403, 413, 422)),
        "/inbox/c/{id}/tags": {**page("The conversation's tag editor (a fragment)", params=[ident]),
                               **action("Add a tag to the conversation, or take one off", params=[ident])},
        "/inbox/c/{id}/snooze": action("Snooze the conversation until a preset or a time", params=[ident]),
        "/inbox/c/{id}/escalate": action("Escalate to the back office", params=[ident]),
        "/inbox/messages/{id}/retry": action("Retry a failed delivery", params=[ident]),
        "/inbox/messages/{id}/move": action("Move a message to another conversation of the same customer", params=[ident]),
        "/inbox/c/{id}/merge": action("Merge another conversation of the same customer into this one", params=[ident]),
        "/inbox/events/{id}/undo": action("Undo a move or merge from its event in the timeline", params=[ident]),
        "/inbox/attachments/{id}": {"get": {"summary": "Download an attachment", "tags": tags, "security": session,
                                            "parameters": [ident],
                                            "responses": {"200": {"description": "the file, as a download",
                                                                  "content": {"application/octet-stream": {"schema": text}}},
                                                          "303": redirect, **errors(403, 404, 422)}}},
        "/inbox/customers": page("The customer directory, newest first, or those whose name or an address holds q",
                                 query=[q("q", "search text"), q("cursor", "the next page's cursor")], codes=(400, 403, 404, 422)),
        "/inbox/customers/{id}": page("A customer: identities and conversations", params=[ident]),
        "/inbox/customers/{id}/merge": {
            **page("Review merging another customer into this one (admin)", params=[ident],
                   query=[q("other", "the other customer's id")]),
            **action("Merge another customer into this one (admin)", params=[ident]),
        },
        "/inbox/customers/{id}/link-codes": action("Issue a link code for the customer (shown once)", params=[ident]),
        "/inbox/customers/{id}/identities/{identity_id}/unlink": action(
            "Take an identity a link code attached off the customer",
            params=[ident, {**ident, "name": "identity_id"}]),
        "/inbox/static/{name}": {"get": {"summary": "The inbox's stylesheet and script", "tags": tags, "security": [],
                                         "parameters": [{"name": "name", "in": "path", "required": True,
                                                         "schema": {"type": "string"}}],
                                         "responses": {"200": {"description": "the file", "content": {
                                             "text/css": {"schema": text}, "text/javascript": {"schema": text}}},
                                             "404": html("no such file (the error page)")}}},
    }
    icon = {"get": {"summary": "The hub's icon (SVG)", "tags": tags, "security": [], "parameters": [],
                    "responses": {"200": {"description": "the icon", "content": {"image/svg+xml": {"schema": text}}}}}}
    paths["/favicon.ico"] = icon
    paths["/favicon.svg"] = icon
    for section, summary in (("agents", "Agents"), ("tokens", "API tokens"), ("channels", "Channel status"),
                             ("macros", "Canned responses"), ("kb", "Knowledge base articles"), ("forms", "Web forms")):
        paths[f"/inbox/admin/{section}"] = (page(f"Admin: {summary}", query=[q("q", "search")], codes=(400, 403, 404, 422))
                                            if section == "kb" else page(f"Admin: {summary}"))
        if section in ("agents", "tokens", "macros"):
            paths[f"/inbox/admin/{section}"].update(action(f"Admin: change {summary.lower()}"))
    paths["/inbox/admin"] = page("Admin: start page")
    article = {**ident, "description": "the article's id"}
    paths["/inbox/admin/kb/new"] = {**page("Knowledge base: write a new article"),
                                    **action("Knowledge base: save a new article (draft, or published by an admin)")}
    paths["/inbox/admin/kb/{id}"] = {**page("Knowledge base: the article's editor with a preview and its use", params=[article]),
                                     **action("Knowledge base: save, publish, unpublish, delete or preview the article",
                                              params=[article])}
    paths["/inbox/admin/kb/preview"] = action("Knowledge base: the Markdown as the sanitised HTML the article will show")
    from hub.web.inbox import privacy, reports

    paths.update(privacy.openapi_paths())
    paths.update(reports.openapi_paths())
    for path in ("/inbox/bulk", "/inbox/c/{id}/tags", "/inbox/c/{id}/snooze"):  # the list's script asks for JSON
        post = paths[path]["post"]["responses"]
        post["200"] = {"description": "done (JSON for the page's script, else the resulting page)",
                       "content": {**post["200"]["content"], "application/json": {"schema": {"type": "object"}}}}
    from hub.web.inbox import customer_panel

    paths.update(customer_panel.openapi_paths(page, action, ident, q))
    return paths


# The pages show SLA timers, the back end's orders, privacy requests and reports, so those capabilities come first.
capability = Capability("inbox", setup=setup, routes=add_routes, openapi=openapi, workers=workers,
                        requires=("conversations", "sla", "scm", "privacy", "reports"))
