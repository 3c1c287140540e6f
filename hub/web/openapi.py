"""The OpenAPI 3.1 document of the REST API, built from the pydantic shapes in schemas.py."""

from __future__ import annotations

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from channels.voice.record import CallIn
from hub.web import forms, schemas as s

_MODELS = [
    s.MessageIn, s.IngestOut, s.ConversationPatch, s.ReplyIn, s.NoteIn, s.MergeIn, s.LoginIn, s.ErrorOut,
    s.ConversationPage, s.ConversationDetail, s.MessageOut, s.CustomerOut, s.LoginOut, s.AgentOut, s.Health,
    s.LinkCodeOut, s.RejectedPage, s.StaleVersionOut, s.RejectedItem, s.RetryIn, CallIn,
    s.MoveIn, s.ConversationMergeIn, s.ContinuityOut,
]


def _ref(model) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model, description: str = "") -> dict:
    return {"description": description or model.__name__, "content": {"application/json": {"schema": _ref(model)}}}


_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
_ID = {"type": "integer", "minimum": 1, "maximum": 2147483647}


# A conversation's version as an entity tag (hub/web/preconditions.py).
_ETAG = {"ETag": {"description": 'the conversation\'s version, W/"<version>": send it back in If-Match with a change',
                  "schema": {"type": "string"}}}
_IF_MATCH = {
    "name": "If-Match", "in": "header", "required": False,
    "schema": {"type": "string", "maxLength": 200, "pattern": '^(\\*|(W/)?"[1-9][0-9]{0,9}")$'},
    "description": 'the ETag of the version this change was made on (W/"7" or "7"; one tag). If the conversation has '
                   "another version now, nothing is changed and the answer is 409 with its current state. "
                   '"*" or no header: no precondition, each field sent is written. The body\'s `version` does the same.',
}


def _versioned(model, description: str = "") -> dict:
    return {**_json(model, description), "headers": _ETAG}


def _errors(*codes: int) -> dict:
    return {str(code): _ERR for code in codes}


def _op(summary: str, responses: dict, *, body=None, params=None, security=True, tags=None) -> dict:
    op: dict = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    if not security:
        op["security"] = []
    if tags:
        op["tags"] = tags
    return op


def _path_id(name: str = "id") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_UNREADABLE_QUERY = {
    "description": "a query parameter holds a control character (NUL...): the request is malformed",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}},
                "text/plain": {"schema": {"type": "string"}}},
}


