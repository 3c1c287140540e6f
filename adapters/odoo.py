"""Odoo back end over the external JSON-RPC API.

Shapes followed (Odoo documentation "External API", 14.0-18.0; "External RPC API" in 19.0, which
deprecates /jsonrpc in favour of the JSON-2 API and schedules its removal for Odoo 22): POST
{url}/jsonrpc with {"jsonrpc": "2.0", "method": "call", "params": {"service": "common",
"method": "authenticate", "args": [db, login, password, {}]}} for the uid (false when refused),
then {"service": "object", "method": "execute_kw", "args": [db, uid, password_or_api_key, model,
method, args, kwargs]}. Server errors arrive with HTTP 200 as {"error": {"code": 200, "message":
"Odoo Server Error", "data": {"name": "odoo.exceptions.AccessDenied", "message": ...}}}.

Models read: sale.order (name, state, partner_id, date_order, commitment_date, expected_date,
picking_ids), sale.order.line, stock.picking (state, picking_type_code, scheduled_date, date_done;
carrier_id / carrier_tracking_ref / carrier_tracking_url when the delivery module is installed),
res.partner (email, phone, mobile where the version has it) for ownership, product.product
(default_code, display_name; qty_available / free_qty read per warehouse with the `location`
context), stock.warehouse (lot_stock_id) and stock.move (incoming receipts). Escalation creates a
helpdesk.ticket (Odoo Enterprise Helpdesk) when configured, else goes by the hub's webhook.
"""

from __future__ import annotations

import html
import itertools
import re
from datetime import date
from typing import Any

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
from adapters.config import OdooSettings
from adapters.http import HttpError, JsonApi
from adapters.like import like_literal

# sale.order.state -> ours (Odoo 17 dropped "done" for a `locked` flag; both read the same).
SALE_STATES = {"draft": "pending", "sent": "pending", "sale": "confirmed", "done": "confirmed", "cancel": "cancelled"}
PRIORITIES = {"low": "0", "normal": "1", "high": "2", "urgent": "3"}
PAGE = 500
MAX_PAGES = 100
_CODE = re.compile(r"^\[([^\]]+)\]\s*")


class OdooServerError(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message

    @property
    def invalid_field(self) -> bool:
        return self.name.endswith("ValueError") and "Invalid field" in self.message


class OdooRpc(JsonApi):
    system = "Odoo"
    _ids = itertools.count(1)

    async def call(self, service: str, method: str, *args: Any) -> Any:
        payload = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                   "params": {"service": service, "method": method, "args": list(args)}}
        try:
            data = await self.send("POST", "/jsonrpc", json_body=payload)
        except HttpError as err:
            raise self.unavailable(err) from None
        if not isinstance(data, dict):
            raise BackendUnavailable(f"{self.system} answered something that is not JSON-RPC")
        if data.get("error"):
            info = (data["error"].get("data") or {}) if isinstance(data["error"], dict) else {}
            raise OdooServerError(str(info.get("name") or "odoo.error"),
                                  str(info.get("message") or data["error"].get("message") or "server error"))
        return data.get("result")


