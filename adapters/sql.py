"""The SQL back end: orders, shipments and stock read from any database SQLAlchemy reaches.

Tables and columns come from settings (adapters/config.py SqlSettings), whose defaults describe
the demo schema (adapters/demo_scm.py); a shop points it at its own order database by mapping
names, never by writing SQL. Queries are SQLAlchemy Core built from that mapping (identifiers are
quoted by the dialect, values are bound), run on a sync engine in a worker thread so the event
loop never waits on the database. Escalated cases and demand go to their own tables when mapped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapters.base import (
    BackendUnavailable,
    CustomerRef,
    DemandSignal,
    EscalationCase,
    EscalationNotSupported,
    EscalationReceipt,
    OrderLine,
    OrderStatus,
    OrderSummary,
    Product,
    ProductRef,
    StockLevel,
    UnknownOrder,
    UnknownProduct,
    as_date,
    as_datetime,
    as_float,
    map_state,
    normalise_email,
    normalise_phone,
    order_ref_candidates,
    product_label,
    product_terms,
)
from adapters.config import BackendMisconfigured, SqlSettings
from hub.contract import clock

T = TypeVar("T")


class _Mapped:
    """A mapped table as a lightweight Core table: only the columns the mapping names."""

    def __init__(self, section: str, mapping: Any, schema: str | None, required: tuple[str, ...] = (), **types: Any):
        self.names = {field: col for field, col in mapping.model_dump().items()
                      if field != "table" and isinstance(col, str) and col}  # "" or None: not in this schema
        for field in required:
            if field not in self.names:
                raise BackendMisconfigured(f"scm.backend.sql.{section}.{field} must name a column")
        cols = {col: sa.column(col, types.get(field)) for field, col in self.names.items()}
        self.table = sa.table(mapping.table, *cols.values(), schema=schema)

    def __getattr__(self, field: str) -> sa.ColumnClause:
        try:
            return self.table.c[self.names[field]]
        except KeyError:
            raise AttributeError(field) from None

    def has(self, field: str) -> bool:
        return field in self.names


class SqlBackend:
    """ScmBackend over a mapped SQL schema."""

    name = "sql"

    def __init__(self, settings: SqlSettings, *, url: str, phone_region: str | None = None,
                 engine: Engine | None = None):
        self.settings = settings
        self.phone_region = phone_region
        schema = settings.db_schema
        self.orders = _Mapped("orders", settings.orders, schema, ("key", "ref", "state"))
        self.lines = _Mapped("order_lines", settings.order_lines, schema, ("order_key", "sku", "quantity"))
        self.shipments = (_Mapped("shipments", settings.shipments, schema, ("order_key",))
                          if settings.shipments.table else None)
        self.products_t = _Mapped("products", settings.products, schema, ("sku", "name"), active=sa.Boolean(),
                                  sku=sa.String(), name=sa.String(), variant=sa.String(), aliases=sa.String())
        self.stock_t = _Mapped("stock", settings.stock, schema, ("sku", "location", "on_hand"))
        self.receipts = (_Mapped("receipts", settings.receipts, schema, ("sku", "location", "expected_date", "quantity"),
                                 received=sa.Boolean()) if settings.receipts.table else None)
        self.cases = (_Mapped("cases", settings.cases, schema, _all_columns(settings.cases))
                      if settings.cases.table else None)
        self.demand = (_Mapped("demand", settings.demand, schema, _all_columns(settings.demand))
                       if settings.demand.table else None)
        self.engine = engine or _engine(url)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except SQLAlchemyError as exc:
            # Down, refusing connections, or a mapping naming a column that is not there: either
            # way the hub cannot answer from it now; the message says which.
            detail = getattr(exc, "orig", None) or exc
            raise BackendUnavailable(f"SCM database: {type(detail).__name__}: {detail}".splitlines()[0]) from exc

    # --- orders ---------------------------------------------------------------------------------

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        return await self._run(self._order_status, ref)

    def _order_status(self, ref: str) -> OrderStatus:
        candidates = order_ref_candidates(ref, self.settings.order_prefixes)
        if not candidates:
            raise UnknownOrder(f"no order {ref!r}")
        o = self.orders
        with self.engine.connect() as conn:
            found = {row._mapping[o.names["ref"]]: row._mapping for row in conn.execute(
                sa.select(o.table).where(o.ref.in_(candidates)))}
            if not found:
                raise UnknownOrder(f"no order {ref!r}")
            order = next(found[c] for c in candidates if c in found)
            key = order[o.names["key"]]
            lines = self._lines(conn, key)
            shipments = self._shipments(conn, key)
        return self._order(order, lines, shipments)

    def _lines(self, conn: sa.Connection, key: Any) -> list[OrderLine]:
        li = self.lines
        query = sa.select(li.table).where(li.order_key == key)
        if li.has("position"):
            query = query.order_by(li.position)
        out = []
        for row in conn.execute(query):
            m = row._mapping
            out.append(OrderLine(
                sku=str(m[li.names["sku"]]),
                name=str(m[li.names["name"]]) if li.has("name") and m[li.names["name"]] is not None else str(m[li.names["sku"]]),
                quantity=as_float(m[li.names["quantity"]]) or 0.0,
                shipped_quantity=as_float(m[li.names["shipped_quantity"]]) if li.has("shipped_quantity") else None,
                state=m[li.names["state"]] if li.has("state") else None,
            ))
        return out

    def _shipments(self, conn: sa.Connection, key: Any) -> list[dict]:
        sh = self.shipments
        if sh is None:
            return []
        query = sa.select(sh.table).where(sh.order_key == key)
        rows = [{f: row._mapping[c] for f, c in sh.names.items()} for row in conn.execute(query)]
        # Latest shipment last: its carrier and tracking are what the customer wants.
        return sorted(rows, key=lambda r: as_datetime(r.get("shipped_at")) or datetime.min.replace(tzinfo=UTC))

    def _order(self, m: Any, lines: list[OrderLine], shipments: list[dict]) -> OrderStatus:
        n = self.orders.names

        def get(field: str) -> Any:
            return m[n[field]] if field in n else None

        last = shipments[-1] if shipments else {}
        shipped = [as_datetime(s.get("shipped_at")) for s in shipments if s.get("shipped_at")]
        raw_state = get("state")
        total = as_float(get("total"))
        return OrderStatus(
            ref=str(get("ref")),
            state=map_state(raw_state, self.settings.states),
            lines=tuple(lines),
            carrier=last.get("carrier"),
            tracking_number=last.get("tracking_number"),
            tracking_url=last.get("tracking_url"),
            ordered_at=as_datetime(get("ordered_at")),
            shipped_at=min(shipped) if shipped else None,
            promised_date=as_date(get("promised_date")),
            expected_date=as_date(get("expected_date")) or as_date(last.get("expected_date")),
            owner_email=normalise_email(get("email")),
            owner_phone=normalise_phone(get("phone"), self.phone_region),
            backend_state=None if raw_state is None else str(raw_state),
            total=total,
            currency=get("currency"),
        )

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        return await self._run(self._customer_orders, customer, since)

    def _customer_orders(self, customer: CustomerRef, since: date | None) -> list[OrderSummary]:
        """Orders whose email (case-insensitive) or phone (spaces, dashes, dots and brackets
        ignored, so "+44 20 7946 0958" is +442079460958) is one of the customer's. A phone stored
        in national form only cannot be told apart from another country's and never matches."""
        o = self.orders
        emails = sorted({e for e in (normalise_email(x) for x in customer.emails) if e})
        phones = sorted({p for p in (normalise_phone(x, self.phone_region) for x in customer.phones) if p})
        who = []
        if emails and o.has("email"):
            who.append(sa.func.lower(o.email).in_(emails))
        if phones and o.has("phone"):
            squeezed = o.phone
            for ch in (" ", "-", ".", "(", ")"):
                squeezed = sa.func.replace(squeezed, ch, "")
            who.append(squeezed.in_(phones))
        if not who:
            return []
        # `since` is applied here, not in SQL: one customer's orders are few, and date columns
        # compare unreliably across drivers when the mapping gives no type.
        query = sa.select(o.table).where(sa.or_(*who))
        n = o.names
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                m = row._mapping
                raw_state = m[n["state"]]
                placed = as_date(m[n["ordered_at"]]) if o.has("ordered_at") else None
                if since is not None and placed is not None and placed < since:
                    continue
                out.append(OrderSummary(
                    ref=str(m[n["ref"]]), placed_on=placed,
                    total=as_float(m[n["total"]]) if o.has("total") else None,
                    currency=m[n["currency"]] if o.has("currency") else None,
                    state=map_state(None if raw_state is None else str(raw_state), self.settings.states),
                ))
        return sorted(out, key=lambda s: (s.placed_on or date.min, s.ref))

    # --- products and stock ---------------------------------------------------------------------

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        return await self._run(self._stock, product)

    def _stock(self, product: ProductRef) -> list[StockLevel]:
        with self.engine.connect() as conn:
            found = self._match_products(conn, product)
            if not found:
                raise UnknownProduct(f"no product matches {product.sku or product.text!r}")
            return self._levels(conn, found)

    def _match_products(self, conn: sa.Connection, product: ProductRef) -> dict[str, str]:
        """sku -> display name of the products the customer means: the SKU exactly, else every
        active product whose name, variant, aliases or SKU hold all the words."""
        p = self.products_t
        variant = p.variant if p.has("variant") else sa.null()
        base = sa.select(p.sku.label("sku"), p.name.label("name"), variant.label("variant")).order_by(p.sku).limit(self.settings.max_products)
        if product.sku:
            wanted = list(dict.fromkeys([product.sku.strip(), product.sku.strip().upper()]))
            rows = conn.execute(base.where(p.sku.in_(wanted))).all()
            if rows:
                return {str(r.sku): product_label(r.name, r.variant) for r in rows}
        terms = product_terms(product.text, product.variant)
        if not terms:
            return {}
        searched = [p.sku, p.name] + [getattr(p, f) for f in ("variant", "aliases") if p.has(f)]
        query = base.where(*[
            sa.or_(*[sa.func.lower(sa.func.coalesce(col, "")).contains(term, autoescape=True) for col in searched])
            for term in terms
        ])
        if p.has("active"):
            query = query.where(sa.or_(p.active.is_(None), p.active == sa.true()))
        return {str(r.sku): product_label(r.name, r.variant) for r in conn.execute(query)}

    def _levels(self, conn: sa.Connection, found: dict[str, str]) -> list[StockLevel]:
        s = self.stock_t
        levels: dict[tuple[str, str], dict] = {}
        for row in conn.execute(sa.select(s.table).where(s.sku.in_(list(found)))):
            m = row._mapping
            on_hand = as_float(m[s.names["on_hand"]]) or 0.0
            if s.has("available"):
                available = as_float(m[s.names["available"]]) or 0.0
            else:
                reserved = as_float(m[s.names["reserved"]]) if s.has("reserved") else 0.0
                available = on_hand - (reserved or 0.0)
            key = (str(m[s.names["sku"]]), str(m[s.names["location"]]))
            levels[key] = {"on_hand": on_hand, "available": max(available, 0.0), "incoming": []}
        if self.receipts is not None:
            r = self.receipts
            query = sa.select(r.table).where(r.sku.in_(list(found))).order_by(r.expected_date)
            if r.has("received"):
                query = query.where(sa.or_(r.received.is_(None), r.received == sa.false()))
            for row in conn.execute(query):
                m = row._mapping
                key = (str(m[r.names["sku"]]), str(m[r.names["location"]]))
                level = levels.setdefault(key, {"on_hand": 0.0, "available": 0.0, "incoming": []})
                day = as_date(m[r.names["expected_date"]])
                if day is not None:
                    level["incoming"].append((day, as_float(m[r.names["quantity"]]) or 0.0))
        out = []
        for sku, label in found.items():
            places = sorted(loc for (s_, loc) in levels if s_ == sku)
            if not places:  # known product, never stocked anywhere: that is an answer too
                out.append(StockLevel(sku=sku, location="all", available=0.0, on_hand=0.0, product_name=label))
            for loc in places:
                lv = levels[(sku, loc)]
                out.append(StockLevel(sku=sku, location=loc, available=lv["available"], on_hand=lv["on_hand"],
                                      incoming=tuple(sorted(lv["incoming"])), product_name=label))
        return out

    async def products(self) -> list[Product]:
        return await self._run(self._products)

    def _products(self) -> list[Product]:
        p = self.products_t
        query = sa.select(p.table).order_by(p.sku)
        if p.has("active"):
            query = query.where(sa.or_(p.active.is_(None), p.active == sa.true()))
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                m = row._mapping
                aliases = m[p.names["aliases"]] if p.has("aliases") else None
                out.append(Product(
                    sku=str(m[p.names["sku"]]), name=str(m[p.names["name"]]),
                    variant=(m[p.names["variant"]] or None) if p.has("variant") else None,
                    aliases=tuple(a.strip() for a in (aliases or "").replace(";", ",").replace("|", ",").split(",") if a.strip()),
                ))
        return out

    # --- cases and demand -----------------------------------------------------------------------

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        if self.cases is None:
            raise EscalationNotSupported("the SQL back end has no cases table: escalate by webhook")
        return await self._run(self._escalate, case)

    def _escalate(self, case: EscalationCase) -> EscalationReceipt:
        c = self.cases
        lookup = sa.select(c.id).where(c.case_id == case.case_id)
        with self.engine.begin() as conn:
            existing = conn.execute(lookup).scalar()
            if existing is not None:
                return EscalationReceipt(reference=f"CASE-{existing}")
        values = {
            c.names["case_id"]: case.case_id, c.names["conversation_id"]: case.conversation_id,
            c.names["reason"]: case.reason, c.names["summary"]: case.summary, c.names["priority"]: case.priority,
            c.names["customer_email"]: case.customer.emails[0] if case.customer.emails else None,
            c.names["order_refs"]: ",".join(case.order_refs),
            c.names["facts"]: json.dumps({**case.facts, "url": case.url}, default=str),
            c.names["created_at"]: clock.now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(c.table).values(values))
        except IntegrityError:
            pass  # the same case escalated concurrently: the first insert stands
        with self.engine.connect() as conn:
            return EscalationReceipt(reference=f"CASE-{conn.execute(lookup).scalar_one()}")

    async def record_demand(self, signal: DemandSignal) -> None:
        """Keeps the day's totals: a later signal for the same day and SKU replaces the earlier
        one, so the hub can resend a day's figures any number of times."""
        if self.demand is None:
            return
        await self._run(self._record_demand, signal)

    def _record_demand(self, signal: DemandSignal) -> None:
        d = self.demand
        where = sa.and_(d.day == signal.day, d.sku == signal.sku)
        figures = {d.names["asked"]: signal.asked, d.names["unavailable"]: signal.unavailable,
                   d.names["product_name"]: signal.product_name}
        for _attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(sa.update(d.table).where(where).values(figures)).rowcount:
                        return
                    conn.execute(sa.insert(d.table).values({**figures, d.names["day"]: signal.day,
                                                            d.names["sku"]: signal.sku}))
                    return
            except IntegrityError:
                continue  # inserted concurrently: the update now finds it

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)


def _all_columns(mapping: Any) -> tuple[str, ...]:
    """Tables the hub writes to need every column it writes."""
    return tuple(f for f in type(mapping).model_fields if f != "table")


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Connections move between the worker threads asyncio.to_thread uses.
        return sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=1800)