def _document_unreadable_queries(paths: dict) -> None:
    """Every operation with query parameters can answer 400 (hub/web/app.py's readable_query_middleware)."""
    for item in paths.values():
        for op in item.values():
            if any(p.get("in") == "query" for p in op.get("parameters", ())):
                existing = op["responses"].get("400")
                if existing is None:
                    op["responses"]["400"] = _UNREADABLE_QUERY
                else:  # a copy: response objects are shared between operations
                    op["responses"]["400"] = {**existing, "content": {**_UNREADABLE_QUERY["content"], **existing.get("content", {})}}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    from hub.web import inbox
    from hub.csat import routes as csat_api
    from hub.kb import routes as kb_api
    from hub.reports import routes as reports_api
    from hub.scm import routes as scm_api
    from hub.segments import routes as segments_api
    from hub.sla import routes as sla_api

    extensions = [kb_api, scm_api, sla_api, segments_api, csat_api, reports_api]
    models = [*_MODELS, *(m for module in extensions for m in module.OPENAPI_MODELS)]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    components = defs.get("$defs", {})
    auth_errors = _errors(401, 403)
    list_params = [
        _query("status", {"type": "string", "enum": ["open", "pending", "resolved", "closed"]}, "conversation status"),
        _query("channel", {"type": "string", "maxLength": 32}, "channel name"),
        _query("assignee", {"type": "string", "pattern": "^([1-9][0-9]{0,8}|none)$"}, "agent id, or 'none' for unassigned"),
        _query("customer", _ID, "customer id"),
        _query("segment", {"type": "string", "enum": ["general", "potential", "key"]}, "the customer's segment"),
        _query("q", {"type": "string", "maxLength": 200}, "text in subject, customer name or address"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
        _query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
    ]
    paths = {
        "/api/v1/messages": {
            "post": _op(
                "Ingest a message (integration token). The generic API channel.",
                {"201": _json(s.IngestOut, "stored"), "200": _json(s.IngestOut, "a duplicate: already stored"),
                 **_errors(400, 401, 403, 413, 422)},
                body=s.MessageIn, tags=["ingest"],
            )
        },
        "/api/v1/calls": {
            "post": _op(
                "Ingest a phone call with its transcript (integration token): structured turns, or a "
                "transcript document (WebVTT, SubRip, Amazon Transcribe / Call Analytics / Contact Lens / "
                "Post-Call Analytics, Deepgram, AssemblyAI, Whisper JSON, or 'Agent:'/'Customer:' text)",
                {"201": _json(s.IngestOut, "stored"), "200": _json(s.IngestOut, "a duplicate: this call id was stored before"),
                 **_errors(400, 401, 403, 413, 422)},
                body=CallIn, tags=["ingest"],
            )
        },
        "/api/v1/conversations": {
            "get": _op("List conversations, newest activity first", {"200": _json(s.ConversationPage), **auth_errors, **_errors(400, 422)},
                       params=list_params, tags=["inbox"])
        },
        "/api/v1/conversations/{id}": {
            "get": _op("A conversation with its messages and their delivery state; its ETag names its version",
                       {"200": _versioned(s.ConversationDetail), **auth_errors, **_errors(400, 404)}, params=[_path_id()],
                       tags=["inbox"]),
            "patch": _op("Change status, assignee or priority: only the fields sent. Conditional with If-Match or `version`: "
                         "a change made on an older version is refused (409, with the current state), never written over a newer one",
                         {"200": _versioned(s.ConversationDetail), **auth_errors, **_errors(400, 404, 413, 422),
                          "409": {**_json(s.StaleVersionOut, "the conversation changed since that version: nothing was written"),
                                  "headers": _ETAG}},
                         body=s.ConversationPatch, params=[_path_id(), _IF_MATCH], tags=["inbox"]),
        },
        "/api/v1/conversations/{id}/replies": {
            "post": _op("Reply to the customer on the conversation's channel (queued in the outbox)",
                        {"201": _json(s.MessageOut), **auth_errors, **_errors(400, 404, 413, 422)},
                        body=s.ReplyIn, params=[_path_id()], tags=["inbox"])
        },
        "/api/v1/conversations/{id}/notes": {
            "post": _op("Add an internal note (never sent)", {"201": _json(s.MessageOut), **auth_errors, **_errors(400, 404, 413, 422)},
                        body=s.NoteIn, params=[_path_id()], tags=["inbox"])
        },
        "/api/v1/customers/{id}": {
            "get": _op("A customer: identities and conversations across channels",
                       {"200": _json(s.CustomerOut), **auth_errors, **_errors(400, 404)}, params=[_path_id()], tags=["customers"])
        },
        "/api/v1/messages/{id}/move": {
            "post": _op("Move a message to another conversation of the same customer (undo from its event)",
                        {"200": _json(s.ContinuityOut), **auth_errors, **_errors(400, 404, 413, 422)},
                        body=s.MoveIn, params=[_path_id()], tags=["inbox"])
        },
        "/api/v1/conversations/{id}/merge": {
            "post": _op("Merge another conversation of the same customer into this one (undo from its event)",
                        {"200": _json(s.ContinuityOut), **auth_errors, **_errors(400, 404, 413, 422)},
                        body=s.ConversationMergeIn, params=[_path_id()], tags=["inbox"])
        },
        "/api/v1/events/{id}/undo": {
            "post": _op("Undo a move or merge, once, from its event in the timeline",
                        {"200": _json(s.ContinuityOut), **auth_errors, **_errors(400, 404, 409)},
                        params=[_path_id()], tags=["inbox"])
        },
        "/api/v1/customers/{id}/merge": {
            "post": _op("Merge another customer into this one (admin)",
                        {"200": _json(s.CustomerOut), **auth_errors, **_errors(400, 404, 409, 413, 422)},
                        body=s.MergeIn, params=[_path_id()], tags=["customers"])
        },
        "/api/v1/customers/{id}/link-codes": {
            "post": _op("Issue a one-time code that links another channel to this customer",
                        {"201": _json(s.LinkCodeOut), **auth_errors, **_errors(400, 404)}, params=[_path_id()], tags=["customers"])
        },
        "/api/v1/customers/{id}/identities/{identity_id}": {
            "delete": _op("Take an identity a link code attached off the customer: it moves to a profile of its own "
                          "with the conversations only it wrote in (audit-logged)",
                          {"200": _json(s.CustomerOut), **auth_errors, **_errors(400, 404, 409)},
                          params=[_path_id(), _path_id("identity_id")], tags=["customers"])
        },
        "/api/v1/inbound/rejected": {
            "get": _op("Inbound items that could not be stored, with the reason (admin)",
                       {"200": _json(s.RejectedPage), **auth_errors, **_errors(422)},
                       params=[_query("channel", {"type": "string", "maxLength": 32}, "channel name"),
                               _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most (default 100)")],
                       tags=["ops"])
        },
        "/api/v1/inbound/rejected/{id}/retry": {
            "post": {
                **_op("Retry a rejected inbound item, optionally with a larger time budget (admin)",
                      {"202": _json(s.RejectedItem, "queued again"), **auth_errors, **_errors(400, 404, 409, 413, 422)},
                      params=[_path_id()], tags=["ops"]),
                "requestBody": {"required": False, "content": {"application/json": {"schema": _ref(s.RetryIn)}}},
            }
        },
        "/api/v1/auth/login": {
            "post": _op("Agent login: a session cookie and a bearer token",
                        {"200": _json(s.LoginOut), **_errors(400, 401, 413, 422, 429)}, body=s.LoginIn, security=False, tags=["auth"])
        },
        "/api/v1/auth/logout": {
            "post": _op("End the current session", {"204": {"description": "logged out"}, **auth_errors}, tags=["auth"])
        },
        "/api/v1/auth/me": {
            "get": _op("Who the caller is", {"200": _json(s.AgentOut), **auth_errors}, tags=["auth"])
        },
        "/healthz": {
            "get": _op("Liveness and database reachability", {"200": _json(s.Health), "503": _ERR}, security=False, tags=["ops"])
        },
        "/metrics": {
            "get": _op("Prometheus metrics (with metrics_token set: 'Authorization: Bearer <metrics_token>')",
                       {"200": {"description": "text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                        **_errors(401)},
                       security=False, tags=["ops"])
        },
        "/api/v1/openapi.json": {
            "get": _op("This document", {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                       security=False, tags=["ops"])
        },
    }
    paths.update(forms.openapi_paths())
    for module in extensions:
        paths.update(module.openapi_paths())
    paths.update(inbox.openapi_paths())
    _document_unreadable_queries(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "servicehub API", "version": "1", "description": "Omnichannel customer-service hub. "
                 "Errors are {\"error\": {\"code\", \"message\"}}."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API token or agent session token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "servicehub_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
