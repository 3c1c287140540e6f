"""REST API v1 handlers: thin. Parse and authorise here; the work is in plain functions."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import text

from hub.auth import accounts as auth
from hub.conversations import continuity
from hub.conversations import core as conversations
from hub.customers import profiles as customers
from hub.customers import linking
from hub.auth import lockout
from hub.ingest import spool
from hub.contract.errors import PermissionDenied, RejectedInput, StaleVersion, TooManyRequests, Unauthenticated
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.store.search_text import search_text
from hub.web import preconditions, schemas
from hub.web.app import AUTH, BLOBS, ENGINE, LOGIN_LIMITER, METRICS, REGISTRY, SETTINGS, SPOOL, WORKER, client_key, ingest_message
from hub.web.errors import BadRequest, TooLarge, ValidationFailed, error_response, from_hub_error
from hub.web.openapi import openapi_document

M = TypeVar("M", bound=BaseModel)
SESSION_COOKIE = "servicehub_session"
AGENTS = ("agent", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _json(data, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data, ensure_ascii=False), content_type="application/json")


# Bodies over this are decoded and validated in a worker thread, not on the event loop.
_LARGE_BODY = 256 * 1024


async def read_body(request: web.Request, limit: int | None = None, *, setting: str = "SERVICEHUB_MAX_REQUEST_BYTES") -> bytes:
    """The request body, refused with 413 (TooLarge) past `limit` bytes (default: the app's
    max_request_bytes) as soon as it is known to be over, from Content-Length or while reading.
    Routes that take large documents pass their own limit and the setting that sets it."""
    limit = request.app[SETTINGS].max_request_bytes if limit is None else limit
    too_large = TooLarge(f"the request body is larger than this route accepts ({limit:,} bytes; {setting})")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    if limit <= request.client_max_size:
        # aiohttp's own reading (it keeps the body, for a handler that looked at it already).
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise too_large from None
        if len(body) > limit:
            raise too_large
        return body
    # More than the app's client_max_size: read here, counting (request.read() stops at the app's).
    body = bytearray()
    async for chunk in request.content.iter_any():  # decoded (a gzip body counts as it unpacks)
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _decode_model(raw: bytes, model: type[M]) -> M:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        first = problems[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationFailed(f"{where}: {first['msg']}", detail=problems) from None


async def parse_body(request: web.Request, model: type[M], *, limit: int | None = None,
                     setting: str = "SERVICEHUB_MAX_REQUEST_BYTES") -> M:
    """The JSON body as `model`: 413 past the route's limit (read_body), 400 when it is not a JSON
    object, 422 with every problem when a field is wrong."""
    raw = await read_body(request, limit, setting=setting)
    if not raw:
        raise BadRequest("the request needs a JSON body")
    if len(raw) > _LARGE_BODY:
        return await asyncio.to_thread(_decode_model, raw, model)
    return _decode_model(raw, model)


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or not (1 <= int(raw) <= 2_147_483_647):
        raise BadRequest(f"{name} must be a positive integer")
    return int(raw)


def principal(request: web.Request, *roles: str) -> auth.Principal:
    """Authenticate (bearer token or session cookie) and authorise for one of `roles`."""
    header = request.headers.get("Authorization", "")
    from_cookie = False
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        token = token.strip()
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        from_cookie = True
        if not token:
            raise Unauthenticated("log in or send 'Authorization: Bearer <token>'")
    who = request.app[AUTH].resolve(token)
    if from_cookie and request.method in UNSAFE and not auth.csrf_ok(who, request.headers.get("X-CSRF-Token")):
        # A cookie is sent by the browser on its own; the CSRF token proves the page sent it.
        raise PermissionDenied("missing or wrong X-CSRF-Token header for a cookie-authenticated request")
    if roles and who.role not in roles:
        raise PermissionDenied(f"this needs the role {' or '.join(roles)}; the caller has {who.role!r}")
    return who


async def db(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


# --- ingest -----------------------------------------------------------------------------------


async def post_message(request: web.Request) -> web.Response:
    principal(request, "integration")
    body = await parse_body(request, schemas.MessageIn)
    if body.channel not in request.app[REGISTRY].names():
        raise RejectedInput(f"unknown channel {body.channel!r}; known: {', '.join(request.app[REGISTRY].names())}")
    msg = InboundMessage(
        channel=body.channel,
        external_id=body.external_id,
        sender=Sender(body.sender.address, body.sender.name, body.sender.kind),
        subject=body.subject,
        text=body.text or "",
        html=body.html,
        sent_at=body.sent_at,
        thread=ThreadHints(in_reply_to=tuple(body.in_reply_to), conversation_id=body.conversation_id),
        metadata=body.metadata,
    )
    result = await ingest_message(request.app, msg)
    return _json(
        {
            "customer_id": result.customer_id,
            "conversation_id": result.conversation_id,
            "message_id": result.message_id,
            "created": result.created,
        },
        status=201 if result.created else 200,
    )


# --- inbox ------------------------------------------------------------------------------------


def _int_query(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not (low <= int(raw) <= high):
        raise RejectedInput(f"{name} must be an integer from {low} to {high}")
    return int(raw)


async def list_conversations(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    q = request.query
    assignee_raw = q.get("assignee")
    if assignee_raw in (None, ""):
        assignee = None
    elif assignee_raw == "none":
        assignee = 0
    else:
        assignee = _int_query(request, "assignee", low=1, high=2_147_483_647)
    f = conversations.ConversationFilter(
        status=q.get("status") or None,
        channel=q.get("channel") or None,
        assignee=assignee,
        customer=_int_query(request, "customer", low=1, high=2_147_483_647),
        segment=q.get("segment") or None,
        q=search_text(q.get("q")),
        limit=_int_query(request, "limit", low=1, high=conversations.MAX_PAGE) or 50,
        cursor=q.get("cursor") or None,
    )
    return _json(await db(conversations.list_conversations, request.app[ENGINE], f))


def _versioned(conv: dict) -> web.Response:
    response = _json(conv)
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
    changes = body.model_dump(include=body.model_fields_set - {"version"})
    try:
        conv = await db(conversations.update_conversation, request.app[ENGINE], cid, changes, who, expected_version=expected)
    except StaleVersion as exc:
        response = from_hub_error(exc)
        response.headers["ETag"] = preconditions.etag(exc.detail["version"])
        return response
    return _versioned(conv)


async def post_reply(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.ReplyIn)
    files = []
    for i, att in enumerate(body.attachments):
        try:
            data = base64.b64decode(att.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(f"attachments.{i}.data_base64: not valid base64") from None
        files.append((att.filename, att.content_type, data))
    message = await db(
        conversations.reply, request.app[ENGINE], cid, who, body.text, body.html, attachments=files,
        blobs=request.app[BLOBS], channel=body.channel,
    )
    request.app[WORKER].wake()
    return _json(message, status=201)


async def post_note(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    cid = path_id(request)
    body = await parse_body(request, schemas.NoteIn)
    return _json(await db(conversations.add_note, request.app[ENGINE], cid, who, body.text), status=201)


# --- one customer, several conversations ------------------------------------------------------


async def move_message(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, schemas.MoveIn)
    return _json(await db(continuity.move_message, request.app[ENGINE], path_id(request), body.conversation_id, who))


async def merge_conversation(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    body = await parse_body(request, schemas.ConversationMergeIn)
    return _json(await db(continuity.merge, request.app[ENGINE], body.source_id, path_id(request), who))


async def undo_event(request: web.Request) -> web.Response:
    who = principal(request, *AGENTS)
    return _json(await db(continuity.undo, request.app[ENGINE], path_id(request), who))


# --- customers --------------------------------------------------------------------------------


async def get_customer(request: web.Request) -> web.Response:
    principal(request, *AGENTS)
    return _json(await db(customers.get_customer, request.app[ENGINE], path_id(request)))


async def merge_customer(request: web.Request) -> web.Response:
    who = principal(request, "admin")
    target = path_id(request)
    body = await parse_body(request, schemas.MergeIn)
    return _json(await db(customers.merge_customers, request.app[ENGINE], target, body.customer_id, who))


async def issue_link_code(request: web.Request) -> web.Response:
    """A one-time code that links another channel to this customer (Telegram: /start CODE)."""
    who = principal(request, *AGENTS)
    customer_id = path_id(request)
    code, expires = await db(linking.issue_code, request.app[ENGINE], customer_id, actor=who.actor)
    return _json({"code": code, "expires_at": conversations.iso(expires)}, status=201)


async def unlink_identity(request: web.Request) -> web.Response:
    """Take an identity a link code attached off the customer (hub.customers.linking.unlink_identity)."""
    who = principal(request, *AGENTS)
    customer_id, identity_id = path_id(request), path_id(request, "identity_id")
    await db(linking.unlink_identity, request.app[ENGINE], customer_id, identity_id, who)
    return _json(await db(customers.get_customer, request.app[ENGINE], customer_id))


async def list_rejected(request: web.Request) -> web.Response:
    """Inbound items that could not be stored (unreadable mail, oversized...), with the reason."""
    principal(request, "admin")
    channel = request.query.get("channel") or None
    limit = _int_query(request, "limit", low=1, high=500) or 100
    return _json({"items": await db(spool.rejected, request.app[ENGINE], channel=channel, limit=limit)})


async def retry_rejected(request: web.Request) -> web.Response:
    """Put a rejected inbound item back in the spool (after a fix, or with a larger time budget)."""
    who = principal(request, "admin")
    item_id = path_id(request)
    body = await parse_body(request, schemas.RetryIn) if await request.read() else schemas.RetryIn()
    item = await db(spool.retry, request.app[ENGINE], item_id, actor=who.actor, budget_seconds=body.budget_seconds)
    request.app[SPOOL].wake(item["channel"])
    return _json(item, status=202)


# --- auth -------------------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    wait = request.app[LOGIN_LIMITER].check(client_key(request))
    if wait:
        raise TooManyRequests("too many login attempts; wait and try again", retry_after=wait)
    body = await parse_body(request, schemas.LoginIn)
    settings = request.app[SETTINGS]
    engine = request.app[ENGINE]
    # The per-account lock-out (hub/auth/lockout.py) holds for the API as for the sign-in page, so a
    # guesser cannot switch to the API to get around it.
    await db(lockout.check, engine, body.email)
    try:
        session = await db(auth.login, engine, body.email, body.password, days=settings.session_days)
    except Unauthenticated:
        await db(lockout.record_failure, engine, body.email)
        raise
    await db(lockout.clear, engine, body.email)
    who = session.principal
    response = _json(
        {
            "token": session.token,
            "csrf_token": session.csrf_token,
            "agent": {"kind": who.kind, "id": who.id, "role": who.role, "name": who.name},
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=int(settings.session_days * 86400),
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.Response:
    principal(request)
    token = request.headers.get("Authorization", "").partition(" ")[2].strip() or request.cookies.get(SESSION_COOKIE, "")
    await db(auth.logout, request.app[ENGINE], token)
    request.app[AUTH].forget(token)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return _json({"kind": who.kind, "id": who.id, "role": who.role, "name": who.name})


# --- operations -------------------------------------------------------------------------------


def _ping(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def healthz(request: web.Request) -> web.Response:
    try:
        await db(_ping, request.app[ENGINE])
    except Exception as exc:
        return error_response(503, "database_unavailable", f"the store does not answer: {type(exc).__name__}")
    return _json({"status": "ok", "database": "ok"})


def _metrics_allowed(request: web.Request) -> None:
    """With metrics_token set, /metrics answers only a scraper that presents it: the figures tell
    an outsider how busy the desk is and which back ends fail."""
    token = request.app[SETTINGS].metrics_token
    if token is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode("utf-8", "replace"), expected):
        raise Unauthenticated("/metrics needs 'Authorization: Bearer <metrics_token>' (the metrics_token setting)")


async def metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    _metrics_allowed(request)

    body = await db(generate_latest, request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())


async def index(request: web.Request) -> web.Response:
    # People who open the hub's address want the inbox (it sends them to sign in first).
    raise web.HTTPFound("/inbox")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/api/v1/conversations", list_conversations)
    app.router.add_get("/api/v1/conversations/{id}", get_conversation)
    app.router.add_patch("/api/v1/conversations/{id}", patch_conversation)
    app.router.add_post("/api/v1/conversations/{id}/replies", post_reply)
    app.router.add_post("/api/v1/conversations/{id}/notes", post_note)
    app.router.add_post("/api/v1/conversations/{id}/merge", merge_conversation)
    app.router.add_post("/api/v1/messages/{id}/move", move_message)
    app.router.add_post("/api/v1/events/{id}/undo", undo_event)
    app.router.add_get("/api/v1/customers/{id}", get_customer)
    app.router.add_post("/api/v1/customers/{id}/merge", merge_customer)
    app.router.add_post("/api/v1/customers/{id}/link-codes", issue_link_code)
    app.router.add_delete("/api/v1/customers/{id}/identities/{identity_id}", unlink_identity)
    app.router.add_get("/api/v1/inbound/rejected", list_rejected)
    app.router.add_post("/api/v1/inbound/rejected/{id}/retry", retry_rejected)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)
