"""Durable work queues in a table: claim with a lease, finish, or fail with backoff / dead-letter.

The outbox (what goes out) and the inbound spool (what came in, to process after acknowledging)
share this: rows have status, attempts, next_attempt_at, locked_until and last_error. On
PostgreSQL several workers claim with FOR UPDATE SKIP LOCKED and never take the same row; on SQLite
BEGIN IMMEDIATE serialises the claims. A worker that dies mid-task leaves its row to be claimed
again when the lease runs out, so handlers must tolerate doing the same task twice.

The states: pending -(claim)-> active -(finish)-> done; active -(fail)-> pending again after a
backoff, or dead (permanent, or out of attempts); dead -(revive: a person said "try again")->
pending, due now, with its attempts counted from zero. A worker may claim a subset of the due
rows (`where`: one lane of several, the spool's per-channel workers), finish several rows in one
transaction (finish_many: the effect of each was committed before, so a crash in between only
means doing them again), renew the lease of rows it is still working on (renew: a task that
legitimately outlasts the lease is not claimed a second time meanwhile), and give back rows it
will not finish because it is stopping (release: active -> pending, due now, the attempt not
counted).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, or_, select, update

from hub.store.db import write_tx
from hub.store.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    lease_seconds: float = 120.0

    def backoff(self, attempts: int) -> float:
        """Exponential with jitter: a fleet of failing rows does not retry in lockstep."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    @classmethod
    def from_settings(cls, settings) -> RetryPolicy:
        """The outbox_* settings: the outbox and the spool retry by the same policy."""
        return cls(
            max_attempts=settings.outbox_max_attempts,
            base_seconds=settings.outbox_backoff_base_seconds,
            max_seconds=settings.outbox_backoff_max_seconds,
            lease_seconds=settings.outbox_lease_seconds,
        )


@dataclass(frozen=True)
class WorkQueue:
    table: Table
    pending: str = "pending"
    active: str = "sending"
    done: str = "sent"
    dead: str = "dead"

    def claim(self, engine: Engine, *, limit: int, policy: RetryPolicy, now: datetime | None = None,
              where: ColumnElement[bool] | None = None, finished: list[int] | None = None, **done_values) -> list[Any]:
        """Due rows (among those matching `where`, if given), marked active with a lease and their
        attempt counted; ordered by id. `finished`: rows to mark done in the same transaction
        (finish_many with done_values), saving a commit per round."""
        t = self.table
        now = now or utcnow()
        due = or_(
            and_(t.c.status == self.pending, t.c.next_attempt_at <= now),
            # A lease that ran out: its worker died mid-task.
            and_(t.c.status == self.active, t.c.locked_until < now),
        )
        if where is not None:
            due = and_(where, due)
        pick = select(t.c.id).where(due).order_by(t.c.next_attempt_at, t.c.id).limit(limit)
        with write_tx(engine) as conn:
            if finished:
                self.finish_many(conn, finished, **done_values)
            if limit <= 0:
                return []
            if conn.dialect.name != "sqlite":
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            rows = conn.execute(
                update(t)
                .where(t.c.id.in_(ids))
                .values(status=self.active, attempts=t.c.attempts + 1, locked_until=now + timedelta(seconds=policy.lease_seconds))
                .returning(*t.c)
            ).all()
        return sorted(rows, key=lambda r: r.id)

    def finish(self, conn, row_id: int, **values) -> None:
        """Mark done, in the caller's transaction (so the effect and the mark commit together)."""
        self.finish_many(conn, [row_id], **values)

    def finish_many(self, conn, row_ids: list[int], **values) -> None:
        """Mark several rows done in the caller's transaction."""
        t = self.table
        if row_ids:
            conn.execute(update(t).where(t.c.id.in_(row_ids)).values(status=self.done, locked_until=None, last_error=None, **values))

    def renew(self, engine: Engine, row_ids: list[int], *, policy: RetryPolicy, now: datetime | None = None) -> None:
        """A fresh lease for rows this worker is still working on (rows no longer active, failed
        or finished meanwhile, are left as they are)."""
        t = self.table
        if not row_ids:
            return
        until = (now or utcnow()) + timedelta(seconds=policy.lease_seconds)
        with write_tx(engine) as conn:
            conn.execute(update(t).where(t.c.id.in_(row_ids), t.c.status == self.active).values(locked_until=until))

    def release(self, engine: Engine, row_ids: list[int], *, now: datetime | None = None) -> None:
        """Rows a worker claimed but stops working on (it is shutting down): pending and due now
        again, the attempt not counted, rather than waiting for their leases to run out."""
        t = self.table
        if not row_ids:
            return
        with write_tx(engine) as conn:
            conn.execute(
                update(t)
                .where(t.c.id.in_(row_ids), t.c.status == self.active)
                .values(status=self.pending, next_attempt_at=now or utcnow(), locked_until=None, attempts=t.c.attempts - 1)
            )

    def revive(self, conn, row_id: int, *, now: datetime | None = None, **values) -> bool:
        """A dead row back to pending, due now, attempts from zero, in the caller's transaction
        (last_error stays until it succeeds). False if the row is not dead."""
        t = self.table
        result = conn.execute(
            update(t)
            .where(t.c.id == row_id, t.c.status == self.dead)
            .values(status=self.pending, attempts=0, next_attempt_at=now or utcnow(), locked_until=None, **values)
        )
        return result.rowcount == 1

    def fail(
        self,
        engine: Engine,
        row,
        error: str,
        *,
        policy: RetryPolicy,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> str:
        """Schedule the next attempt, or move the row to dead. Returns the new status."""
        dead = permanent or row.attempts >= policy.max_attempts
        values: dict[str, Any] = {"last_error": error[:2000], "locked_until": None}
        if dead:
            values["status"] = self.dead
        else:
            delay = retry_after if retry_after is not None else policy.backoff(row.attempts)
            values["status"] = self.pending
            values["next_attempt_at"] = utcnow() + timedelta(seconds=max(0.0, delay))
        with write_tx(engine) as conn:
            conn.execute(update(self.table).where(self.table.c.id == row.id).values(**values))
        return values["status"]


class PollingWorker:
    """Runs run_once() until cancelled: straight on while there is work, else waits for wake() or
    the poll interval. A failing pass (the database is unreachable) is logged and retried."""

    poll_seconds: float = 0.5

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was just queued: look now instead of at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", type(self).__name__)
                done = 0
            if done:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
