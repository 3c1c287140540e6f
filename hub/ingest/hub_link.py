"""The one way an inbound message is stored from a running hub: the REST API, the web form, the
calls API and every channel (through ChannelHub, the HubLink of the channel contract) come here.
Storing counts the message and tells whoever waits for new messages (the outbox worker, routing,
the live inbox)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from hub.contract import errors
from hub.ingest.spool import reject, store_in_turn
from hub.outbox import queue_message
from hub.runtime.budget import paused
from hub.store.state import load_state, save_state
from hub.web.http import client_key, parse_body, principal
from hub.web.keys import (
    BLOBS,
    CHANNEL_LIMITERS,
    ELECTIONS,
    ENGINE,
    INGEST_LISTENERS,
    METRICS,
    PARSERS,
    SETTINGS,
    SPOOL,
    SPOOLER,
    WORKER,
    WRITER,
)
from hub.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)


async def ingest_message(app: web.Application, message):
    """Ingest one message, count it, and tell whoever waits for new messages. Raises RejectedInput."""
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
    """The HubLink channels get: the one ingest path, the spool for acknowledge-then-process, the
    outbox for what they send on their own (a form's confirmation), and for channels serving routes
    the web layer's decisions (who a client is, rate limits, authentication, reading a JSON body)."""

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

    async def send(self, message, *, metadata: dict | None = None) -> str:
        recipient = await asyncio.to_thread(queue_message, self.app[ENGINE], message, metadata=metadata)
        self.app[WORKER].wake()
        return recipient

    def client_key(self, request: web.Request) -> str:
        return client_key(request)

    def rate_limit(self, request: web.Request, bucket: str, per_minute: int) -> float:
        limiters = self.app[CHANNEL_LIMITERS]
        if bucket not in limiters:
            limiters[bucket] = RateLimiter(per_minute)
        return limiters[bucket].check(client_key(request))

    def authenticate(self, request: web.Request, *roles: str):
        return principal(request, *roles)

    async def read_json(self, request: web.Request, model, *, document: bool = False):
        if not document:
            return await parse_body(request, model)
        settings = self.app[SETTINGS]
        limit = max(settings.max_request_bytes, settings.max_attachment_bytes)
        return await parse_body(request, model, limit=limit, setting="SERVICEHUB_MAX_ATTACHMENT_BYTES")

    def rejected(self, channel: str) -> None:
        self.app[METRICS].rejected.labels(channel).inc()

    async def elected(self, name: str, loop) -> None:
        await self.app[ELECTIONS].run(name, loop)
