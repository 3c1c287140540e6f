"""The outbox's queue: every outbound effect is an outbox row written in the transaction that
caused it (enqueue), claimed by the worker (hub/outbox/worker.py), then marked sent or failed.

Claiming, leases and backoff are hub/store/workqueue.py's. A worker that dies mid-send leaves the row to
be claimed again once its lease runs out, so channels must tolerate a repeated idempotency_key.
A message to a customer is queued with hub/outbox/compose.py, never by hand.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update

from hub.contract.errors import Conflict, NotFound
from hub.contract.i18n import N_, Word
from hub.outbox.state import DELIVERY_STATE
from hub.store.db import write_tx
from hub.store.models import Message, Outbox, OutboxStatus, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.workqueue import RetryPolicy, WorkQueue

outbox_t = Outbox.__table__
message_t = Message.__table__

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


def release(engine: Engine, row_ids: list[int]) -> None:
    """Give back rows claimed but not started (the worker is stopping): due at once for another
    worker, the attempt not counted."""
    QUEUE.release(engine, row_ids)


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


def retry_delivery(engine: Engine, message_id: int) -> str:
    """An agent asks to deliver a failed reply again: its outbox row goes back to the queue with
    a fresh set of attempts (the last error stays until a delivery succeeds). Only a dead row, or
    a pending one waiting after a failed attempt, can be retried; returns the new status."""
    now = utcnow()
    with write_tx(engine) as conn:
        row = conn.execute(
            select(outbox_t.c.id, outbox_t.c.status, outbox_t.c.attempts)
            .where(outbox_t.c.message_id == message_id, outbox_t.c.kind == "message")
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(N_("message %(id)s has no delivery to retry"), params={"id": message_id})
        retryable = row.status == OutboxStatus.dead or (row.status == OutboxStatus.pending and row.attempts > 0)
        if not retryable:
            raise Conflict(N_("the delivery of message %(id)s is %(state)s; only a failed delivery can be retried"),
                           params={"id": message_id, "state": Word(DELIVERY_STATE.get(row.status, row.status))})
        conn.execute(
            update(outbox_t)
            .where(outbox_t.c.id == row.id)
            .values(status=OutboxStatus.pending, attempts=0, next_attempt_at=now, locked_until=None)
        )
    return OutboxStatus.pending
