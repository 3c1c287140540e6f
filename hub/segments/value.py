"""Customer value and segments: general, potential and key customers.

Per customer, over a window of `SegmentSettings.window_days`: the value and count of their orders
in the SCM back end (the optional adapter call `customer_orders`, adapters/base.py) and their
contact history in the store (conversations opened, inbound messages). The thresholds in settings
turn these into `customer.segment`, the one segment every part of the hub reads (SLA policies,
assignment, the inbox, reports).

The figures are kept in `customer_value` so the inbox shows them without asking the back end, and
so a back end that is down leaves the last figures in place (source "stale", retried at the next
interval) instead of demoting anyone. A back end that cannot list a customer's orders (or none
configured) values customers from contact history only (source "contacts"). A segment set by hand
(an admin, `mark_key_customer`) is locked: recomputation updates the figures but
never the segment; every manual change is in the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapters.base import BackendError, CustomerRef, OrderSummary, UnsupportedCall
from hub.config.settings import SegmentSettings
from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.runtime import leases
from hub.runtime.pacing import Pacer
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, Customer, CustomerValue, Identity, IdentityKind, Message, Segment, utcnow

log = logging.getLogger(__name__)

customer_t = Customer.__table__
value_t = CustomerValue.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__
message_t = Message.__table__


@dataclass(frozen=True)
class Figures:
    order_value: float
    order_count: int
    contacts: int
    messages: int


# --- the rules (pure) ---------------------------------------------------------------------------

def order_figures(orders: list[OrderSummary], settings: SegmentSettings) -> tuple[float, int]:
    """(value in settings.currency, count) of the orders that count: states not excluded. An order
    in another currency counts at its configured rate, or towards the count only."""
    excluded = set(settings.excluded_states)
    home = settings.currency.upper()
    rates = {k.upper(): v for k, v in settings.exchange_rates.items()}
    value, count = 0.0, 0
    for order in orders:
        if order.state in excluded:
            continue
        count += 1
        if not order.total:
            continue
        currency = (order.currency or home).upper()
        if currency == home:
            value += order.total
        elif currency in rates:
            value += order.total * rates[currency]
    return round(value, 2), count


def classify(figures: Figures, settings: SegmentSettings) -> Segment:
    if figures.order_value >= settings.key_value or figures.order_count >= settings.key_orders:
        return Segment.key
    if (figures.order_value >= settings.potential_value or figures.order_count >= settings.potential_orders
            or figures.contacts >= settings.potential_contacts):
        return Segment.potential
    return Segment.general


# --- the store ----------------------------------------------------------------------------------

def _customer_ref(conn, customer_id: int, name: str | None, segment: str) -> CustomerRef:
    """Every email and phone the customer wrote or called from. Unverified ones count too: value
    only steers service effort and is shown to agents (who see any order anyway); a message from
    an address is already filed under the customer who owns that address."""
    rows = conn.execute(select(identity_t.c.kind, identity_t.c.address)
                        .where(identity_t.c.customer_id == customer_id)).all()
    emails = tuple(sorted({r.address for r in rows if r.kind == "email"}))
    phones = tuple(sorted({r.address for r in rows if r.kind == "phone"}))
    return CustomerRef(customer_id=customer_id, emails=emails, phones=phones, name=name, segment=segment)


def customer_ref(engine: Engine, customer_id: int) -> CustomerRef:
    """The customer as the back end knows them (their emails and phones)."""
    with read_tx(engine) as conn:
        row = conn.execute(select(customer_t.c.name, customer_t.c.segment).where(customer_t.c.id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        return _customer_ref(conn, customer_id, row.name, row.segment)


def _contact_history(conn, customer_id: int, since: datetime) -> tuple[int, int]:
    contacts = conn.execute(select(func.count()).select_from(conversation_t).where(
        conversation_t.c.customer_id == customer_id, conversation_t.c.created_at >= since)).scalar_one()
    messages = conn.execute(
        select(func.count()).select_from(message_t)
        .join(conversation_t, conversation_t.c.id == message_t.c.conversation_id)
        .where(conversation_t.c.customer_id == customer_id, message_t.c.direction == "inbound",
               message_t.c.created_at >= since)).scalar_one()
    return int(contacts), int(messages)


@dataclass(frozen=True)
class _Snapshot:
    ref: CustomerRef
    locked: bool
    segment: str
    contacts: int
    messages: int
    previous: Any  # the customer_value row, or None


def _snapshot(engine: Engine, customer_id: int, since: datetime) -> _Snapshot:
    with read_tx(engine) as conn:
        row = conn.execute(select(customer_t).where(customer_t.c.id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        if row.merged_into is not None:
            raise Conflict(N_("customer %(id)s was merged into customer %(into)s"), params={"id": customer_id, "into": row.merged_into})
        contacts, messages = _contact_history(conn, customer_id, since)
        previous = conn.execute(select(value_t).where(value_t.c.customer_id == customer_id)).first()
        return _Snapshot(_customer_ref(conn, customer_id, row.name, row.segment), bool(row.segment_locked),
                         row.segment, contacts, messages, previous)


def _save(engine: Engine, customer_id: int, values: dict, segment: Segment | None) -> str:
    """Upsert the figures and set the segment (unless locked, or None: keep it); the segment now."""
    with write_tx(engine) as conn:
        if not conn.execute(update(value_t).where(value_t.c.customer_id == customer_id).values(**values)).rowcount:
            try:
                with conn.begin_nested():
                    conn.execute(value_t.insert().values(customer_id=customer_id, **values))
            except IntegrityError:  # computed at the same moment by another process: ours is as good
                conn.execute(update(value_t).where(value_t.c.customer_id == customer_id).values(**values))
        if segment is not None:
            conn.execute(update(customer_t)
                         .where(customer_t.c.id == customer_id, customer_t.c.segment_locked.is_(False),
                                customer_t.c.segment != segment.value)
                         .values(segment=segment.value, updated_at=utcnow()))
        return conn.execute(select(customer_t.c.segment).where(customer_t.c.id == customer_id)).scalar_one()


# --- recomputation ------------------------------------------------------------------------------

async def recompute_customer(engine: Engine, backend: Any, settings: SegmentSettings, customer_id: int, *,
                             now: datetime | None = None, retry_seconds: float | None = None) -> dict[str, Any]:
    """Recompute one customer's figures and segment; the stored figures as a dict.

    backend: an ScmBackend (guarded), or None when the hub has none running. A back end that is
    down keeps the previous order figures (source "stale") and the customer is due again after
    retry_seconds (default: the worker interval); the segment is then recomputed only from what
    is known, and left alone when nothing was ever known."""
    now = now or utcnow()
    since = now - timedelta(days=settings.window_days)
    snap = await asyncio.to_thread(_snapshot, engine, customer_id, since)
    source, error, orders_as_of = "scm", None, now
    value, count = 0.0, 0
    due = now + timedelta(hours=settings.stale_hours)
    if backend is None:
        source, orders_as_of = "contacts", None
    else:
        try:
            orders = await backend.customer_orders(snap.ref, since.date())
            value, count = order_figures(orders, settings)
        except UnsupportedCall:
            source, orders_as_of = "contacts", None
        except BackendError as exc:
            source, error = "stale", str(exc)[:500]
            prev = snap.previous
            value, count = (prev.order_value, prev.order_count) if prev is not None else (0.0, 0)
            orders_as_of = prev.orders_as_of if prev is not None else None
            due = now + timedelta(seconds=retry_seconds if retry_seconds is not None else settings.interval_seconds)
            log.warning("customer %s: order figures kept from %s, the back end is unavailable: %s",
                        customer_id, orders_as_of.isoformat() if orders_as_of else "never", exc)
    figures = Figures(value, count, snap.contacts, snap.messages)
    # Stale with nothing ever fetched: we do not know their orders, so we do not judge them.
    known = not (source == "stale" and orders_as_of is None)
    segment = classify(figures, settings) if known else None
    values = {
        "order_value": value, "order_count": count, "currency": settings.currency.upper(),
        "contacts": snap.contacts, "messages": snap.messages, "window_days": settings.window_days,
        "source": source, "error": error, "orders_as_of": orders_as_of, "computed_at": now, "due_at": due,
    }
    current = await asyncio.to_thread(_save, engine, customer_id, values, segment)
    if segment is not None and current != snap.segment:
        log.info("customer %s: segment %s -> %s", customer_id, snap.segment, current)
    return _figures_out(values, current, snap.locked)


def _figures_out(values: dict, segment: str, locked: bool) -> dict[str, Any]:
    def iso(v):
        return v.isoformat() if isinstance(v, datetime) else v

    return {
        "segment": segment, "segment_locked": locked,
        **{k: iso(values[k]) for k in ("order_value", "order_count", "currency", "contacts", "messages",
                                       "window_days", "source", "error", "orders_as_of", "computed_at")},
    }


def due_customers(engine: Engine, *, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Customers whose figures are due (or were never computed), oldest first; merged ones never."""
    now = now or utcnow()
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(customer_t.c.id)
            .select_from(customer_t.outerjoin(value_t, value_t.c.customer_id == customer_t.c.id))
            .where(customer_t.c.merged_into.is_(None), or_(value_t.c.id.is_(None), value_t.c.due_at <= now))
            .order_by(value_t.c.due_at.is_not(None), value_t.c.due_at, customer_t.c.id)
            .limit(limit)
        ).all()
    return [r.id for r in rows]


