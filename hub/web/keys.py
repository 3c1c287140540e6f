"""Every object the web app shares between its parts, under one typed key each.

This module imports nothing at run time but aiohttp: the types are for readers and type checkers
only, so any module (the app factory, a capability's routes, the inbox) can take its keys from
here without importing back from hub/web/app.py or from another capability.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import jinja2
    from sqlalchemy import Engine

    from hub.auth import Authenticator
    from hub.config.settings import Settings
    from hub.contract.messages import InboundMessage
    from hub.conversations import SnoozeWorker
    from hub.gateway import ChannelRegistry
    from hub.ingest import IngestWriter, Spooler, SpoolWorker
    from hub.kb import KnowledgeIndex
    from hub.outbox import OutboxWorker
    from hub.runtime.leases import Elections
    from hub.runtime.live_events import LiveEvents
    from hub.runtime.pacing import IngestMeter
    from hub.runtime.parser_pool import ParserPool
    from hub.scm import RoutingWorker, ScmServices
    from hub.segments import SegmentWorker
    from hub.sla import Rules, SlaWorker
    from hub.store.blobs import BlobStore
    from hub.web.changes import ConversationChange
    from hub.web.inbox.live import Broadcaster
    from hub.web.metrics import HubMetrics
    from hub.web.ratelimit import Network, RateLimiter

# --- the platform: made by create_app before any capability ------------------------------------

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
ENGINE: web.AppKey[Engine] = web.AppKey("engine")
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
REGISTRY: web.AppKey[ChannelRegistry] = web.AppKey("registry")
BLOBS: web.AppKey[BlobStore] = web.AppKey("blobs")
METRICS: web.AppKey[HubMetrics] = web.AppKey("metrics")
LOGIN_LIMITER: web.AppKey[RateLimiter] = web.AppKey("login_limiter")
TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
# The OpenAPI document of this app's capabilities (built once, served at /api/v1/openapi.json).
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")

# --- this process among the hub's several (hub/web/process.py) ----------------------------------

# web, worker or all (hub/runtime/roles.py decides what each runs).
ROLE: web.AppKey[str] = web.AppKey("role")
# The leases this process holds and the elected loops that run under them.
ELECTIONS: web.AppKey[Elections] = web.AppKey("elections")
# What crosses to the other processes (LISTEN/NOTIFY on PostgreSQL; nothing on SQLite).
LIVE_EVENTS: web.AppKey[LiveEvents] = web.AppKey("live_events")
# {"since": time.monotonic() when draining began, or None}: readiness turns 503 while draining.
DRAINING: web.AppKey[dict] = web.AppKey("draining")

# --- inbound: the one ingest path ---------------------------------------------------------------

WRITER: web.AppKey[IngestWriter] = web.AppKey("writer")
SPOOL: web.AppKey[SpoolWorker] = web.AppKey("spool")
SPOOLER: web.AppKey[Spooler] = web.AppKey("spooler")
# None when the channels' parsers run in threads (settings.parser_processes = 0).
PARSERS: web.AppKey[ParserPool | None] = web.AppKey("parsers")
# Called with (IngestResult, InboundMessage) of each new message, after it is stored (routing wakes up on it).
# Listeners must be quick and never raise: they run on the ingest path.
INGEST_LISTENERS: web.AppKey[list[Callable[[Any, InboundMessage], None]]] = web.AppKey("ingest_listeners")
# How fast messages arrive here: background workers pace themselves by it (hub/runtime/pacing.py).
INGEST_METER: web.AppKey[IngestMeter] = web.AppKey("ingest_meter")

# --- conversations ------------------------------------------------------------------------------

# Called with a ConversationChange after an agent changed a conversation, whatever the door (REST
# API or inbox page): the SLA worker and the live pages listen. Quick and never raising.
CONVERSATION_LISTENERS: web.AppKey[list[Callable[[ConversationChange], None]]] = web.AppKey("conversation_listeners")

# --- outbound -----------------------------------------------------------------------------------

WORKER: web.AppKey[OutboxWorker] = web.AppKey("worker")

# --- channels -----------------------------------------------------------------------------------

# The rate limits channels' own routes ask for (ChannelHub.rate_limit), by bucket.
CHANNEL_LIMITERS: web.AppKey[dict[str, RateLimiter]] = web.AppKey("channel_limiters")

# --- capabilities -------------------------------------------------------------------------------

SLA_RULES: web.AppKey[Rules] = web.AppKey("sla_rules")
SLA_WORKER: web.AppKey[SlaWorker | None] = web.AppKey("sla_worker")
SNOOZE_WORKER: web.AppKey[SnoozeWorker] = web.AppKey("snooze_worker")
# None when this process does not reach the back end (hub.scm.backend.build_services).
SCM_SERVICES: web.AppKey[ScmServices | None] = web.AppKey("scm_services")
ROUTING: web.AppKey[RoutingWorker | None] = web.AppKey("routing_worker")
SEGMENT_WORKER: web.AppKey[SegmentWorker | None] = web.AppKey("segment_worker")
KB_INDEX: web.AppKey[KnowledgeIndex] = web.AppKey("kb_index")
CSAT_LIMITER: web.AppKey[RateLimiter] = web.AppKey("csat_limiter")
CSAT_JINJA: web.AppKey[jinja2.Environment] = web.AppKey("csat_jinja")
# Survey answers being recorded in threads: awaited before the app stops.
CSAT_TASKS: web.AppKey[set] = web.AppKey("csat_tasks")
INBOX_JINJA: web.AppKey[jinja2.Environment] = web.AppKey("inbox_jinja")
BROADCASTER: web.AppKey[Broadcaster] = web.AppKey("inbox_broadcaster")
# Renders the error page a browser sees (status, message) -> response; set by the inbox when it is
# part of the app, so the error middleware answers pages with a page and stays free of templates.
ERROR_PAGE: web.AppKey[Callable[[web.Request, int, str], web.StreamResponse]] = web.AppKey("error_page")
