"""The conversations' REST routes: the list, one conversation, changing it, replying and notes.
Thin: parse and authorise here, the work is in hub/conversations; after a change every listener
hears of it (hub/web/changes.py), as after the same change on an inbox page."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from hub import conversations
from hub.contract.errors import StaleVersion
from hub.conversations import continuity
from hub.conversations.search.message_index import MessageIndexer
from hub.runtime.pacing import Pacer
from hub.runtime.workers import Worker
from hub.store.db import is_sqlite
from hub.store.search_text import search_text
from hub.web import openapi as doc
from hub.web import preconditions, schemas
from hub.web.capability import ApiDoc, Capability
from hub.web.changes import conversation_changed
from hub.web.errors import TooLarge, ValidationFailed, from_hub_error
from hub.web.http import AGENTS, MAX_ID, db, int_query, json_response, parse_body, path_id, principal
from hub.web.keys import BLOBS, ENGINE, INGEST_METER, SETTINGS, WORKER


async def list_conversations(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    q = request.query
    assignee_raw = q.get("assignee")
    if assignee_raw in (None, ""):
        assignee = None
    elif assignee_raw == "none":
        assignee = 0
    else:
        assignee = int_query(request, "assignee", low=1, high=MAX_ID)
    f = conversations.ConversationFilter(
        status=q.get("status") or None,
        channel=q.get("channel") or None,
        assignee=assignee,
        customer=int_query(request, "customer", low=1, high=MAX_ID),
        segment=q.get("segment") or None,
        q=search_text(q.get("q")),
        limit=int_query(request, "limit", low=1, high=conversations.MAX_PAGE) or 50,
        cursor=q.get("cursor") or None,
    )
    return json_response(await db(conversations.list_conversations, request.app[ENGINE], f))


def _versioned(conv: dict) -> web.Response:
    response = json_response(conv)
    response.headers["ETag"] = preconditions.etag(conv["version"])
    return response


async def get_conversation(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return _versioned(await db(conversations.get_conversation, request.app[ENGINE], path_id(request)))


async def patch_conversation(request: web.Request) -> web.Response:
    """Only the fields sent change; If-Match or `version` make the change conditional (409 with
    the current state, and its ETag, when the conversation moved on)."""
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.ConversationPatch)
    expected = preconditions.expected_version(request.headers.get("If-Match"), body.version)
    changes = body.model_dump(include=body.model_fields_set - {"version", "survey"})
    try:
        conv = await db(conversations.update_conversation, request.app[ENGINE], cid, changes, who, expected_version=expected,
                        survey=body.survey)
    except StaleVersion as exc:
        response = from_hub_error(exc)
        response.headers["ETag"] = preconditions.etag(exc.detail["version"])
        return response
    if changes:
        conversation_changed(request.app, cid)
    return _versioned(conv)


def reply_body_limit(settings) -> int:
    """A reply carries its files in base64 (4 bytes for every 3) beside its text: room for
    max_attachment_bytes of files on top of an ordinary body."""
    return settings.max_request_bytes + (settings.max_attachment_bytes + 2) // 3 * 4


async def post_reply(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    settings = request.app[SETTINGS]
    body = await parse_body(request, schemas.ReplyIn, limit=reply_body_limit(settings), setting="SERVICEHUB_MAX_ATTACHMENT_BYTES")
    files = []
    for i, att in enumerate(body.attachments):
        try:
            data = base64.b64decode(att.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(f"attachments.{i}.data_base64: not valid base64") from None
        files.append((att.filename, att.content_type, data))
    total = sum(len(data) for _, _, data in files)
    if total > settings.max_attachment_bytes:
        raise TooLarge(f"the attachments come to {total:,} bytes; a reply carries at most "
                       f"{settings.max_attachment_bytes:,} (SERVICEHUB_MAX_ATTACHMENT_BYTES)")
    message = await db(
        conversations.reply, request.app[ENGINE], cid, who, body.text, body.html, attachments=files,
        blobs=request.app[BLOBS], channel=body.channel,
    )
    request.app[WORKER].wake()
    conversation_changed(request.app, cid)
    return json_response(message, status=201)


async def post_note(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.NoteIn)
    note = await db(conversations.add_note, request.app[ENGINE], cid, who, body.text)
    conversation_changed(request.app, cid, moves_timers=False)
    return json_response(note, status=201)


# --- one customer, several conversations ------------------------------------------------------


async def move_message(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, schemas.MoveIn)
    done = await db(continuity.move_message, request.app[ENGINE], path_id(request), body.conversation_id, who)
    _changed_both(request.app, done)
    return json_response(done)


async def merge_conversation(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, schemas.ConversationMergeIn)
    done = await db(continuity.merge, request.app[ENGINE], body.source_id, path_id(request), who)
    _changed_both(request.app, done)
    return json_response(done)


async def undo_event(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    done = await db(continuity.undo, request.app[ENGINE], path_id(request), who)
    _changed_both(request.app, done)
    return json_response(done)


def _changed_both(app: web.Application, done: dict) -> None:
    conversation_changed(app, done["source_id"])
    conversation_changed(app, done["target_id"])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/conversations", list_conversations)
    app.router.add_get("/api/v1/conversations/{id}", get_conversation)
    app.router.add_patch("/api/v1/conversations/{id}", patch_conversation)
    app.router.add_post("/api/v1/conversations/{id}/replies", post_reply)
    app.router.add_post("/api/v1/conversations/{id}/notes", post_note)
    app.router.add_post("/api/v1/conversations/{id}/merge", merge_conversation)
    app.router.add_post("/api/v1/messages/{id}/move", move_message)
    app.router.add_post("/api/v1/events/{id}/undo", undo_event)


def workers(app: web.Application) -> list[Worker]:
    settings = app[SETTINGS]
    if not (is_sqlite(app[ENGINE]) and settings.message_indexer):
        return []
    # In every process, whatever outbox_inline_worker says: each batch is one write transaction
    # that starts from the watermark, so several indexers never index twice, and a process that
    # stores messages keeps its own searches off the LIKE fallback. It gets a larger share during
    # a burst than the other workers: it has to keep up with ingest.
    indexer = MessageIndexer(app[ENGINE], pacer=Pacer(app[INGEST_METER], share=settings.message_indexer_busy_share))
    return [Worker("message-indexer", indexer.run)]


def openapi() -> ApiDoc:
    s = schemas
    auth_errors = doc.errors(401, 403)
    list_params = [
        doc.query("status", {"type": "string", "enum": ["open", "pending", "resolved", "closed"]}, "conversation status"),
        doc.query("channel", {"type": "string", "maxLength": 32}, "channel name"),
        doc.query("assignee", {"type": "string", "pattern": "^([1-9][0-9]{0,8}|none)$"}, "agent id, or 'none' for unassigned"),
        doc.query("customer", doc.ID_SCHEMA, "customer id"),
        doc.query("segment", {"type": "string", "enum": ["general", "potential", "key"]}, "the customer's segment"),
        doc.query("q", {"type": "string", "maxLength": 200}, "text in subject, customer name or address"),
        doc.query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
        doc.query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
    ]
    paths = {
        "/api/v1/conversations": {
            "get": doc.op("List conversations, newest activity first",
                          {"200": doc.json_response(s.ConversationPage), **auth_errors, **doc.errors(400, 422)},
                          params=list_params, tags=["inbox"])
        },
        "/api/v1/conversations/{id}": {
            "get": doc.op("A conversation with its messages and their delivery state; its ETag names its version",
                          {"200": doc.versioned(s.ConversationDetail), **auth_errors, **doc.errors(400, 404)},
                          params=[doc.path_id()], tags=["inbox"]),
            "patch": doc.op("Change status, assignee or priority: only the fields sent. Conditional with If-Match or `version`: "
                            "a change made on an older version is refused (409, with the current state), never written over a newer one",
                            {"200": doc.versioned(s.ConversationDetail), **auth_errors, **doc.errors(400, 404, 413, 422),
                             "409": {**doc.json_response(s.StaleVersionOut, "the conversation changed since that version: nothing was written"),
                                     "headers": doc.ETAG}},
                            body=s.ConversationPatch, params=[doc.path_id(), doc.IF_MATCH], tags=["inbox"]),
        },
        "/api/v1/conversations/{id}/replies": {
            "post": doc.op("Reply to the customer on the conversation's channel (queued in the outbox); files in base64, up to "
                           "SERVICEHUB_MAX_ATTACHMENT_BYTES (25 MiB) in all",
                           {"201": doc.json_response(s.MessageOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                           body=s.ReplyIn, params=[doc.path_id()], tags=["inbox"])
        },
        "/api/v1/conversations/{id}/notes": {
            "post": doc.op("Add an internal note (never sent)",
                           {"201": doc.json_response(s.MessageOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                           body=s.NoteIn, params=[doc.path_id()], tags=["inbox"])
        },
        "/api/v1/conversations/{id}/merge": {
            "post": doc.op("Merge another conversation of the same customer into this one (undo from its event)",
                           {"200": doc.json_response(s.ContinuityOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                           body=s.ConversationMergeIn, params=[doc.path_id()], tags=["inbox"])
        },
        "/api/v1/messages/{id}/move": {
            "post": doc.op("Move a message to another conversation of the same customer (undo from its event)",
                           {"200": doc.json_response(s.ContinuityOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                           body=s.MoveIn, params=[doc.path_id()], tags=["inbox"])
        },
        "/api/v1/events/{id}/undo": {
            "post": doc.op("Undo a move or merge, once, from its event in the timeline",
                           {"200": doc.json_response(s.ContinuityOut), **auth_errors, **doc.errors(400, 404, 409)},
                           params=[doc.path_id()], tags=["inbox"])
        },
    }
    return ApiDoc(paths, [s.ConversationPatch, s.ReplyIn, s.NoteIn, s.ConversationPage, s.ConversationDetail, s.MessageOut,
                          s.StaleVersionOut, s.MoveIn, s.ConversationMergeIn, s.ContinuityOut])


capability = Capability("conversations", routes=add_routes, openapi=openapi, workers=workers)