@dataclass
class RunSummary:
    computed: int = 0
    stale: int = 0   # the back end was unavailable for this many (the run stopped at the first)

    def as_dict(self) -> dict[str, int]:
        return {"computed": self.computed, "stale": self.stale}


async def recompute_due(engine: Engine, backend: Any, settings: SegmentSettings, *,
                        now: datetime | None = None, limit: int | None = None) -> RunSummary:
    """One batch of due customers. The first customer the back end cannot answer for ends the
    batch (the others stay due): a dead back end is not asked once per customer."""
    summary = RunSummary()
    ids = await asyncio.to_thread(due_customers, engine, now=now, limit=limit or settings.batch_size)
    for customer_id in ids:
        try:
            out = await recompute_customer(engine, backend, settings, customer_id, now=now)
        except (NotFound, Conflict):
            continue  # deleted or merged since the batch was read
        summary.computed += 1
        if out["source"] == "stale":
            summary.stale += 1
            break
    return summary


async def recompute_all(engine: Engine, backend: Any, settings: SegmentSettings, *,
                        actor: str | None = None) -> RunSummary:
    """Every customer now, batch after batch (the CLI): stops when the back end is down."""
    total = RunSummary()
    await asyncio.to_thread(request_recompute, engine, None, actor)
    while True:
        run = await recompute_due(engine, backend, settings)
        total.computed += run.computed
        total.stale += run.stale
        if run.stale or run.computed == 0:
            return total


