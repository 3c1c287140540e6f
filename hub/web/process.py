"""This process among the hub's several on one PostgreSQL: its elections (the loops that must run
once), the events it sends to and hears from the others, its drain on SIGTERM, and the narrow
listener of a worker. Its role (app[ROLE]) is given by create_app; hub/runtime/roles.py says what
each role runs, hub/web/operations.py answers the probes that report all this.

First in the app's list of capabilities: later capabilities register their listeners on the live
events in their setup, and its lifespan closes the elections only after every capability's
workers (the elected loops among them) have stopped.

On SQLite the hub is one process: every lease is held, and nothing crosses.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import replace

from aiohttp import web

from hub.runtime import roles
from hub.runtime.leases import Elections
from hub.runtime.live_events import LiveEvents
from hub.runtime.workers import Worker
from hub.web.capability import Capability
from hub.web.errors import error_response
from hub.web.keys import DRAINING, ELECTIONS, ENGINE, LIVE_EVENTS, METRICS, ROLE, SETTINGS


def setup(app: web.Application) -> None:
    role, engine = app[ROLE], app[ENGINE]
    app[DRAINING] = {"since": None}
    # create_app gave the settings roles.settings_for() made: outbox_inline_worker says whether loops run here.
    app[ELECTIONS] = Elections(engine, runs_loops=app[SETTINGS].outbox_inline_worker)
    # Every process publishes what it stores; only those with agents' streams listen.
    app[LIVE_EVENTS] = LiveEvents(engine, listen=roles.serves_http(role))
    if not roles.serves_http(role):
        app.middlewares.append(_worker_paths)
    app.on_shutdown.append(_drain)
    app[METRICS].watch_process(role, app[ELECTIONS], app[LIVE_EVENTS])


@web.middleware
async def _worker_paths(request: web.Request, handler):
    if request.path not in roles.WORKER_PATHS:
        return error_response(404, "not_found", "this is a worker process: it serves " + ", ".join(sorted(roles.WORKER_PATHS)) + " only")
    return await handler(request)


async def _drain(app: web.Application) -> None:
    # on_shutdown: the listener no longer accepts; from here readiness says no, and elected loops
    # stop before their next batch (their leases are released as their tasks end).
    app[DRAINING]["since"] = time.monotonic()
    app[ELECTIONS].stop()


def elected(app: web.Application, lease: str, worker: Worker) -> Worker:
    """The worker, its loop run only in the process that holds the lease `lease` among all the hub's
    processes (taken over by another when that one dies or drains)."""
    return replace(worker, run=functools.partial(app[ELECTIONS].run, lease, worker.run))


def workers(app: web.Application) -> list[Worker]:
    events = app[LIVE_EVENTS]
    return [Worker("live-events", events.run)] if events.enabled else []


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    # Left last, once every capability's workers (the elected loops among them) ended: the
    # renewals' connections and thread go.
    try:
        yield
    finally:
        app[ELECTIONS].close()


capability = Capability("process", setup=setup, workers=workers, lifespan=lifespan)
