"""What every route handler uses: JSON answers, reading and validating bodies, path and query
numbers, who the caller is (and may they), and running store work off the event loop."""

from __future__ import annotations

import asyncio
import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from hub.auth import csrf_ok
from hub.contract.errors import PermissionDenied, RejectedInput, Unauthenticated
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.web.errors import BadRequest, TooLarge, ValidationFailed
from hub.web.keys import AUTH, SETTINGS, TRUSTED_PROXIES
from hub.web.ratelimit import client_address
from hub.web.ratelimit import client_key as address_key

M = TypeVar("M", bound=BaseModel)
SESSION_COOKIE = "servicehub_session"
# The roles that work conversations (an integration or back-office token does not).
AGENTS = ("agent", "admin")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
MAX_ID = 2_147_483_647

# Bodies over this are decoded and validated in a worker thread, not on the event loop.
_LARGE_BODY = 256 * 1024


def json_response(data, status: int = 200) -> web.Response:
    """`data` as JSON, non-ASCII kept as it is."""
    return web.Response(status=status, text=json.dumps(data, ensure_ascii=False), content_type="application/json")


async def db(fn, *args, **kwargs):
    """Run blocking store work in a thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def read_body(request: web.Request, limit: int | None = None, *, setting: str = "SERVICEHUB_MAX_REQUEST_BYTES") -> bytes:
    """The request body, refused with 413 (TooLarge) past `limit` bytes (default: the app's
    max_request_bytes) as soon as it is known to be over, from Content-Length or while reading.
    Routes that take large documents pass their own limit and the setting that sets it."""
    limit = request.app[SETTINGS].max_request_bytes if limit is None else limit
    too_large = TooLarge(N_("the request body is larger than this route accepts (%(limit)s bytes; %(setting)s)"),
                         params={"limit": f"{limit:,}", "setting": setting})
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
    """A path segment that must be a database id (400 otherwise, before any query)."""
    raw = request.match_info[name]
    if not raw.isdigit() or not (1 <= int(raw) <= MAX_ID):
        raise BadRequest(f"{name} must be a positive integer")
    return int(raw)


def int_query(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    """An optional integer query parameter within [low, high] (422 otherwise); None when absent or empty."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not (low <= int(raw) <= high):
        raise RejectedInput(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def principal(request: web.Request, *roles: str) -> Principal:
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
    if from_cookie and request.method in UNSAFE and not csrf_ok(who, request.headers.get("X-CSRF-Token")):
        # A cookie is sent by the browser on its own; the CSRF token proves the page sent it.
        raise PermissionDenied("missing or wrong X-CSRF-Token header for a cookie-authenticated request")
    if roles and who.role not in roles:
        raise PermissionDenied(f"this needs the role {' or '.join(roles)}; the caller has {who.role!r}")
    return who


def client_key(request: web.Request) -> str:
    """What every rate limit counts a request by: the client's address (through trusted proxies
    only), an IPv6 client by its /64. The one place the web layer reads who a client is."""
    return address_key(client_address(request.remote, request.headers.getall("X-Forwarded-For", ()), request.app[TRUSTED_PROXIES]))