def request_recompute(engine: Engine, customer_id: int | None = None, actor: str | None = None) -> int:
    """Make every customer's figures (or one's) due now; the worker picks them up. Customers never
    computed are due already. Returns how many customers are due by this request. With an actor
    (an admin's request) it is audit-logged."""
    now = utcnow()
    with write_tx(engine) as conn:
        if actor is not None:
            audit(conn, actor, "segments.recompute", f"customer:{customer_id}" if customer_id else "customers")
        query = update(value_t).values(due_at=now)
        if customer_id is not None:
            if conn.execute(select(customer_t.c.id).where(customer_t.c.id == customer_id)).first() is None:
                raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
            query = query.where(value_t.c.customer_id == customer_id)
        conn.execute(query)
        if customer_id is not None:
            return 1
        return conn.execute(select(func.count()).select_from(customer_t)
                            .where(customer_t.c.merged_into.is_(None))).scalar_one()


# --- manual segments ----------------------------------------------------------------------------

def set_manual_segment(engine: Engine, customer_id: int, segment: str | None, actor: Principal | str) -> dict[str, Any]:
    """An admin sets the segment by hand (locked: recomputation keeps it), or with None hands it
    back to the computation (due now). Audit-logged."""
    if segment is not None and segment not in {s.value for s in Segment}:
        raise RejectedInput(f"segment must be one of: {', '.join(s.value for s in Segment)}")
    who = actor.actor if isinstance(actor, Principal) else actor
    with write_tx(engine) as conn:
        lock_in_tx(conn, customer_id, segment, who)
    return customer_segment(engine, customer_id)


