"""Inbound in the web app: the ingest writer, the spool and the parsers' processes, the generic
API channel (POST /api/v1/messages) and the inbound items that could not be stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import timedelta

from aiohttp import web

from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.signing import message_id_key
from hub.ingest import spool
from hub.ingest.hub_link import ingest_message
from hub.ingest.pipeline import IngestPolicy
from hub.ingest.writer import IngestWriter
from hub.runtime.parser_pool import ParserPool
from hub.runtime.workers import Worker
from hub.store.db import is_sqlite
from hub.store.workqueue import RetryPolicy
from hub.web import openapi as doc
from hub.web import schemas as s
from hub.web.capability import ApiDoc, Capability
from hub.web.http import db, int_query, json_response, parse_body, path_id, principal
from hub.web.keys import BLOBS, ENGINE, PARSERS, REGISTRY, SETTINGS, SPOOL, SPOOLER, WRITER


def setup(app: web.Application) -> None:
    settings, engine = app[SETTINGS], app[ENGINE]
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
    app[SPOOL] = spool.SpoolWorker(
        engine,
        app[REGISTRY],
        app[BLOBS],
        policy=RetryPolicy.from_settings(settings),
        concurrency=settings.spool_concurrency,
        budget_seconds=settings.spool_item_budget_seconds,
        poll_seconds=settings.outbox_poll_seconds,
    )
    app[SPOOLER] = spool.Spooler(engine, app[BLOBS])
    processes = settings.parser_processes
    if processes is None:
        # At least 3: a channel may hold all but one, and two of its items grinding at once
        # must leave it one more.
        processes = min(4, max(3, (os.cpu_count() or 1) + 1))
    # Started on first use; each process imports the channels' modules up front.
    app[PARSERS] = ParserPool(processes, preload=sorted({type(c).__module__ for c in app[REGISTRY].all()})) if processes else None


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    try:
        yield
    finally:
        # After the channels and the spool stopped (workers stop first; the channels come later
        # in the list, so they stop earlier).
        if app[PARSERS] is not None:
            await asyncio.to_thread(app[PARSERS].close)
        await asyncio.to_thread(app[WRITER].close)


def workers(app: web.Application) -> list[Worker]:
    # With outbox_inline_worker off, another process does the background work.
    return [Worker("spool-worker", app[SPOOL].run)] if app[SETTINGS].outbox_inline_worker else []


async def post_message(request: web.Request) -> web.Response:
    principal(request, "integration")
    body = await parse_body(request, s.MessageIn)
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
    return json_response(
        {
            "customer_id": result.customer_id,
            "conversation_id": result.conversation_id,
            "message_id": result.message_id,
            "created": result.created,
        },
        status=201 if result.created else 200,
    )


async def list_rejected(request: web.Request) -> web.Response:
    """Inbound items that could not be stored (unreadable mail, oversized...), with the reason."""
    principal(request, "admin")
    channel = request.query.get("channel") or None
    limit = int_query(request, "limit", low=1, high=500) or 100
    return json_response({"items": await db(spool.rejected, request.app[ENGINE], channel=channel, limit=limit)})


async def retry_rejected(request: web.Request) -> web.Response:
    """Put a rejected inbound item back in the spool (after a fix, or with a larger time budget)."""
    who = principal(request, "admin")
    item_id = path_id(request)
    body = await parse_body(request, s.RetryIn) if await request.read() else s.RetryIn()
    item = await db(spool.retry, request.app[ENGINE], item_id, actor=who.actor, budget_seconds=body.budget_seconds)
    request.app[SPOOL].wake(item["channel"])
    return json_response(item, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/api/v1/inbound/rejected", list_rejected)
    app.router.add_post("/api/v1/inbound/rejected/{id}/retry", retry_rejected)


def openapi() -> ApiDoc:
    auth_errors = doc.errors(401, 403)
    paths = {
        "/api/v1/messages": {
            "post": doc.op(
                "Ingest a message (integration token). The generic API channel.",
                {"201": doc.json_response(s.IngestOut, "stored"), "200": doc.json_response(s.IngestOut, "a duplicate: already stored"),
                 **doc.errors(400, 401, 403, 413, 422)},
                body=s.MessageIn, tags=["ingest"],
            )
        },
        "/api/v1/inbound/rejected": {
            "get": doc.op("Inbound items that could not be stored, with the reason (admin)",
                          {"200": doc.json_response(s.RejectedPage), **auth_errors, **doc.errors(422)},
                          params=[doc.query("channel", {"type": "string", "maxLength": 32}, "channel name"),
                                  doc.query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "at most (default 100)")],
                          tags=["ops"])
        },
        "/api/v1/inbound/rejected/{id}/retry": {
            "post": {
                **doc.op("Retry a rejected inbound item, optionally with a larger time budget (admin)",
                         {"202": doc.json_response(s.RejectedItem, "queued again"), **auth_errors, **doc.errors(400, 404, 409, 413, 422)},
                         params=[doc.path_id()], tags=["ops"]),
                "requestBody": {"required": False, "content": {"application/json": {"schema": doc.ref(s.RetryIn)}}},
            }
        },
    }
    return ApiDoc(paths, [s.MessageIn, s.IngestOut, s.RejectedPage, s.RejectedItem, s.RetryIn])


capability = Capability("ingest", setup=setup, routes=add_routes, openapi=openapi, workers=workers, lifespan=lifespan)
