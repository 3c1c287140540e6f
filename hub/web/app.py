"""The aiohttp application, assembled from the hub's capabilities.

create_app(settings) makes the platform every capability shares (the store, the settings, sign-in,
the channel registry, metrics; hub/web/keys.py names them) and then, for each capability of
CAPABILITIES in order, its setup and its routes (hub/web/capability.py says what a capability
contributes). When the app starts, the capabilities' lifespans are entered in order, then their
background workers start (hub/runtime/workers.py); when it stops, all of it unwinds in reverse and
the store closes last. The OpenAPI document is built from the same list.

A process's role (create_app(settings, role=...): all, web or worker) is decided in
hub/runtime/roles.py and reaches the capabilities through their settings: a web process starts no
background worker of theirs, a worker's listener answers the probes only (hub/web/process.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from functools import lru_cache

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from hub.auth import routes as auth_routes
from hub.auth.accounts import Authenticator
from hub.config.settings import Settings
from hub.contract import errors
from hub.conversations import routes as conversation_routes
from hub.csat import routes as csat_routes
from hub.customers import routes as customer_routes
from hub.gateway import routes as channel_routes
from hub.gateway.registry import ChannelRegistry, build_registry
from hub.ingest import routes as ingest_routes
from hub.kb import routes as kb_routes
from hub.notifications import routes as notification_routes
from hub.outbox import web as outbox_web
from hub.privacy import routes as privacy_routes
from hub.reports import routes as report_routes
from hub.runtime import heap, roles
from hub.runtime import workers as background
from hub.runtime.pacing import IngestMeter
from hub.scm import routes as scm_routes
from hub.segments import routes as segment_routes
from hub.sla import routes as sla_routes
from hub.store.blobs import BlobStore
from hub.store.db import make_engine
from hub.store.migrate import upgrade
from hub.store.search_text import refuse_control_characters
from hub.web import inbox, operations, process
from hub.web.capability import Capability, check_order
from hub.web.errors import error_response, from_http_exception, from_hub_error
from hub.web.keys import (
    AUTH,
    BLOBS,
    CONVERSATION_LISTENERS,
    ENGINE,
    ERROR_PAGE,
    INGEST_LISTENERS,
    INGEST_METER,
    LOGIN_LIMITER,
    METRICS,
    OPENAPI,
    REGISTRY,
    ROLE,
    SETTINGS,
    TRUSTED_PROXIES,
)
from hub.web.metrics import HubMetrics
from hub.web.openapi import build_document
from hub.web.ratelimit import RateLimiter, parse_networks

log = logging.getLogger(__name__)

# Every capability of the web app, in the order they are set up and started (and stopped in
# reverse). The order is part of the design: `requires` says what must come earlier, and
# check_order refuses a list that breaks it.
# - process first: its elections and live events are there for every later capability, and its
#   lifespan closes the elections only after every worker (the elected loops among them) stopped;
# - outbox and ingest next: every later capability hands them messages;
# - scm before segments (customer values come from its back end) and before the inbox (orders on
#   the conversation page); scm's lifespan registers the escalation deliverer before any worker
#   (the outbox's included) starts, since workers start only after every lifespan;
# - channels last: they start once everything they hand messages to is in place, and stop first.
CAPABILITIES: tuple[Capability, ...] = (
    process.capability,
    operations.capability,
    auth_routes.capability,
    outbox_web.capability,
    ingest_routes.capability,
    conversation_routes.capability,
    customer_routes.capability,
    kb_routes.capability,
    scm_routes.capability,
    sla_routes.capability,
    segment_routes.capability,
    csat_routes.capability,
    report_routes.capability,
    privacy_routes.capability,
    inbox.capability,
    notification_routes.capability,
    channel_routes.capability,
)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.HubError as exc:
        return from_hub_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if _wants_json(request):
            return from_http_exception(exc)
        page = _error_page(request, exc.status, exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else "")
        if page is None:
            raise
        page.headers.update({k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")})
        return page
    except DBAPIError as exc:
        # The database is down or refusing: say so, keep serving, let the client retry.
        log.error("database error on %s %s: %s", request.method, request.path, exc)
        page = None if _wants_json(request) else _error_page(request, 503, "The hub cannot reach its database just now; try again shortly.")
        if page is not None:
            page.headers["Retry-After"] = "5"
            return page
        return error_response(503, "database_unavailable", "the store is unavailable; retry shortly", headers={"Retry-After": "5"})
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except ConnectionResetError as exc:
        if not _client_gone(request):
            raise  # a connection of the hub's own (to a back end) was reset: a real failure, logged below
        # The browser left (a tab closed, a page changed): nothing failed, and at ten agents an
        # ERROR with a traceback per page left would drown the real ones.
        log.debug("client went away during %s %s: %s", request.method, request.path, exc)
        return web.Response(status=499, text="client closed the connection")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        page = None if _wants_json(request) else _error_page(request, 500, "")
        return page or error_response(500, "internal_error", "the hub failed to handle this request; it has been logged")


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _error_page(request: web.Request, status: int, message: str) -> web.StreamResponse | None:
    """The page a browser sees for an error (the inbox's, when it is part of the app); None: none."""
    render = request.app.get(ERROR_PAGE)
    # The agents' pages and addresses no route knows; customer-facing pages (surveys, web forms)
    # answer in their own words and language.
    if render is None or not (request.path.startswith("/inbox") or request.match_info.http_exception is not None):
        return None
    try:
        return render(request, status, message)
    except Exception:  # the page itself failed: the plain answer is better than none
        log.exception("the error page for %s failed", request.path)
        return None


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz",) or "json" in request.headers.get("Accept", "")


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        request.app[METRICS].http.labels(request.method, route, str(status)).observe(time.perf_counter() - started)


@web.middleware
async def security_headers_middleware(request: web.Request, handler):
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
    return response


@web.middleware
async def readable_query_middleware(request: web.Request, handler):
    """A control character in a query parameter is a malformed request (400), whatever the route:
    PostgreSQL refuses a NUL in any text parameter, which looked like the store being down (503).
    JSON for API clients, plain text for pages (as the OpenAPI document says for every route)."""
    try:
        for name, value in request.query.items():
            refuse_control_characters(name, "a query parameter's name")
            refuse_control_characters(value, name[:40])
    except errors.UnreadableInput as exc:
        if _wants_json(request):
            return from_hub_error(exc)
        return web.Response(status=400, text=exc.message, content_type="text/plain")
    return await handler(request)


def create_app(settings: Settings, *, migrate: bool = True, registry: ChannelRegistry | None = None,
               capabilities: tuple[Capability, ...] = CAPABILITIES, role: str = "all") -> web.Application:
    """The app of a process of this role (hub/runtime/roles.py: web, worker or all)."""
    check_order(capabilities)
    settings = roles.settings_for(role, settings)
    if migrate:
        upgrade(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[metrics_middleware, error_middleware, security_headers_middleware, readable_query_middleware],
    )
    app[SETTINGS] = settings
    app[ROLE] = role
    app[ENGINE] = engine
    app[INGEST_LISTENERS] = []
    app[CONVERSATION_LISTENERS] = []
    app[INGEST_METER] = IngestMeter()
    app[INGEST_LISTENERS].append(app[INGEST_METER].arrived)
    app[METRICS] = HubMetrics(engine)
    app[AUTH] = Authenticator(engine, idle=timedelta(hours=settings.session_idle_hours))
    app[REGISTRY] = registry or build_registry(settings)
    app[LOGIN_LIMITER] = RateLimiter(settings.login_rate_per_minute)
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[BLOBS] = BlobStore(settings.blob_dir)
    app.cleanup_ctx.append(_store)
    for cap in capabilities:
        if cap.setup is not None:
            cap.setup(app)
    for cap in capabilities:
        if cap.routes is not None:
            cap.routes(app)
    app[OPENAPI] = _document(capabilities)
    app.cleanup_ctx.append(_running(capabilities))
    return app


@lru_cache(maxsize=4)
def _document(capabilities: tuple[Capability, ...]) -> dict:
    return build_document(capabilities)


def openapi_document() -> dict:
    """The OpenAPI document of the hub's capabilities (what /api/v1/openapi.json serves)."""
    return _document(CAPABILITIES)


async def _store(app: web.Application):
    """The store closes last, after every capability stopped."""
    yield
    app[ENGINE].dispose()


def _running(capabilities: tuple[Capability, ...]):
    async def run(app: web.Application):
        async with contextlib.AsyncExitStack() as stack:
            for cap in capabilities:
                if cap.lifespan is not None:
                    await stack.enter_async_context(cap.lifespan(app))
            heap.hold()
            stack.callback(heap.release)  # after every worker stopped
            for cap in capabilities:
                for worker in cap.workers(app) if cap.workers is not None else ():
                    stack.push_async_callback(background.start(worker).stop)
            heap.settle("the hub started")
            yield

    return run