def lock_in_tx(conn, customer_id: int, segment: str | None, actor: str) -> None:
    """set_manual_segment in the caller's transaction (mark_key_customer)."""
    row = conn.execute(select(customer_t.c.segment, customer_t.c.segment_locked, customer_t.c.merged_into)
                       .where(customer_t.c.id == customer_id)).first()
    if row is None:
        raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
    if row.merged_into is not None:
        raise Conflict(N_("customer %(id)s was merged into customer %(into)s"), params={"id": customer_id, "into": row.merged_into})
    now = utcnow()
    if segment is None:
        conn.execute(update(customer_t).where(customer_t.c.id == customer_id).values(segment_locked=False, updated_at=now))
        conn.execute(update(value_t).where(value_t.c.customer_id == customer_id).values(due_at=now))
    else:
        conn.execute(update(customer_t).where(customer_t.c.id == customer_id)
                     .values(segment=segment, segment_locked=True, updated_at=now))
    if (row.segment, bool(row.segment_locked)) != ((segment or row.segment), segment is not None):
        audit(conn, actor, "customer.segment", f"customer:{customer_id}", segment=segment or "computed",
              previous=row.segment, previously_locked=bool(row.segment_locked))


def mark_key_customer(engine: Engine, kind: str, address: str, actor: str = "system") -> int | None:
    """Make the customer with this identity a key customer (the late-order rule reads the
    segment), set by hand: locked, so the segment recomputation keeps it;
    audit-logged. Returns the customer id, None if nobody has that address."""
    from hub.contract.addresses import normalise

    with write_tx(engine) as conn:
        customer_id = conn.execute(
            select(identity_t.c.customer_id)
            .where(identity_t.c.kind == kind, identity_t.c.address == normalise(IdentityKind(kind), address))
        ).scalar()
        if customer_id is not None:
            lock_in_tx(conn, customer_id, "key", actor)
    return customer_id


def customer_segment(engine: Engine, customer_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = conn.execute(select(customer_t.c.id, customer_t.c.segment, customer_t.c.segment_locked)
                           .where(customer_t.c.id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        return {"customer_id": row.id, "segment": row.segment, "segment_locked": bool(row.segment_locked),
                "value": value_in_tx(conn, customer_id)}


def value_in_tx(conn, customer_id: int) -> dict[str, Any] | None:
    """The stored figures for the customer panel (hub/customers/profiles.py), None before the first run."""
    v = conn.execute(select(value_t).where(value_t.c.customer_id == customer_id)).first()
    if v is None:
        return None
    return {
        "order_value": v.order_value, "order_count": v.order_count, "currency": v.currency,
        "contacts": v.contacts, "messages": v.messages, "window_days": v.window_days, "source": v.source,
        "error": v.error, "orders_as_of": v.orders_as_of.isoformat() if v.orders_as_of else None,
        "computed_at": v.computed_at.isoformat(),
    }


# --- the background worker ----------------------------------------------------------------------

class SegmentWorker:
    """Every interval, recomputes the due customers batch after batch until none is due or the
    back end is down (then it waits for the next interval). wake() runs it at once."""

    def __init__(self, engine: Engine, backend: Any, settings: SegmentSettings, *, pacer: Pacer | None = None):
        self.engine = engine
        self.backend = backend
        self.settings = settings
        self.pacer = pacer  # gives way to ingest during a burst (hub/runtime/pacing.py)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> RunSummary:
        total = RunSummary()
        while True:
            started = time.monotonic()
            leases.check()  # elected: a process that lost its lease starts no batch
            run = await recompute_due(self.engine, self.backend, self.settings)
            total.computed += run.computed
            total.stale += run.stale
            if run.stale or run.computed < self.settings.batch_size:
                break
            # Let requests through between batches, and give way to ingest during a burst.
            await asyncio.sleep(self.pacer.pause_after(started, time.monotonic()) if self.pacer else 0)
        if total.computed:
            log.info("segments: %d customers recomputed (%d with the back end unavailable)", total.computed, total.stale)
        return total

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("segments: recomputation failed; trying again next interval")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.interval_seconds)
            except TimeoutError:
                pass
            self._wake.clear()


__all__ = [
    "Figures", "RunSummary", "SegmentWorker", "classify", "customer_segment", "due_customers", "lock_in_tx",
    "order_figures", "recompute_all", "recompute_customer", "recompute_due", "request_recompute",
    "set_manual_segment", "value_in_tx",
]
