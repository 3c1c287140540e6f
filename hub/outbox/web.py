"""The outbox in the web app: the worker that delivers queued outbound messages (and whatever
other capabilities register a deliverer for, such as escalations)."""

from __future__ import annotations

from aiohttp import web

from hub.outbox.worker import OutboxWorker
from hub.runtime.workers import Worker
from hub.store.workqueue import RetryPolicy
from hub.web.capability import Capability
from hub.web.keys import BLOBS, ENGINE, METRICS, REGISTRY, SETTINGS, WORKER


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[WORKER] = OutboxWorker(
        app[ENGINE],
        app[REGISTRY],
        policy=RetryPolicy.from_settings(settings),
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        on_result=lambda row, status: app[METRICS].deliveries.labels(row.kind, status).inc(),
        blobs=app[BLOBS],
    )


def workers(app: web.Application) -> list[Worker]:
    # With outbox_inline_worker off, another process (servicehub serve on another host) delivers.
    return [Worker("outbox-worker", app[WORKER].run)] if app[SETTINGS].outbox_inline_worker else []


capability = Capability("outbox", setup=setup, workers=workers)