class OdooBackend:
    name = "odoo"

    def __init__(self, settings: OdooSettings, *, phone_region: str | None = None, timeout_seconds: float = 5.0):
        self.settings = settings
        self.phone_region = phone_region
        self.rpc = OdooRpc(settings.url, timeout_seconds=timeout_seconds)
        self.rpc.system = f"Odoo at {settings.url}"
        self._uid: int | None = None
        self._missing_fields: dict[str, set[str]] = {}  # optional fields this server does not have

    # --- the object service ---------------------------------------------------------------------

    async def _login(self) -> int:
        if self._uid is None:
            s = self.settings
            try:
                uid = await self.rpc.call("common", "authenticate", s.database, s.username,
                                          s.password.get_secret_value(), {})
            except OdooServerError as err:
                raise BackendUnavailable(f"{self.rpc.system}: login failed ({err.name}: {err.message[:200]})") from None
            if not uid:
                raise BackendUnavailable(f"{self.rpc.system} refused the login of {s.username!r} on database "
                                         f"{s.database!r}: check the user and password or API key")
            self._uid = int(uid)
        return self._uid

    async def execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        uid = await self._login()
        s = self.settings
        try:
            return await self.rpc.call("object", "execute_kw", s.database, uid, s.password.get_secret_value(),
                                       model, method, list(args), kwargs)
        except OdooServerError as err:
            if err.name.endswith("AccessDenied"):
                self._uid = None  # the password or key changed: log in afresh next time
            raise

    async def _search_read(self, model: str, domain: list, fields: list[str], optional: tuple[str, ...] = (),
                           **kwargs: Any) -> list[dict]:
        """search_read asking for `optional` fields too, unless this server lacks them (a module
        not installed, a field a newer version dropped): then without, remembered."""
        wanted = [f for f in optional if f not in self._missing_fields.get(model, set())]
        try:
            return await self.execute(model, "search_read", domain, fields=fields + wanted, **kwargs)
        except OdooServerError as err:
            if not (wanted and err.invalid_field):
                raise
            self._missing_fields.setdefault(model, set()).update(wanted)
            return await self.execute(model, "search_read", domain, fields=fields, **kwargs)

    async def _guarded(self, coro) -> Any:
        """Odoo server errors are the back end failing for the hub (configuration, rights)."""
        try:
            return await coro
        except OdooServerError as err:
            hint = " (is the app installed?)" if err.name.endswith("KeyError") else ""
            raise BackendUnavailable(f"{self.rpc.system}: {err.name}: {err.message[:200]}{hint}") from None

    # --- orders ---------------------------------------------------------------------------------

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        return await self._guarded(self._order_status(ref))

    def _candidates(self, ref: str) -> list[str]:
        out = order_ref_candidates(ref, self.settings.order_prefixes)
        # Odoo's sequences pad the number ("S00042"): "42" and "S42" mean S00042.
        for prefix in self.settings.order_prefixes:
            for cand in list(out):
                number = cand[len(prefix):] if cand.upper().startswith(prefix.upper()) else None
                if number and number.isdigit():
                    padded = prefix + number.zfill(self.settings.order_digits)
                    if padded not in out:
                        out.append(padded)
        return out

    async def _order_status(self, ref: str) -> OrderStatus:
        candidates = self._candidates(ref)
        if not candidates:
            raise UnknownOrder(f"no order {ref!r}")
        fields = ["name", "state", "partner_id", "date_order", "commitment_date", "expected_date", "amount_total",
                  "currency_id", "picking_ids", "client_order_ref"]
        rows = await self.execute("sale.order", "search_read", [["name", "in", candidates]], fields=fields, limit=10)
        if not rows and ref.strip():
            # The customer's own purchase order number, when it names exactly one order.
            rows = await self.execute("sale.order", "search_read", [["client_order_ref", "=", ref.strip()]],
                                      fields=fields, limit=2)
            rows = rows if len(rows) == 1 else []
        if not rows:
            raise UnknownOrder(f"no order {ref!r}")
        by_name = {r["name"]: r for r in rows}
        order = next((by_name[c] for c in candidates if c in by_name), rows[0])
        lines = await self.execute("sale.order.line", "search_read", [["order_id", "=", order["id"]]],
                                   fields=["product_id", "name", "product_uom_qty", "qty_delivered", "display_type"],
                                   order="sequence asc")
        codes = await self._codes([ln["product_id"][0] for ln in lines if ln.get("product_id")])
        pickings = []
        if order.get("picking_ids"):
            pickings = await self._search_read(
                "stock.picking", [["id", "in", order["picking_ids"]], ["state", "!=", "cancel"]],
                ["name", "state", "picking_type_code", "scheduled_date", "date_done", "date_deadline"],
                optional=("carrier_id", "carrier_tracking_ref", "carrier_tracking_url"), order="scheduled_date asc")
        email = phone = None
        if order.get("partner_id"):
            partners = await self._search_read("res.partner", [["id", "=", order["partner_id"][0]]],
                                               ["email", "phone"], optional=("mobile",))
            if partners:
                email = partners[0].get("email") or None
                phone = partners[0].get("mobile") or partners[0].get("phone") or None
        return self._order(order, lines, codes, pickings, email, phone)

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        return await self._guarded(self._customer_orders(customer, since))

    async def _customer_orders(self, customer: CustomerRef, since: date | None) -> list[OrderSummary]:
        """sale.order of the res.partner records whose email (=ilike: case-insensitive, exact) or
        phone (as stored: E.164 matches only where the shop keeps numbers that way) is the
        customer's. Quotations come back too (state draft/sent reads as "pending")."""
        emails = sorted({e for e in (normalise_email(x) for x in customer.emails) if e})
        phones = sorted({p for p in (normalise_phone(x, self.phone_region) for x in customer.phones) if p})
        terms: list = [["email", "=ilike", like_literal(e)] for e in emails] + ([["phone", "in", phones]] if phones else [])
        if not terms:
            return []
        partners = await self.execute("res.partner", "search_read", ["|"] * (len(terms) - 1) + terms,
                                      fields=["id"], limit=100)
        if not partners:
            return []
        domain: list = [["partner_id", "in", sorted(p["id"] for p in partners)]]
        if since is not None:
            domain.append(["date_order", ">=", f"{since.isoformat()} 00:00:00"])
        rows = await self.execute("sale.order", "search_read", domain,
                                  fields=["name", "date_order", "amount_total", "currency_id", "state"],
                                  order="date_order asc", limit=5000)
        states = {**SALE_STATES, **self.settings.states}
        out = [OrderSummary(
            ref=str(r["name"]), placed_on=as_date(r.get("date_order")), total=as_float(r.get("amount_total")),
            currency=r["currency_id"][1] if isinstance(r.get("currency_id"), list) and len(r["currency_id"]) > 1 else None,
            state=map_state(r.get("state") or None, states)) for r in rows if r.get("name")]
        return sorted(out, key=lambda o: (o.placed_on or date.min, o.ref))

    async def _codes(self, product_ids: list[int]) -> dict[int, str]:
        if not product_ids:
            return {}
        rows = await self.execute("product.product", "search_read", [["id", "in", sorted(set(product_ids))]],
                                  fields=["default_code"], context={"active_test": False})
        return {r["id"]: r["default_code"] for r in rows if r.get("default_code")}

    def _order(self, order: dict, lines: list[dict], codes: dict[int, str], pickings: list[dict],
               email: Any, phone: Any) -> OrderStatus:
        raw = order.get("state") or ""
        state = map_state(raw, {**SALE_STATES, **self.settings.states})
        outgoing = [p for p in pickings if p.get("picking_type_code") == "outgoing"]
        returns = [p for p in pickings if p.get("picking_type_code") == "incoming" and p.get("state") == "done"]
        shipped = [p for p in outgoing if p.get("state") == "done"]
        pending = [p for p in outgoing if p.get("state") != "done"]
        if state == "confirmed":
            if returns:
                state = "returned"
            elif shipped:
                state = "shipped"
            elif any(p.get("state") == "assigned" for p in pending):
                state = "processing"  # reserved and ready to pick
        with_carrier = [p for p in shipped + pending if p.get("carrier_id") or p.get("carrier_tracking_ref")]
        carrier_pick = with_carrier[-1] if with_carrier else {}
        out_lines = []
        for ln in lines:
            if ln.get("display_type") or not ln.get("product_id"):
                continue  # sections and notes
            pid, label = ln["product_id"][0], ln["product_id"][1]
            name = _CODE.sub("", str(ln.get("name") or label).splitlines()[0]).strip()
            out_lines.append(OrderLine(sku=codes.get(pid) or _code_of(label) or str(pid), name=name,
                                       quantity=as_float(ln.get("product_uom_qty")) or 0.0,
                                       shipped_quantity=as_float(ln.get("qty_delivered"))))
        promised = as_date(order.get("commitment_date")) or as_date(order.get("expected_date"))
        expected = as_date(pending[0].get("scheduled_date")) if pending else None
        done_times = [t for t in (as_datetime(p.get("date_done")) for p in shipped) if t]
        carrier = carrier_pick.get("carrier_id")
        return OrderStatus(
            ref=order["name"], state=state, lines=tuple(out_lines),
            carrier=carrier[1] if isinstance(carrier, list) else None,
            tracking_number=carrier_pick.get("carrier_tracking_ref") or None,
            tracking_url=carrier_pick.get("carrier_tracking_url") or None,
            ordered_at=as_datetime(order.get("date_order")), shipped_at=min(done_times) if done_times else None,
            promised_date=promised, expected_date=expected,
            owner_email=normalise_email(email), owner_phone=normalise_phone(phone, self.phone_region),
            backend_state=raw or None, total=as_float(order.get("amount_total")),
            currency=order["currency_id"][1] if isinstance(order.get("currency_id"), list) else None,
        )

    # --- products and stock ---------------------------------------------------------------------

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        return await self._guarded(self._stock(product))

    async def _stock(self, product: ProductRef) -> list[StockLevel]:
        found = await self._match(product)
        if not found:
            raise UnknownProduct(f"no product matches {product.sku or product.text!r}")
        ids = [p["id"] for p in found]
        domain = [["code", "in", self.settings.warehouses]] if self.settings.warehouses else []
        warehouses = await self.execute("stock.warehouse", "search_read", domain,
                                        fields=["name", "code", "lot_stock_id"], order="name asc")
        per_place: dict[tuple[int, str], dict] = {}
        for wh in warehouses:
            location = wh["lot_stock_id"][0]
            qty = await self.execute("product.product", "read", ids, ["qty_available", "free_qty"],
                                     context={"location": location})
            moves = await self.execute(
                "stock.move", "search_read",
                [["product_id", "in", ids], ["state", "not in", ["draft", "done", "cancel"]],
                 ["location_dest_id", "child_of", location], ["picking_type_id.code", "=", "incoming"]],
                fields=["product_id", "product_uom_qty", "date"], order="date asc")
            for q in qty:
                incoming = tuple(sorted((as_date(m["date"]), as_float(m["product_uom_qty"]) or 0.0)
                                        for m in moves if m["product_id"][0] == q["id"] and as_date(m.get("date"))))
                per_place[(q["id"], wh["name"])] = {
                    "on_hand": as_float(q.get("qty_available")) or 0.0,
                    "available": max(as_float(q.get("free_qty")) or 0.0, 0.0), "incoming": incoming}
        levels = []
        for p in found:
            sku, label = p["default_code"] or f"odoo-{p['id']}", _label(p)
            places = [(wh, v) for (pid, wh), v in per_place.items() if pid == p["id"]]
            if not places:
                levels.append(StockLevel(sku=sku, location="all", available=0.0, on_hand=0.0, product_name=label))
            for wh, v in places:
                levels.append(StockLevel(sku=sku, location=wh, available=v["available"], on_hand=v["on_hand"],
                                         incoming=v["incoming"], product_name=label))
        return levels

    async def _match(self, product: ProductRef) -> list[dict]:
        fields = ["default_code", "name", "display_name"]
        if product.sku:
            rows = await self.execute("product.product", "search_read", [["default_code", "=ilike", like_literal(product.sku.strip())]],
                                      fields=fields, limit=5)
            if rows:
                return rows
        terms = product_terms(product.text, product.variant)
        if not terms:
            return []
        domain: list = [["sale_ok", "=", True]]
        for term in terms:  # every word, in the name, the code or a variant value
            term = like_literal(term)
            domain += ["|", "|", ["name", "ilike", term], ["default_code", "ilike", term],
                       ["product_template_attribute_value_ids.name", "ilike", term]]
        return await self.execute("product.product", "search_read", domain, fields=fields, limit=20,
                                  order="default_code asc")

    async def products(self) -> list[Product]:
        return await self._guarded(self._products())

    async def _products(self) -> list[Product]:
        out = []
        for page in range(MAX_PAGES):
            rows = await self.execute("product.product", "search_read", [["sale_ok", "=", True]],
                                      fields=["default_code", "name", "display_name"], offset=page * PAGE,
                                      limit=PAGE, order="default_code asc")
            for r in rows:
                if r.get("default_code"):  # no internal reference: nothing a customer can quote
                    out.append(Product(sku=r["default_code"], name=r["name"], variant=_variant(r)))
            if len(rows) < PAGE:
                break
        return out

    # --- cases and demand -----------------------------------------------------------------------

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        if self.settings.escalation != "helpdesk":
            raise EscalationNotSupported("Odoo escalation goes by the hub's webhook")
        return await self._guarded(self._escalate(case))

    async def _escalate(self, case: EscalationCase) -> EscalationReceipt:
        marker = f"[hub case {case.case_id}]"
        existing = await self.execute("helpdesk.ticket", "search_read", [["name", "ilike", like_literal(marker)]],
                                      fields=["name"], limit=5)
        for row in existing:
            if marker in row.get("name", ""):
                return self._receipt(row["id"])
        vals: dict[str, Any] = {"name": f"{case.summary[:100]} {marker}", "description": _case_html(case),
                                "priority": PRIORITIES.get(case.priority, "1")}
        if case.customer.emails:
            vals["partner_email"] = case.customer.emails[0]
        if case.customer.name:
            vals["partner_name"] = case.customer.name
        if self.settings.helpdesk_team_id:
            vals["team_id"] = self.settings.helpdesk_team_id
        ticket_id = await self.execute("helpdesk.ticket", "create", vals)
        if isinstance(ticket_id, list):
            ticket_id = ticket_id[0]
        return self._receipt(int(ticket_id))

    def _receipt(self, ticket_id: int) -> EscalationReceipt:
        url = f"{self.settings.url.rstrip('/')}/web#id={ticket_id}&model=helpdesk.ticket&view_type=form"
        return EscalationReceipt(reference=f"#{ticket_id}", url=url)

    async def record_demand(self, signal: DemandSignal) -> None:
        """Odoo takes demand as purchase or replenishment documents, a buyer's decision: nothing
        is written (the hub keeps and reports the figures)."""

    async def close(self) -> None:
        await self.rpc.close()


def _code_of(label: str) -> str | None:
    match = _CODE.match(label or "")
    return match.group(1) if match else None


def _variant(row: dict) -> str | None:
    """"[X200-BLU] X200 headphones (Blue)" -> "Blue": Odoo puts variant values in parentheses."""
    shown = _CODE.sub("", str(row.get("display_name") or ""))
    name = str(row.get("name") or "")
    if shown.startswith(name) and shown.endswith(")") and "(" in shown[len(name):]:
        return shown[len(name):].strip()[1:-1] or None
    return None


def _label(row: dict) -> str:
    return product_label(str(row.get("name") or row.get("default_code")), _variant(row))


def _case_html(case: EscalationCase) -> str:
    e = html.escape
    parts = [f"<p>{e(case.summary)}</p>", f"<p><b>Reason:</b> {e(case.reason)}</p>"]
    if case.order_refs:
        parts.append(f"<p><b>Orders:</b> {e(', '.join(case.order_refs))}</p>")
    for key, value in case.facts.items():
        parts.append(f"<p><b>{e(str(key))}:</b> {e(str(value))}</p>")
    if case.url:
        parts.append(f'<p><a href="{e(case.url)}">Conversation in the hub</a></p>')
    return "\n".join(parts)
