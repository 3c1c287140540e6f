"""The inbound spool: channels store what they receive before acknowledging it upstream, and the
hub processes it afterwards through the channel's process(), with retries and backoff.

A webhook can then answer within milliseconds, an SMTP server can say 250 only once the bytes are
safe, an IMAP poller can move past a UID knowing the message is kept. What fails for good stays in
the spool as rejected, with the reason and the raw input, for an admin to look at.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, func, select

from channels.base import PermanentFailure, TemporaryFailure
from hub.blobs import BlobStore
from hub.db import read_tx, write_tx
from hub.errors import HubError
from hub.models import InboundSpool, SpoolStatus, utcnow
from hub.sql import insert_ignoring_conflict
from hub.workqueue import PollingWorker, RetryPolicy, WorkQueue

log = logging.getLogger(__name__)
spool_t = InboundSpool.__table__
QUEUE = WorkQueue(
    spool_t, pending=SpoolStatus.pending, active=SpoolStatus.processing, done=SpoolStatus.done, dead=SpoolStatus.rejected
)


def _insert(engine: Engine, blobs: BlobStore, channel: str, key: str, payload: dict, raw: bytes | None, **values) -> bool:
    sha = blobs.put(raw) if raw is not None else None
    now = utcnow()
    row = {
        "channel": channel,
        "key": key[:500],
        "payload": payload,
        "blob_sha256": sha,
        "status": SpoolStatus.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        **values,
    }
    with write_tx(engine) as conn:
        return insert_ignoring_conflict(conn, spool_t, row) is not None


def spool(engine: Engine, blobs: BlobStore, channel: str, key: str, payload: dict, raw: bytes | None = None) -> bool:
    """Store one received item durably; False if (channel, key) was stored before (a redelivery)."""
    return _insert(engine, blobs, channel, key, payload, raw)


def reject(engine: Engine, blobs: BlobStore, channel: str, key: str, reason: str, payload: dict, raw: bytes | None = None) -> None:
    """Record input refused on arrival (too large, unreadable) with its reason and what was received."""
    _insert(engine, blobs, channel, key, payload, raw,
            status=SpoolStatus.rejected, last_error=reason[:2000], processed_at=utcnow())


def rejected(engine: Engine, *, channel: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(spool_t).where(spool_t.c.status == SpoolStatus.rejected)
    if channel:
        stmt = stmt.where(spool_t.c.channel == channel)
    with read_tx(engine) as conn:
        rows = conn.execute(stmt.order_by(spool_t.c.id.desc()).limit(limit)).all()
    from hub.conversations import iso

    return [
        {
            "id": r.id,
            "channel": r.channel,
            "key": r.key,
            "reason": r.last_error,
            "attempts": r.attempts,
            "raw_sha256": r.blob_sha256,
            "received_at": iso(r.created_at),
            "detail": r.payload,  # what the channel kept (headers of an oversized mail, say)
        }
        for r in rows
    ]


def counts(engine: Engine) -> dict[str, int]:
    with read_tx(engine) as conn:
        return dict(conn.execute(select(spool_t.c.status, func.count()).group_by(spool_t.c.status)).all())


class SpoolWorker(PollingWorker):
    """Claims due spool rows and hands each to its channel's process()."""

    def __init__(self, engine: Engine, registry, blobs: BlobStore, *, policy: RetryPolicy = RetryPolicy(),
                 batch_size: int = 20, poll_seconds: float = 0.5):
        super().__init__()
        self.engine = engine
        self.registry = registry
        self.blobs = blobs
        self.policy = policy
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds

    async def run_once(self) -> int:
        rows = await asyncio.to_thread(QUEUE.claim, self.engine, limit=self.batch_size, policy=self.policy)
        for row in rows:
            await self._process(row)
        return len(rows)

    async def _process(self, row) -> None:
        try:
            channel = self.registry.get(row.channel)
            raw = await asyncio.to_thread(self.blobs.get, row.blob_sha256) if row.blob_sha256 else None
            await channel.process(row.payload, raw)
        except TemporaryFailure as exc:
            await asyncio.to_thread(QUEUE.fail, self.engine, row, str(exc), policy=self.policy, retry_after=exc.retry_after)
        except (PermanentFailure, HubError) as exc:
            # Unreadable or refused input: kept as rejected with the reason; the rest goes on.
            log.warning("spooled %s %s rejected: %s", row.channel, row.key, exc)
            await asyncio.to_thread(QUEUE.fail, self.engine, row, str(exc), policy=self.policy, permanent=True)
        except Exception as exc:
            log.exception("processing spooled %s %s failed", row.channel, row.key)
            await asyncio.to_thread(QUEUE.fail, self.engine, row, f"{type(exc).__name__}: {exc}", policy=self.policy)
        else:
            def finish():
                with write_tx(self.engine) as conn:
                    QUEUE.finish(conn, row.id, processed_at=utcnow())

            await asyncio.to_thread(finish)


def load_state(engine: Engine, channel: str, name: str) -> dict | None:
    from hub.models import ChannelState

    t = ChannelState.__table__
    with read_tx(engine) as conn:
        return conn.execute(select(t.c.value).where(t.c.channel == channel, t.c.name == name)).scalar()


def save_state(engine: Engine, channel: str, name: str, value: dict) -> None:
    from sqlalchemy import update

    from hub.models import ChannelState

    t = ChannelState.__table__
    now = utcnow()
    with write_tx(engine) as conn:
        if insert_ignoring_conflict(conn, t, {"channel": channel, "name": name, "value": value, "updated_at": now}) is None:
            conn.execute(update(t).where(t.c.channel == channel, t.c.name == name).values(value=value, updated_at=now))
