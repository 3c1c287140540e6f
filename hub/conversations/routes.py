"""The conversations' REST routes: the list, one conversation, changing it, replying and notes.
Thin: parse and authorise here, the work is in hub/conversations; after a change every listener
hears of it (hub/web/changes.py), as after the same change on an inbox page."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from hub import conversations
from hub.contract import clock
from hub.contract.errors import StaleVersion
from hub.conversations import bulk, continuity, tags
from hub.conversations import snooze as snoozing
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
from hub.web.keys import BLOBS, BROADCASTER, ENGINE, INGEST_METER, LIVE_EVENTS, SETTINGS, SNOOZE_WORKER, WORKER
from hub.web.process import elected


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
        tag=tags.tag_name(q["tag"]) if q.get("tag") else None,
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


# --- tags, snooze, bulk ------------------------------------------------------------------------


async def get_tags(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    cid = path_id(request)
    return json_response({"conversation_id": cid, "tags": await db(tags.conversation_tags, request.app[ENGINE], cid)})


async def post_tag(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.TagIn)
    now = await db(tags.add_tag, request.app[ENGINE], cid, body.tag, who)
    conversation_changed(request.app, cid, moves_timers=False)
    return json_response({"conversation_id": cid, "tags": now})


async def delete_tag(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    now = await db(tags.remove_tag, request.app[ENGINE], cid, request.match_info["tag"], who)
    conversation_changed(request.app, cid, moves_timers=False)
    return json_response({"conversation_id": cid, "tags": now})


async def list_known_tags(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return json_response({"tags": await db(tags.known_tags, request.app[ENGINE])})


async def post_snooze(request: web.Request) -> web.Response:
    """Until a time or a preset; conditional on `version` as PATCH is."""
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.SnoozeIn)
    until = body.until or snoozing.preset_time(body.preset, clock.now())
    try:
        conv = await db(snoozing.snooze, request.app[ENGINE], cid, until, who, expected_version=body.version)
    except StaleVersion as exc:
        response = from_hub_error(exc)
        response.headers["ETag"] = preconditions.etag(exc.detail["version"])
        return response
    conversation_changed(request.app, cid)
    return _versioned(conv)


async def post_bulk(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, schemas.BulkIn)
    until = body.until or (snoozing.preset_time(body.preset, clock.now()) if body.preset else None)
    change = bulk.BulkChange(body.action, assignee_id=body.assignee_id, tag=body.tag, until=until)
    done = await db(bulk.apply, request.app[ENGINE], body.ids, change, who)
    changed_all(request.app, done, change)
    return json_response(done)


def changed_all(app: web.Application, done: dict, change: bulk.BulkChange) -> None:
    """Every listener hears of each conversation a bulk change changed, as after one change."""
    for result in done["results"]:
        if result["ok"]:
            conversation_changed(app, result["id"], moves_timers=bulk.MOVES_TIMERS[change.action])


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
    app.router.add_post("/api/v1/conversations/bulk", post_bulk)
    app.router.add_get("/api/v1/tags", list_known_tags)
    app.router.add_get("/api/v1/conversations/{id}/tags", get_tags)
    app.router.add_post("/api/v1/conversations/{id}/tags", post_tag)
    app.router.add_delete("/api/v1/conversations/{id}/tags/{tag}", delete_tag)
    app.router.add_post("/api/v1/conversations/{id}/snooze", post_snooze)
    app.router.add_get("/api/v1/conversations/{id}", get_conversation)
    app.router.add_patch("/api/v1/conversations/{id}", patch_conversation)
    app.router.add_post("/api/v1/conversations/{id}/replies", post_reply)
    app.router.add_post("/api/v1/conversations/{id}/notes", post_note)
    app.router.add_post("/api/v1/conversations/{id}/merge", merge_conversation)
    app.router.add_post("/api/v1/messages/{id}/move", move_message)
    app.router.add_post("/api/v1/events/{id}/undo", undo_event)


def workers(app: web.Application) -> list[Worker]:
    return _indexer(app) + _snooze_worker(app)


def _snooze_worker(app: web.Application) -> list[Worker]:
    """Wakes snoozed conversations when their time comes: in one process at a time (like the SLA
    loop), where background loops run."""
    if not app[SETTINGS].outbox_inline_worker:
        return []

    def woke(one: dict) -> None:
        conversation_changed(app, one["conversation_id"])
        event = {"type": "snooze_back", "conversation_id": one["conversation_id"], "assignee_id": one["assignee_id"]}
        broadcaster = app.get(BROADCASTER)
        if broadcaster is not None:
            broadcaster.publish(event)
        elsewhere = app.get(LIVE_EVENTS)
        if elsewhere is not None:
            elsewhere.publish(event)

    worker = snoozing.SnoozeWorker(app[ENGINE], on_wake=woke, poll_seconds=app[SETTINGS].snooze_poll_seconds)
    app[SNOOZE_WORKER] = worker
    return [elected(app, "snooze", Worker("snooze-worker", worker.run))]


def _indexer(app: web.Application) -> list[Worker]:
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
        doc.query("tag", {"type": "string", "maxLength": 50}, "conversations with this tag"),
        doc.query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)"),
        doc.query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
    ]
    paths = {
        "/api/v1/conversations": {
            "get": doc.op("List conversations, newest activity first",
                          {"200": doc.json_response(s.ConversationPage), **auth_errors, **doc.errors(400, 422)},
                          params=list_params, tags=["inbox"])
        },
        "/api/v1/conversations/bulk": {
            "post": doc.op("One change (assign, resolve, tag, untag, snooze) to up to 200 conversations; each succeeds or fails "
                           "on its own, with the same checks and side effects as the change made to it alone",
                           {"200": doc.json_response(s.BulkOut), **auth_errors, **doc.errors(400, 413, 422)},
                           body=s.BulkIn, tags=["inbox"])
        },
        "/api/v1/tags": {
            "get": doc.op("The tags in use, most used first", {"200": doc.json_response(s.KnownTags), **auth_errors}, tags=["inbox"])
        },
        "/api/v1/conversations/{id}/tags": {
            "get": doc.op("The conversation's tags", {"200": doc.json_response(s.TagsOut), **auth_errors, **doc.errors(400, 404)},
                          params=[doc.path_id()], tags=["inbox"]),
            "post": doc.op("Tag the conversation (a tag it has already is no change)",
                           {"200": doc.json_response(s.TagsOut), **auth_errors, **doc.errors(400, 404, 413, 422)},
                           body=s.TagIn, params=[doc.path_id()], tags=["inbox"]),
        },
        "/api/v1/conversations/{id}/tags/{tag}": {
            "delete": doc.op("Take a tag off the conversation (a tag it does not have is no change)",
                             {"200": doc.json_response(s.TagsOut), **auth_errors, **doc.errors(400, 404, 422)},
                             params=[doc.path_id(), {"name": "tag", "in": "path", "required": True,
                                                     "schema": {"type": "string", "minLength": 1, "maxLength": 50}}],
                             tags=["inbox"]),
        },
        "/api/v1/conversations/{id}/snooze": {
            "post": doc.op("Snooze until a time or a preset: the conversation leaves the open views and opens again by itself "
                           "(at the top of the list) when the time comes, or when the customer writes",
                           {"200": doc.versioned(s.ConversationDetail), **auth_errors, **doc.errors(400, 404, 413, 422),
                            "409": {**doc.json_response(s.StaleVersionOut, "the conversation changed since that version: nothing was written"),
                                    "headers": doc.ETAG}},
                           body=s.SnoozeIn, params=[doc.path_id()], tags=["inbox"]),
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
    return ApiDoc(paths, [s.BulkIn, s.BulkOut, s.TagIn, s.TagsOut, s.KnownTags, s.SnoozeIn, s.ConversationPatch, s.ReplyIn, s.NoteIn, s.ConversationPage, s.ConversationDetail, s.MessageOut,
                          s.StaleVersionOut, s.MoveIn, s.ConversationMergeIn, s.ContinuityOut])


capability = Capability("conversations", routes=add_routes, openapi=openapi, workers=workers)
