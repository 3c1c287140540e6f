"""What one `servicehub serve` process does: its role, decided here and nowhere else.

- web:    HTTP only (API, inbox, webhooks, forms). No background loop runs; no lease is taken.
- worker: the loops only (outbox, spool, routing, SLA, segments, demand push, pollers). Its HTTP
          listener answers /livez, /readyz, /healthz and /metrics and nothing else (404).
- all:    both, as a single process always did (the default).
Any number of each may run against one PostgreSQL; loops that must run once are elected
(hub/runtime/leases.py). With outbox_inline_worker off, an `all` process runs no loop either (the
older way of running web-only processes).

Health per role: /livez answers 200 while the process's event loop turns (restart it otherwise);
/readyz answers 200 when the store answers and the process is not draining (take it out of the
load balancer otherwise). On SIGTERM the process drains: /readyz turns 503, the listener stops
accepting, requests in hand finish (up to shutdown_timeout), elected loops stop and release their
leases, the loops finish or give back what they hold, then it exits.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from hub.runtime import live_events
from hub.runtime.leases import Elections

ROLES = ("all", "web", "worker")
ROLE = web.AppKey("role", str)
ELECTIONS = web.AppKey("elections", Elections)
DRAINING = web.AppKey("draining", dict)

# What a worker's listener serves: probes and figures, no API.
WORKER_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


def serves_http(role: str) -> bool:
    return role in ("all", "web")


def runs_loops(role: str, settings) -> bool:
    """Whether background loops run in a process of this role (the one place that decides)."""
    if role == "web":
        return False
    if role == "worker":
        return True
    return settings.outbox_inline_worker


def settings_for(role: str, settings):
    """The settings a process of this role runs with: the capabilities start their loops when
    outbox_inline_worker is on, so that one switch carries the role to all of them."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    wanted = runs_loops(role, settings)
    if wanted == settings.outbox_inline_worker:
        return settings
    return settings.model_copy(update={"outbox_inline_worker": wanted})


def setup(app: web.Application, role: str, *, engine, settings, metrics_registry) -> None:
    """Give the app its role: elections, probes, the worker's narrow listener, figures. Called
    with the settings settings_for() gave."""
    app[ROLE] = role
    app[DRAINING] = {"since": None}
    app[ELECTIONS] = Elections(engine, runs_loops=settings.outbox_inline_worker)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    if not serves_http(role):
        app.middlewares.append(_worker_paths)
    app.on_shutdown.append(_drain)
    app.cleanup_ctx.append(_elections)
    # Every process publishes what it stores; only those with agents' streams listen.
    live_events.setup(app, engine, listen=serves_http(role))
    metrics_registry.register(_RoleFigures(app))


@web.middleware
async def _worker_paths(request: web.Request, handler):
    if request.path not in WORKER_PATHS:
        from hub.web.errors import error_response

        return error_response(404, "not_found", "this is a worker process: it serves " + ", ".join(sorted(WORKER_PATHS)) + " only")
    return await handler(request)


async def _drain(app: web.Application) -> None:
    # on_shutdown: the listener no longer accepts; from here readiness says no, and elected loops
    # stop before their next batch (their leases are released as their tasks end).
    app[DRAINING]["since"] = time.monotonic()
    app[ELECTIONS].stop()


async def _elections(app: web.Application):
    # Set up before every capability: torn down after them, once their elected loops have ended.
    yield
    app[ELECTIONS].close()


async def livez(request: web.Request) -> web.Response:
    """GET /livez: the process answers (its event loop turns)."""
    return web.json_response({"status": "ok", "role": request.app[ROLE]})


def _ping(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: the store answers and the process is not draining."""
    from hub.web.app import ENGINE

    app = request.app
    body = {"role": app[ROLE], "leases": app[ELECTIONS].held()}
    if app[DRAINING]["since"] is not None:
        return web.json_response({**body, "status": "draining"}, status=503)
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, app[ENGINE]), timeout=5)
    except Exception as exc:
        return web.json_response({**body, "status": "unavailable", "database": type(exc).__name__}, status=503)
    return web.json_response({**body, "status": "ok", "database": "ok"})


class _RoleFigures:
    """servicehub_process_role{role} 1 and servicehub_lease_held{name} 1 per lease held here."""

    def __init__(self, app: web.Application):
        self.app = app

    def collect(self):
        role = GaugeMetricFamily("servicehub_process_role", "This process's role (web, worker, all)", labels=["role"])
        role.add_metric([self.app[ROLE]], 1)
        yield role
        elections = self.app[ELECTIONS]
        held = GaugeMetricFamily("servicehub_lease_held", "Leases of elected loops held by this process", labels=["name"])
        for name in elections.held():
            held.add_metric([name], 1)
        yield held
        taken = GaugeMetricFamily("servicehub_leases_taken", "Leases this process has taken since it started")
        taken.add_metric([], elections.takeovers)
        yield taken
        events = self.app[live_events.LIVE_EVENTS]
        for name, value, doc in (("servicehub_live_events_published", events.published, "Live events sent to the other processes"),
                                 ("servicehub_live_events_heard", events.heard, "Live events heard from the other processes")):
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            yield family


# --- the OpenAPI document ---------------------------------------------------------------------

_PROBE = {
    "type": "object",
    "required": ["status", "role"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "draining", "unavailable"]},
        "role": {"type": "string", "enum": list(ROLES)},
        "leases": {"type": "array", "items": {"type": "string"}, "description": "the elected loops this process runs"},
        "database": {"type": "string"},
    },
}


def openapi_paths() -> dict:
    """The probes in the hub's OpenAPI document (hub/web/openapi.py merges them in)."""
    def probe(description: str) -> dict:
        return {"description": description, "content": {"application/json": {"schema": _PROBE}}}

    return {
        "/livez": {"get": {"summary": "Liveness: the process answers (restart it otherwise)", "tags": ["ops"], "security": [],
                           "responses": {"200": probe("alive")}}},
        "/readyz": {"get": {"summary": "Readiness: the store answers and the process is not draining", "tags": ["ops"],
                            "security": [], "responses": {"200": probe("ready"), "503": probe("draining or the store is away")}}},
    }
