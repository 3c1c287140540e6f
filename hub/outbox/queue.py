"""The one way out: every outbound effect is an outbox row written in the transaction that caused
it, and delivered here with retries, backoff and a dead-letter state.

Claiming, leases and backoff are hub/store/workqueue.py's. A worker that dies mid-send leaves the row to
be claimed again once its lease runs out, so channels must tolerate a repeated idempotency_key.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from sqlalchemy import Connection, Engine, update

from channels.base import PermanentFailure, TemporaryFailure
from hub.store.db import write_tx
from hub.contract.errors import HubError
from hub.store.blobs import BlobStore
from hub.contract.messages import Attachment, OutboundMessage
from hub.store.models import Message, Outbox, OutboxStatus, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.workqueue import PollingWorker, RetryPolicy, WorkQueue

log = logging.getLogger(__name__)
outbox_t = Outbox.__table__
message_t = Message.__table__

Deliverer = Callable[[dict], Awaitable[str | None]]


QUEUE = WorkQueue(outbox_t)
claim = QUEUE.claim


def enqueue(
    conn: Connection,
    *,
    kind: str,
    payload: dict,
    idempotency_key: str,
    channel: str | None = None,
    message_id: int | None = None,
) -> int | None:
    """Add a row in the caller's transaction. A repeated idempotency_key adds nothing (None)."""
    now = utcnow()
    return insert_ignoring_conflict(
        conn,
        outbox_t,
        {
            "kind": kind,
            "channel": channel,
            "message_id": message_id,
            "payload": payload,
            "status": OutboxStatus.pending,
            "attempts": 0,
            "next_attempt_at": now,
            "idempotency_key": idempotency_key,
            "created_at": now,
        },
    )


def mark_sent(engine: Engine, row, external_id: str | None) -> None:
    with write_tx(engine) as conn:
        QUEUE.finish(conn, row.id, sent_at=utcnow())
        if external_id and row.message_id is not None:
            # The channel's id for what we sent: a customer's reply to it threads back here.
            conn.execute(
                update(message_t)
                .where(message_t.c.id == row.message_id, message_t.c.external_id.is_(None))
                .values(external_id=external_id[:500])
            )


def mark_failed(engine: Engine, row, error: str, *, policy: RetryPolicy, permanent: bool = False,
                retry_after: float | None = None) -> str:
    return QUEUE.fail(engine, row, error, policy=policy, permanent=permanent, retry_after=retry_after)


def outbound_from_payload(
    payload: dict, idempotency_key: str, message_id: int | None, blobs: BlobStore | None = None
) -> OutboundMessage:
    """The OutboundMessage a channel gets; attachments carry their bytes (read from `blobs`)."""
    attachments = tuple(
        Attachment(
            filename=a["filename"],
            content_type=a["content_type"],
            data=blobs.get(a["sha256"]) if blobs is not None else None,
            blob_sha256=a["sha256"],
            size=a.get("size"),
        )
        for a in payload.get("attachments") or ()
    )
    return OutboundMessage(
        attachments=attachments,
        conversation_id=payload["conversation_id"],
        channel=payload["channel"],
        recipient=payload["recipient"],
        text=payload.get("text", ""),
        html=payload.get("html"),
        subject=payload.get("subject"),
        reply_to=tuple(payload.get("reply_to") or ()),
        thread_key=payload.get("thread_key"),
        idempotency_key=idempotency_key,
        message_id=message_id,
        buttons=tuple((str(label), str(data)) for label, data in payload.get("buttons") or ()),
    )


class OutboxWorker(PollingWorker):
    """Claims due rows and delivers them: kind "message" through the channel registry, other kinds
    through deliverers registered by the features that create them (escalations, surveys)."""

    def __init__(
        self,
        engine: Engine,
        registry,
        *,
        policy: RetryPolicy = RetryPolicy(),
        batch_size: int = 20,
        poll_seconds: float = 0.5,
        on_result: Callable[[object, str], None] | None = None,
        blobs: BlobStore | None = None,
    ):
        super().__init__()
        self.engine = engine
        self.blobs = blobs
        self.registry = registry
        self.policy = policy
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.deliverers: dict[str, Deliverer] = {}
        self.on_result = on_result

    async def run_once(self) -> int:
        rows = await asyncio.to_thread(claim, self.engine, limit=self.batch_size, policy=self.policy)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row) -> None:
        try:
            if row.kind == "message":
                channel = self.registry.get(row.channel)
                message = await asyncio.to_thread(
                    outbound_from_payload, row.payload, row.idempotency_key, row.message_id, self.blobs
                )
                delivery = await channel.send(message)
                external_id = delivery.external_id
            elif row.kind in self.deliverers:
                external_id = await self.deliverers[row.kind](row.payload)
            else:
                raise PermanentFailure(f"no deliverer for outbox kind {row.kind!r}")
        except TemporaryFailure as exc:
            status = await asyncio.to_thread(
                mark_failed, self.engine, row, str(exc), policy=self.policy, retry_after=exc.retry_after
            )
        except (PermanentFailure, HubError) as exc:
            status = await asyncio.to_thread(mark_failed, self.engine, row, str(exc), policy=self.policy, permanent=True)
        except Exception as exc:  # an adapter bug or an unexpected network error: retry
            log.exception("delivering outbox row %s failed", row.id)
            status = await asyncio.to_thread(
                mark_failed, self.engine, row, f"{type(exc).__name__}: {exc}", policy=self.policy
            )
        else:
            await asyncio.to_thread(mark_sent, self.engine, row, external_id)
            status = OutboxStatus.sent
        if self.on_result is not None:
            self.on_result(row, status)


def retry_delivery(engine: Engine, message_id: int) -> str:
    """An agent asks to deliver a failed reply again: its outbox row goes back to the queue with
    a fresh set of attempts (the last error stays until a delivery succeeds). Only a dead row, or
    a pending one waiting after a failed attempt, can be retried; returns the new status."""
    from sqlalchemy import select

    from hub.contract.errors import Conflict, NotFound

    now = utcnow()
    with write_tx(engine) as conn:
        row = conn.execute(
            select(outbox_t.c.id, outbox_t.c.status, outbox_t.c.attempts)
            .where(outbox_t.c.message_id == message_id, outbox_t.c.kind == "message")
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"message {message_id} has no delivery to retry")
        retryable = row.status == OutboxStatus.dead or (row.status == OutboxStatus.pending and row.attempts > 0)
        if not retryable:
            raise Conflict(f"the delivery of message {message_id} is {row.status}; only a failed delivery can be retried")
        conn.execute(
            update(outbox_t)
            .where(outbox_t.c.id == row.id)
            .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now, locked_until=None)
        )
    return OutboxStatus.pending
