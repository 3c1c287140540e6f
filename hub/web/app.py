"""The aiohttp application: create_app(settings) wires the store, the ingest writer, the outbox
worker, the channels and the routes. Shared objects live in AppKeys; background work starts and
stops in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import timedelta

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from hub.contract import errors
from hub.auth.accounts import Authenticator
from hub.store.blobs import BlobStore
from hub.runtime.budget import paused
from hub.gateway.registry import ChannelRegistry, build_registry
from hub.store.db import is_sqlite, make_engine
from hub.ingest.pipeline import IngestPolicy
from hub.web.metrics import HubMetrics
from hub.store.migrate import upgrade
from hub.conversations.message_search import MessageIndexer
from hub.runtime.pacing import IngestMeter, Pacer
from hub.outbox.queue import OutboxWorker
from hub.store.workqueue import RetryPolicy
from hub.runtime.parser_pool import ParserPool
from hub.web.ratelimit import RateLimiter, client_address, parse_networks
from hub.web.ratelimit import client_key as _rate_key
from hub.store.search_text import refuse_control_characters
from hub.config.settings import Settings
from hub.contract.signing import message_id_key
from hub.ingest.spool import Spooler, SpoolWorker, load_state, reject, save_state, store_in_turn
from hub.web.errors import error_response, from_hub_error, from_http_exception
from hub.ingest.writer import IngestWriter

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", object)
WRITER = web.AppKey("writer", IngestWriter)
AUTH = web.AppKey("auth", Authenticator)
REGISTRY = web.AppKey("registry", ChannelRegistry)
WORKER = web.AppKey("worker", OutboxWorker)
SPOOL = web.AppKey("spool", SpoolWorker)
SPOOLER = web.AppKey("spooler", Spooler)
# None when the channels' parsers run in threads (settings.parser_processes = 0).
PARSERS = web.AppKey("parsers", object)
BLOBS = web.AppKey("blobs", BlobStore)
METRICS = web.AppKey("metrics", HubMetrics)
LOGIN_LIMITER = web.AppKey("login_limiter", RateLimiter)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)
# Called with (IngestResult, InboundMessage) of each new message, after it is stored (routing wakes up on it).
# Listeners must be quick and never raise: they run on the ingest path.
INGEST_LISTENERS = web.AppKey("ingest_listeners", list)
# How fast messages arrive here: background workers pace themselves by it (hub/runtime/pacing.py).
INGEST_METER = web.AppKey("ingest_meter", IngestMeter)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.HubError as exc:
        return from_hub_error(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request):
            raise
        return from_http_exception(exc)
    except DBAPIError as exc:
        # The database is down or refusing: say so, keep serving, let the client retry.
        log.error("database error on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "database_unavailable", "the store is unavailable; retry shortly", headers={"Retry-After": "5"})
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the hub failed to handle this request; it has been logged")


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


def create_app(settings: Settings, *, migrate: bool = True, registry: ChannelRegistry | None = None) -> web.Application:
    from hub.web import api, calls, forms, inbox
    from hub.csat import routes as csat_api
    from hub.kb import routes as kb_api
    from hub.reports import routes as reports_api
    from hub.scm import routes as scm_api
    from hub.segments import routes as segments_api
    from hub.sla import routes as sla_api

    if migrate:
        upgrade(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[metrics_middleware, error_middleware, security_headers_middleware, readable_query_middleware],
    )
    app[SETTINGS] = settings
    app[ENGINE] = engine
    app[INGEST_LISTENERS] = []
    app[INGEST_METER] = IngestMeter()
    app[INGEST_LISTENERS].append(app[INGEST_METER].arrived)
    retry_policy = RetryPolicy(
        max_attempts=settings.outbox_max_attempts,
        base_seconds=settings.outbox_backoff_base_seconds,
        max_seconds=settings.outbox_backoff_max_seconds,
        lease_seconds=settings.outbox_lease_seconds,
    )
    app[METRICS] = HubMetrics(engine)
    app[AUTH] = Authenticator(engine, idle=timedelta(hours=settings.session_idle_hours))
    app[REGISTRY] = registry or build_registry(settings)
    app[LOGIN_LIMITER] = RateLimiter(settings.login_rate_per_minute)
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[BLOBS] = BlobStore(settings.blob_dir)
    app[WRITER] = IngestWriter(
        engine,
        policy=IngestPolicy(
            reopen_window=timedelta(days=settings.reopen_window_days),
            continuity_window=timedelta(hours=settings.continuity_window_hours) if settings.continuity_window_hours else None,
            max_attachment_bytes=settings.max_attachment_bytes,
            # Made on the first start (hub/contract/signing.py): the email channel signs with the same key.
            message_id_key=message_id_key(settings.data_dir),
        ),
        blobs=app[BLOBS],
        threads=1 if is_sqlite(engine) else 4,
    )
    app[WORKER] = OutboxWorker(
        engine,
        app[REGISTRY],
        policy=retry_policy,
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        on_result=lambda row, status: app[METRICS].deliveries.labels(row.kind, status).inc(),
        blobs=app[BLOBS],
    )
    app[SPOOL] = SpoolWorker(
        engine,
        app[REGISTRY],
        app[BLOBS],
        policy=retry_policy,
        concurrency=settings.spool_concurrency,
        budget_seconds=settings.spool_item_budget_seconds,
        poll_seconds=settings.outbox_poll_seconds,
    )
    app[SPOOLER] = Spooler(engine, app[BLOBS])
    processes = settings.parser_processes
    if processes is None:
        # At least 3: a channel may hold all but one, and two of its items grinding at once
        # must leave it one more.
        processes = min(4, max(3, (os.cpu_count() or 1) + 1))
    # Started on first use; each process imports the channels' modules up front.
    app[PARSERS] = ParserPool(processes, preload=sorted({type(c).__module__ for c in app[REGISTRY].all()})) if processes else None
    api.add_routes(app)
    calls.add_routes(app)
    forms.add_routes(app)
    kb_api.setup(app)
    scm_api.setup(app)
    sla_api.setup(app)
    segments_api.setup(app)
    csat_api.setup(app)
    reports_api.setup(app)
    inbox.setup(app)
    for channel in app[REGISTRY].all():
        if hasattr(channel, "routes"):
            app.router.add_routes(channel.routes())
    app.cleanup_ctx.append(_channels_and_workers)
    return app


def client_key(request: web.Request) -> str:
    """What every rate limit counts a request by: the client's address (through trusted proxies
    only), an IPv6 client by its /64. The one place the web layer reads who a client is."""
    return _rate_key(client_address(request.remote, request.headers.getall("X-Forwarded-For", ()), request.app[TRUSTED_PROXIES]))


async def ingest_message(app: web.Application, message):
    """The one way the web layer and the channels store an inbound message: ingest, count it, and
    tell whoever waits for new messages (the outbox worker, routing). Raises RejectedInput."""
    try:
        result = await app[WRITER].ingest(message)
    except errors.RejectedInput:
        app[METRICS].rejected.labels(message.channel).inc()
        raise
    _stored(app, message, result)
    return result


async def ingest_group(app: web.Application, messages: list) -> list:
    """Like ingest_message for several messages, stored in one transaction in their order (the
    spool's items of one channel, in the order they were received): an IngestResult or the
    exception for each."""
    outcomes = await app[WRITER].ingest_group(messages)
    for message, outcome in zip(messages, outcomes):
        if isinstance(outcome, errors.RejectedInput):
            app[METRICS].rejected.labels(message.channel).inc()
        elif not isinstance(outcome, BaseException):
            _stored(app, message, outcome)
    return outcomes


def _stored(app: web.Application, message, result) -> None:
    """Count a stored message and tell whoever waits for new messages."""
    metrics = app[METRICS]
    (metrics.ingested if result.created else metrics.duplicates).labels(message.channel).inc()
    if result.queued_outbound:
        # Only then: a wake-up per message made the outbox worker look for work (a write
        # transaction on SQLite) after nearly every message of a burst.
        app[WORKER].wake()
    if result.created:
        for listener in app[INGEST_LISTENERS]:
            try:
                listener(result, message)
            except Exception:  # a listener's bug must not fail a stored message
                log.exception("ingest listener failed")


class ChannelHub:
    """The HubLink channels get: the one ingest path, and the spool for acknowledge-then-process."""

    def __init__(self, app: web.Application):
        self.app = app

    async def ingest(self, message):
        # A spooled item's message is stored in the order its item came in, among the others of
        # its channel (hub/ingest/spool.py); waiting for that and for the writer is not charged to the
        # item's time budget.
        with paused():
            return await store_in_turn(message, self._store_group, alone=self._store_alone)

    async def _store_group(self, messages: list) -> list:
        return await ingest_group(self.app, messages)

    async def _store_alone(self, message):
        return await ingest_message(self.app, message)

    async def run_parser(self, fn, /, *args, **kwargs):
        pool = self.app[PARSERS]
        if pool is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await pool.run(fn, *args, **kwargs)

    async def spool(self, channel: str, key: str, payload: dict, raw: bytes | None = None) -> bool:
        app = self.app
        new = await app[SPOOLER].spool(channel, key, payload, raw)
        app[SPOOL].wake(channel)
        return new

    async def reject(self, channel: str, key: str, reason: str, payload: dict, raw: bytes | None = None) -> None:
        app = self.app
        app[METRICS].rejected.labels(channel).inc()
        await asyncio.to_thread(reject, app[ENGINE], app[BLOBS], channel, key, reason, payload, raw)

    async def load_state(self, channel: str, name: str) -> dict | None:
        return await asyncio.to_thread(load_state, self.app[ENGINE], channel, name)

    async def save_state(self, channel: str, name: str, value: dict) -> None:
        await asyncio.to_thread(save_state, self.app[ENGINE], channel, name, value)


async def _channels_and_workers(app: web.Application):
    tasks = []
    if app[SETTINGS].outbox_inline_worker:
        tasks.append(asyncio.create_task(app[WORKER].run(), name="outbox-worker"))
        tasks.append(asyncio.create_task(app[SPOOL].run(), name="spool-worker"))
    settings = app[SETTINGS]
    if is_sqlite(app[ENGINE]) and settings.message_indexer:
        # In every process, whatever outbox_inline_worker says: each batch is one write
        # transaction that starts from the watermark, so several indexers never index twice, and
        # a process that stores messages keeps its own searches off the LIKE fallback. It gets a
        # larger share during a burst than the other workers: it has to keep up with ingest.
        pacer = Pacer(app[INGEST_METER], share=settings.message_indexer_busy_share)
        indexer = MessageIndexer(app[ENGINE], pacer=pacer)
        tasks.append(asyncio.create_task(indexer.run(), name="message-indexer"))
    started = []
    hub = ChannelHub(app)
    for channel in app[REGISTRY].all():
        await channel.start(hub)
        started.append(channel)
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for channel in reversed(started):
        with contextlib.suppress(Exception):
            await channel.stop()
    if app[PARSERS] is not None:
        await asyncio.to_thread(app[PARSERS].close)
    await asyncio.to_thread(app[WRITER].close)
    app[ENGINE].dispose()
