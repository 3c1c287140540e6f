"""Channel status for the admin pages: each configured channel, whether a real adapter or the
log channel serves it, what the adapter says about its connection, and what the outbox says
about its deliveries (queued, failed, the last failure's reason)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from hub.store.db import read_tx
from hub.store.models import Outbox, OutboxStatus

outbox_t = Outbox.__table__


def channel_status(engine: Engine, registry) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        counts = {
            (r.channel, r.status): r.n
            for r in conn.execute(
                select(outbox_t.c.channel, outbox_t.c.status, func.count().label("n"))
                .where(outbox_t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.dead]))
                .group_by(outbox_t.c.channel, outbox_t.c.status)
            )
        }
        last_failed = {}
        for name in registry.names():
            row = conn.execute(
                select(outbox_t.c.last_error, outbox_t.c.created_at)
                .where(outbox_t.c.status == OutboxStatus.dead, outbox_t.c.channel == name)
                .order_by(outbox_t.c.id.desc()).limit(1)
            ).first()
            if row is not None:
                last_failed[name] = row.last_error
    out = []
    for name in registry.names():
        channel = registry.get(name)
        kind = type(channel).__name__
        is_log = kind == "LogChannel"
        connected = getattr(channel, "connected", None)
        out.append({
            "name": name,
            "adapter": kind,
            "configured": not is_log,
            "connected": None if is_log else (connected() if callable(connected) else connected),
            "adapter_error": getattr(channel, "last_error", None),
            "queued": counts.get((name, OutboxStatus.pending), 0) + counts.get((name, OutboxStatus.sending), 0),
            "failed": counts.get((name, OutboxStatus.dead), 0),
            "last_delivery_error": last_failed.get(name),
        })
    return out
