"""Demand flowing back: every stock question is counted per product and day (UTC), with whether it
was available; unmet demand (asked for, out of stock) is listed for the business and pushed to the
back end's record_demand() once a day is complete.

A signal carries the day's totals for a SKU. A day that changes after it was pushed (a question
routed late, after the back end was down) is pushed again with the new totals, so back ends should
store a signal per (day, sku), replacing what they had. Nothing is lost: a failed push leaves the
row unpushed and the next run tries again.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update

from adapters.base import BackendError, DemandSignal, ScmBackend
from hub.contract.errors import RejectedInput
from hub.runtime import leases
from hub.store.db import read_tx, write_tx
from hub.store.models import DemandCount, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.workqueue import PollingWorker
from hub.web.day_range import parse_day_range

log = logging.getLogger(__name__)
demand_t = DemandCount.__table__

CSV_COLUMNS = ("day", "sku", "product_name", "asked", "unavailable", "available")
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


def count(conn: Connection, day: date, sku: str, *, unavailable: bool, product_name: str | None = None) -> None:
    """One stock question about `sku` on `day`, in the caller's transaction (the routing one, so a
    question is counted exactly once)."""
    now = utcnow()
    sku = sku[:100]
    name = product_name[:300] if product_name else None
    inserted = insert_ignoring_conflict(
        conn,
        demand_t,
        {"day": day, "sku": sku, "product_name": name, "asked": 1, "unavailable": int(unavailable),
         "pushed_asked": 0, "pushed_unavailable": 0, "updated_at": now},
    )
    if inserted is None:
        values: dict[str, Any] = {
            "asked": demand_t.c.asked + 1,
            "unavailable": demand_t.c.unavailable + int(unavailable),
            "updated_at": now,
        }
        if name:
            values["product_name"] = name
        conn.execute(update(demand_t).where(demand_t.c.day == day, demand_t.c.sku == sku).values(**values))


@dataclass(frozen=True)
class DemandQuery:
    start: date
    end: date  # inclusive
    unmet: bool = False
    sku: str | None = None


def parse_query(raw_from: str | None, raw_to: str | None, raw_unmet: str | None, sku: str | None = None,
                *, today: date | None = None) -> DemandQuery:
    """from/to as YYYY-MM-DD (default: the last 30 days up to today), unmet true/false."""
    today = today or utcnow().date()

    start, end = parse_day_range(raw_from, raw_to, today=today, default_days=DEFAULT_RANGE_DAYS, max_days=MAX_RANGE_DAYS)
    unmet = (raw_unmet or "false").strip().lower()
    if unmet not in ("true", "false", "1", "0", "yes", "no"):
        raise RejectedInput("unmet must be true or false")
    sku = (sku or "").strip() or None
    if sku is not None and len(sku) > 100:
        raise RejectedInput("sku must have at most 100 characters")
    return DemandQuery(start, end, unmet in ("true", "1", "yes"), sku)


def demand(engine: Engine, query: DemandQuery) -> list[dict[str, Any]]:
    """Per day and SKU, oldest day first; with unmet, only where customers found it unavailable."""
    stmt = select(demand_t).where(demand_t.c.day >= query.start, demand_t.c.day <= query.end)
    if query.unmet:
        stmt = stmt.where(demand_t.c.unavailable > 0)
    if query.sku:
        stmt = stmt.where(demand_t.c.sku == query.sku)
    with read_tx(engine) as conn:
        rows = conn.execute(stmt.order_by(demand_t.c.day, demand_t.c.sku)).all()
    return [
        {
            "day": r.day.isoformat(),
            "sku": r.sku,
            "product_name": r.product_name,
            "asked": r.asked,
            "unavailable": r.unavailable,
            "available": r.asked - r.unavailable,
        }
        for r in rows
    ]


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    return out.getvalue()


# --- pushing to the back end --------------------------------------------------------------------


def due(engine: Engine, *, before: date, limit: int = 500) -> list[Any]:
    """Complete days whose totals the back end has not been told yet."""
    stmt = (
        select(demand_t)
        .where(
            demand_t.c.day < before,
            or_(demand_t.c.asked != demand_t.c.pushed_asked, demand_t.c.unavailable != demand_t.c.pushed_unavailable),
        )
        .order_by(demand_t.c.day, demand_t.c.sku)
        .limit(limit)
    )
    with read_tx(engine) as conn:
        return conn.execute(stmt).all()


def mark_pushed(engine: Engine, row_id: int, asked: int, unavailable: int) -> None:
    with write_tx(engine) as conn:
        conn.execute(
            update(demand_t).where(demand_t.c.id == row_id)
            .values(pushed_asked=asked, pushed_unavailable=unavailable, pushed_at=utcnow())
        )


async def push_demand(engine: Engine, backend: ScmBackend, *, today: date | None = None, batch: int = 500) -> tuple[int, int]:
    """Push every due (day, SKU) signal; returns (pushed, left for later). Stops at the first
    back-end failure (it is most likely down) and leaves the rest for the next run."""
    before = today or utcnow().date()
    pushed = 0
    while True:
        leases.check()  # elected: a process that lost its lease pushes nothing more
        rows = await asyncio.to_thread(due, engine, before=before, limit=batch)
        for i, row in enumerate(rows):
            signal = DemandSignal(day=row.day, sku=row.sku, asked=row.asked, unavailable=row.unavailable,
                                  product_name=row.product_name)
            try:
                await backend.record_demand(signal)
            except BackendError as exc:
                log.warning("demand for %s on %s not pushed (will retry): %s", row.sku, row.day, exc)
                return pushed, len(rows) - i
            await asyncio.to_thread(mark_pushed, engine, row.id, row.asked, row.unavailable)
            pushed += 1
        if len(rows) < batch:
            return pushed, 0


class DemandPusher(PollingWorker):
    """Pushes complete days on a schedule (and at start, so a restart does not delay a day)."""

    def __init__(self, engine: Engine, backend: ScmBackend, *, interval_seconds: float = 3600.0):
        super().__init__()
        self.engine = engine
        self.backend = backend
        self.poll_seconds = interval_seconds

    async def run_once(self) -> int:
        await push_demand(self.engine, self.backend)
        return 0  # done until the next interval (a failure is retried then)
