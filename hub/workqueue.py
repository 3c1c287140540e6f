"""Durable work queues in a table: claim with a lease, finish, or fail with backoff / dead-letter.

The outbox (what goes out) and the inbound spool (what came in, to process after acknowledging)
share this: rows have status, attempts, next_attempt_at, locked_until and last_error. On
PostgreSQL several workers claim with FOR UPDATE SKIP LOCKED and never take the same row; on SQLite
BEGIN IMMEDIATE serialises the claims. A worker that dies mid-task leaves its row to be claimed
again when the lease runs out, so handlers must tolerate doing the same task twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, and_, or_, select, update

from hub.db import write_tx
from hub.models import utcnow

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


@dataclass(frozen=True)
class WorkQueue:
    table: Table
    pending: str = "pending"
    active: str = "sending"
    done: str = "sent"
    dead: str = "dead"

    def claim(self, engine: Engine, *, limit: int, policy: RetryPolicy, now: datetime | None = None) -> list[Any]:
        """Due rows, marked active with a lease and their attempt counted; ordered by id."""
        t = self.table
        now = now or utcnow()
        due = or_(
            and_(t.c.status == self.pending, t.c.next_attempt_at <= now),
            # A lease that ran out: its worker died mid-task.
            and_(t.c.status == self.active, t.c.locked_until < now),
        )
        pick = select(t.c.id).where(due).order_by(t.c.next_attempt_at, t.c.id).limit(limit)
        with write_tx(engine) as conn:
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
        t = self.table
        conn.execute(update(t).where(t.c.id == row_id).values(status=self.done, locked_until=None, last_error=None, **values))

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
            except asyncio.TimeoutError:
                pass
