"""ERPNext (Frappe framework) back end over its REST API v1.

The shapes followed (Frappe docs "REST API" and "Listing Documents", frappe/api/v1.py,
frappe/client.py get_list): GET /api/resource/{DocType}/{name} answers {"data": {doc with its
child tables}}; GET /api/resource/{DocType} lists with `fields`, `filters` (JSON lists of
[field, op, value] or [ChildDocType, field, op, value]), `limit_start`, `limit_page_length`, and
child tables are listed with `parent={ParentDocType}`; POST /api/resource/{DocType} inserts.
Auth is `Authorization: token api_key:api_secret`. Errors come back with an HTTP status and
{"exc_type": "DoesNotExistError" | "PermissionError" | "ValidationError" | ..., "exception": ...,
"_server_messages": "[\"{\\\"message\\\": ...}\"]"} (frappe/utils/response.py report_error).

What is read: Sales Order (+ Sales Order Item) for the order, Delivery Note (lines carry
against_sales_order; transporter_name / lr_no are the carrier and the transport receipt number)
and Shipment (carrier, awb_number, tracking_url, tracking_status) for shipping, Customer
(email_id, mobile_no) when the order has no contact of its own, Item (+ Item Variant Attribute)
for the catalogue, Bin (actual_qty, reserved_qty, ordered_qty, projected_qty) per warehouse and
Purchase Order Item (schedule_date) for incoming goods. Escalation creates an Issue.
"""

from __future__ import annotations

import html
import json
from datetime import date
from typing import Any
from urllib.parse import quote

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
from adapters.config import ErpnextSettings
from adapters.http import HttpError, JsonApi
from adapters.like import like_literal

# Sales Order.status (erpnext/selling/doctype/sales_order/sales_order.py set_status) -> ours.
SALES_ORDER_STATES = {
    "draft": "pending", "on hold": "on_hold", "to deliver and bill": "confirmed", "to deliver": "confirmed",
    "to bill": "shipped", "completed": "delivered", "cancelled": "cancelled", "closed": "delivered",
    "to pay": "confirmed",
}
# Shipment.tracking_status -> ours; it knows what the carrier knows, which beats the order.
TRACKING_STATES = {"delivered": "delivered", "returned": "returned", "in progress": "shipped", "lost": "on_hold"}
PAGE = 500
MAX_PAGES = 100


class FrappeMissing(Exception):
    """404 DoesNotExistError: the document is not there (an answer, not a failure)."""


class FrappeApi(JsonApi):
    system = "ERPNext"

    def describe(self, err: HttpError) -> str:
        body = err.body if isinstance(err.body, dict) else {}
        parts = [body.get("exc_type")] if body.get("exc_type") else []
        message = _server_message(body.get("_server_messages")) or body.get("exception") or body.get("message")
        if isinstance(message, str) and message:
            parts.append(message[:200])
        return ": " + " ".join(parts) if parts else ""

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            return await self.send(method, path, **kw)
        except HttpError as err:
            if err.status == 404:
                raise FrappeMissing(self.describe(err)) from None
            raise self.unavailable(err) from None

    async def get_doc(self, doctype: str, name: str) -> dict:
        data = await self.call("GET", f"/api/resource/{quote(doctype)}/{quote(name, safe='')}")
        return (data or {}).get("data") or {}

    async def get_list(self, doctype: str, *, fields: list[str], filters: list | None = None,
                       or_filters: list | None = None, parent: str | None = None, limit: int = PAGE,
                       start: int = 0, order_by: str | None = None) -> list[dict]:
        params: dict[str, Any] = {"fields": json.dumps(fields), "limit_page_length": str(limit),
                                  "limit_start": str(start)}
        if filters:
            params["filters"] = json.dumps(filters)
        if or_filters:
            params["or_filters"] = json.dumps(or_filters)
        if parent:
            params["parent"] = parent
        if order_by:
            params["order_by"] = order_by
        data = await self.call("GET", f"/api/resource/{quote(doctype)}", params=params)
        rows = (data or {}).get("data")
        return rows if isinstance(rows, list) else []

    async def get_all(self, doctype: str, **kw: Any) -> list[dict]:
        """Every row, page by page (the list API answers at most limit_page_length rows)."""
        out: list[dict] = []
        for page in range(MAX_PAGES):
            rows = await self.get_list(doctype, start=page * PAGE, limit=PAGE, **kw)
            out.extend(rows)
            if len(rows) < PAGE:
                break
        return out


def _server_message(raw: Any) -> str | None:
    """Frappe's _server_messages: a JSON list of JSON-encoded {"message": ...} objects."""
    if not isinstance(raw, str):
        return None
    try:
        messages = [json.loads(m) if isinstance(m, str) else m for m in json.loads(raw)]
    except (ValueError, TypeError):
        return None
    texts = [m.get("message") for m in messages if isinstance(m, dict) and m.get("message")]
    return "; ".join(str(t) for t in texts) or None


class ErpnextBackend:
    name = "erpnext"

    def __init__(self, settings: ErpnextSettings, *, phone_region: str | None = None, timeout_seconds: float = 5.0):
        self.settings = settings
        self.phone_region = phone_region
        token = f"token {settings.api_key.get_secret_value()}:{settings.api_secret.get_secret_value()}"
        self.api = FrappeApi(settings.url, headers={"Authorization": token}, timeout_seconds=timeout_seconds)
        self.api.system = f"ERPNext at {settings.url}"

    # --- orders ---------------------------------------------------------------------------------

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        name = await self._find_order(ref)
        try:
            order = await self.api.get_doc("Sales Order", name)
        except FrappeMissing:
            raise UnknownOrder(f"no order {ref!r}") from None
        notes = await self.api.get_list(
            "Delivery Note",
            fields=["name", "posting_date", "posting_time", "transporter_name", "lr_no", "lr_date", "status", "is_return"],
            filters=[["Delivery Note Item", "against_sales_order", "=", name], ["docstatus", "=", 1]],
            order_by="posting_date asc", limit=50)
        shipments = []
        if notes:
            shipments = await self.api.get_list(
                "Shipment",
                fields=["name", "carrier", "carrier_service", "awb_number", "tracking_url", "tracking_status", "pickup_date"],
                filters=[["Shipment Delivery Note", "delivery_note", "in", [n["name"] for n in notes]],
                         ["docstatus", "=", 1]],
                order_by="pickup_date asc", limit=50)
        email, phone = order.get("contact_email"), order.get("contact_mobile") or order.get("contact_phone")
        if not (email or phone) and order.get("customer"):
            try:
                cust = await self.api.get_doc("Customer", order["customer"])
            except FrappeMissing:
                cust = {}
            email, phone = cust.get("email_id"), cust.get("mobile_no")
        return self._order(order, notes, shipments, email, phone)

    async def _find_order(self, ref: str) -> str:
        candidates = order_ref_candidates(ref, self.settings.order_prefixes)
        if not candidates:
            raise UnknownOrder(f"no order {ref!r}")
        rows = await self.api.get_list("Sales Order", fields=["name"], filters=[["name", "in", candidates]], limit=10)
        found = {r["name"] for r in rows}
        for cand in candidates:
            if cand in found:
                return cand
        # "4711" for SAL-ORD-2026-04711: the naming series pads and prefixes the number. A suffix
        # is accepted only when exactly one order ends with it; two ("4711" of 2025 and of 2026)
        # and the customer must give the full number.
        tail = candidates[-1]
        if sum(ch.isdigit() for ch in tail) >= 3:
            pattern = "%" + like_literal(tail.lstrip("0") if tail.isdigit() else tail)
            rows = await self.api.get_list("Sales Order", fields=["name"], filters=[["name", "like", pattern]], limit=10)

            def fits(name: str) -> bool:
                if tail.isdigit():
                    return name.rsplit("-", 1)[-1].lstrip("0") == tail.lstrip("0")
                return name.upper().endswith(tail.upper()) and name[: -len(tail)].endswith(("-", "/"))

            matches = sorted({r["name"] for r in rows if fits(str(r.get("name")))})
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise UnknownOrder(f"several orders end in {ref!r} ({', '.join(matches)}): the full number is needed")
        raise UnknownOrder(f"no order {ref!r}")

    def _order(self, order: dict, notes: list[dict], shipments: list[dict], email: Any, phone: Any) -> OrderStatus:
        raw = order.get("status") or ("Draft" if order.get("docstatus") == 0 else "")
        state = map_state(raw, {**SALES_ORDER_STATES, **self.settings.states})
        outgoing = [n for n in notes if not n.get("is_return")]
        if state in ("confirmed", "processing") and outgoing:
            state = "shipped"  # partly delivered: goods have left
        if any(n.get("is_return") for n in notes):
            state = "returned"
        last_shipment = shipments[-1] if shipments else {}
        tracking = (last_shipment.get("tracking_status") or "").strip().lower()
        if tracking in TRACKING_STATES and state not in ("cancelled", "returned"):
            state = TRACKING_STATES[tracking]
        last_note = outgoing[-1] if outgoing else {}
        items = [i for i in order.get("items") or [] if isinstance(i, dict)]
        lines = tuple(OrderLine(sku=str(i.get("item_code")), name=str(i.get("item_name") or i.get("item_code")),
                                quantity=as_float(i.get("qty")) or 0.0,
                                shipped_quantity=as_float(i.get("delivered_qty"))) for i in items)
        promised = as_date(order.get("delivery_date"))
        # Items can be rescheduled one by one; the latest of them is when the order can arrive.
        item_dates = [d for d in (as_date(i.get("delivery_date")) for i in items) if d]
        expected = max(item_dates) if item_dates and (promised is None or max(item_dates) > promised) else None
        shipped_at = None
        if outgoing:
            first = outgoing[0]
            shipped_at = as_datetime(f"{first.get('posting_date')} {first.get('posting_time') or '00:00:00'}".strip())
        return OrderStatus(
            ref=str(order.get("name")), state=state, lines=lines,
            carrier=last_shipment.get("carrier") or last_note.get("transporter_name") or None,
            tracking_number=last_shipment.get("awb_number") or last_note.get("lr_no") or None,
            tracking_url=last_shipment.get("tracking_url") or None,
            ordered_at=as_datetime(order.get("transaction_date")), shipped_at=shipped_at,
            promised_date=promised, expected_date=expected,
            owner_email=normalise_email(email), owner_phone=normalise_phone(phone, self.phone_region),
            backend_state=raw or None, total=as_float(order.get("grand_total")), currency=order.get("currency"),
        )

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        """Submitted Sales Orders (docstatus 1: drafts are not orders yet, cancelled ones are 2)
        of the Customers whose email_id / mobile_no is one of the customer's, or whose order
        contact is: a Sales Order names its Customer by link and copies the contact's email."""
        emails = sorted({e for e in (normalise_email(x) for x in customer.emails) if e})
        phones = sorted({p for p in (normalise_phone(x, self.phone_region) for x in customer.phones) if p})
        if not (emails or phones):
            return []
        who: list = []
        if emails:
            who.append(["email_id", "in", emails])
        if phones:
            who.append(["mobile_no", "in", phones])
        names = [c["name"] for c in await self.api.get_all("Customer", fields=["name"], or_filters=who)]
        orders_of: list = [["customer", "in", names]] if names else []
        if emails:
            orders_of.append(["contact_email", "in", emails])
        if phones:
            orders_of.append(["contact_mobile", "in", phones])
        filters: list = [["docstatus", "=", 1]]
        if since is not None:
            filters.append(["transaction_date", ">=", since.isoformat()])
        rows = await self.api.get_all(
            "Sales Order", fields=["name", "transaction_date", "grand_total", "currency", "status"],
            filters=filters, or_filters=orders_of, order_by="transaction_date asc")
        states = {**SALES_ORDER_STATES, **self.settings.states}
        found = {str(r.get("name")): OrderSummary(
            ref=str(r.get("name")), placed_on=as_date(r.get("transaction_date")),
            total=as_float(r.get("grand_total")), currency=r.get("currency") or None,
            state=map_state(r.get("status"), states)) for r in rows if r.get("name")}
        return sorted(found.values(), key=lambda o: (o.placed_on or date.min, o.ref))

    # --- products and stock ---------------------------------------------------------------------

    _ITEM_FIELDS = ["item_code", "item_name", "variant_of", "description", "disabled", "has_variants"]

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        items = await self._match_items(product)
        if not items:
            raise UnknownProduct(f"no product matches {product.sku or product.text!r}")
        codes = list(items)
        filters: list = [["item_code", "in", codes]]
        if self.settings.warehouses:
            filters.append(["warehouse", "in", self.settings.warehouses])
        bins = await self.api.get_all("Bin", fields=["item_code", "warehouse", "actual_qty", "reserved_qty",
                                                     "ordered_qty", "projected_qty"], filters=filters)
        receipts = await self.api.get_all(
            "Purchase Order Item", parent="Purchase Order",
            fields=["parent", "item_code", "warehouse", "qty", "received_qty", "schedule_date"],
            filters=[["item_code", "in", codes], ["docstatus", "=", 1]])
        if receipts:
            # A closed or completed purchase order keeps its open lines; only those still to be
            # received are incoming.
            open_orders = await self.api.get_all(
                "Purchase Order", fields=["name", "status"],
                filters=[["name", "in", sorted({r["parent"] for r in receipts})], ["status", "like", "To Receive%"]])
            still_open = {o["name"] for o in open_orders}
            receipts = [r for r in receipts if r.get("parent") in still_open]
        levels = []
        for code, label in items.items():
            places = [b for b in bins if b.get("item_code") == code]
            if not places:
                levels.append(StockLevel(sku=code, location="all", available=0.0, on_hand=0.0, product_name=label))
            for b in sorted(places, key=lambda b: str(b.get("warehouse"))):
                on_hand = as_float(b.get("actual_qty")) or 0.0
                reserved = as_float(b.get("reserved_qty")) or 0.0
                levels.append(StockLevel(
                    sku=code, location=str(b.get("warehouse")), available=max(on_hand - reserved, 0.0), on_hand=on_hand,
                    incoming=_incoming(receipts, code, b.get("warehouse"), as_float(b.get("ordered_qty")) or 0.0),
                    product_name=label))
        return levels

    async def _match_items(self, product: ProductRef) -> dict[str, str]:
        """item_code -> label of the stock items the customer means (variants, not templates)."""
        if product.sku:
            try:
                item = await self.api.get_doc("Item", product.sku.strip())
            except FrappeMissing:
                item = None
            if item and item.get("has_variants"):
                # A template ("X200"): the customer means whichever of its variants we have.
                rows = await self.api.get_list("Item", fields=self._ITEM_FIELDS, limit=100,
                                               filters=[["variant_of", "=", item["item_code"]], ["disabled", "=", 0]])
                attrs = await self._variant_values([r["item_code"] for r in rows])
                return {r["item_code"]: product_label(r.get("item_name") or r["item_code"], attrs.get(r["item_code"]))
                        for r in sorted(rows, key=lambda r: r["item_code"])}
            if item and not item.get("disabled"):
                variants = await self._variant_values([item["item_code"]])
                return {item["item_code"]: product_label(item.get("item_name") or item["item_code"],
                                                         variants.get(item["item_code"]))}
        terms = product_terms(product.text, product.variant)
        if not terms:
            return {}
        # The list API ANDs filters and ORs or_filters, so it can narrow by one word; every word
        # must then appear in the item or its variant attributes (checked here).
        longest = max(terms, key=len)
        contains = f"%{like_literal(longest)}%"
        rows = await self.api.get_list(
            "Item", fields=self._ITEM_FIELDS, filters=[["disabled", "=", 0], ["has_variants", "=", 0]],
            or_filters=[["item_name", "like", contains], ["item_code", "like", contains],
                        ["description", "like", contains], ["variant_of", "like", contains]],
            limit=100)
        attrs = await self._variant_values([r["item_code"] for r in rows if r.get("variant_of")])
        if not rows:
            # The word may be an attribute value ("blue"): look for variants carrying it.
            hits = await self.api.get_list("Item Variant Attribute", parent="Item", fields=["parent"],
                                           filters=[["attribute_value", "like", contains]], limit=100)
            if hits:
                rows = await self.api.get_list("Item", fields=self._ITEM_FIELDS,
                                               filters=[["item_code", "in", sorted({h["parent"] for h in hits})],
                                                        ["disabled", "=", 0]], limit=100)
                attrs = await self._variant_values([r["item_code"] for r in rows])
        out = {}
        for row in sorted(rows, key=lambda r: r["item_code"]):
            code = row["item_code"]
            hay = " ".join(str(row.get(k) or "") for k in ("item_code", "item_name", "description", "variant_of"))
            hay = f"{hay} {attrs.get(code) or ''}".lower()
            if all(t in hay for t in terms):
                out[code] = product_label(row.get("item_name") or code, attrs.get(code))
        return out

    async def _variant_values(self, codes: list[str]) -> dict[str, str]:
        """item_code -> its attribute values ("Blue", "Blue, L") for variant items."""
        if not codes:
            return {}
        rows = await self.api.get_all("Item Variant Attribute", parent="Item",
                                      fields=["parent", "attribute", "attribute_value", "idx"],
                                      filters=[["parent", "in", codes]])
        values: dict[str, list[str]] = {}
        for row in sorted(rows, key=lambda r: (r.get("parent"), r.get("idx") or 0)):
            if row.get("attribute_value"):
                values.setdefault(row["parent"], []).append(str(row["attribute_value"]))
        return {code: ", ".join(v) for code, v in values.items()}

    async def products(self) -> list[Product]:
        rows = await self.api.get_all("Item", fields=self._ITEM_FIELDS,
                                      filters=[["disabled", "=", 0], ["has_variants", "=", 0], ["is_sales_item", "=", 1]])
        attrs = await self._variant_values([r["item_code"] for r in rows if r.get("variant_of")])
        out = []
        for row in sorted(rows, key=lambda r: r["item_code"]):
            aliases = (row["variant_of"],) if row.get("variant_of") else ()
            out.append(Product(sku=row["item_code"], name=row.get("item_name") or row["item_code"],
                               variant=attrs.get(row["item_code"]), aliases=aliases))
        return out

    # --- cases and demand -----------------------------------------------------------------------

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        """An Issue whose subject carries the hub's case id: a retry finds it instead of opening
        a second one."""
        if self.settings.escalation != "issue":
            raise EscalationNotSupported("ERPNext escalation is set to go by the hub's webhook")
        marker = f"[hub case {case.case_id}]"
        existing = await self.api.get_list("Issue", fields=["name", "subject"],
                                           filters=[["subject", "like", f"%{like_literal(marker)}%"]], limit=5)
        for row in existing:
            if marker in str(row.get("subject")):
                return self._receipt(row["name"])
        doc = {
            "subject": f"{case.summary[:100]} {marker}",
            "status": "Open",
            "priority": self.settings.issue_priority.get(case.priority, "Medium"),
            "description": _case_html(case),
        }
        if case.customer.emails:
            doc["raised_by"] = case.customer.emails[0]
        data = await self.api.call("POST", "/api/resource/Issue", json_body=doc)
        name = ((data or {}).get("data") or {}).get("name")
        if not name:
            raise BackendUnavailable("ERPNext created the Issue but did not name it")
        return self._receipt(name)

    def _receipt(self, name: str) -> EscalationReceipt:
        return EscalationReceipt(reference=name, url=f"{self.settings.url.rstrip('/')}/app/issue/{quote(name)}")

    async def record_demand(self, signal: DemandSignal) -> None:
        """ERPNext has no place for unmet demand short of purchasing documents, which must stay a
        buyer's decision: nothing is written (the hub keeps the figures and reports them)."""

    async def close(self) -> None:
        await self.api.close()


def _incoming(receipts: list[dict], code: str, warehouse: Any, ordered: float) -> tuple:
    """Open purchase order lines for this item and warehouse, capped at the Bin's ordered_qty
    (the Bin is the ledger's truth: a closed PO keeps its lines but no longer counts)."""
    rows = sorted((r for r in receipts if r.get("item_code") == code and r.get("warehouse") == warehouse),
                  key=lambda r: str(r.get("schedule_date")))
    out = []
    left = ordered
    for r in rows:
        due = (as_float(r.get("qty")) or 0.0) - (as_float(r.get("received_qty")) or 0.0)
        day = as_date(r.get("schedule_date"))
        qty = min(due, left)
        if day is None or qty <= 0:
            continue
        out.append((day, qty))
        left -= qty
    return tuple(out)


def _case_html(case: EscalationCase) -> str:
    """The Issue's description (a Text Editor field: HTML), every value escaped."""
    e = html.escape
    rows = [f"<p>{e(case.summary)}</p>", f"<p><b>Reason:</b> {e(case.reason)}</p>"]
    if case.order_refs:
        rows.append(f"<p><b>Orders:</b> {e(', '.join(case.order_refs))}</p>")
    who = ", ".join([*(case.customer.name and [case.customer.name] or []), *case.customer.emails, *case.customer.phones])
    if who:
        rows.append(f"<p><b>Customer:</b> {e(who)}</p>")
    for key, value in case.facts.items():
        rows.append(f"<p><b>{e(str(key))}:</b> {e(str(value))}</p>")
    if case.url:
        rows.append(f'<p><a href="{e(case.url)}">Conversation in the hub</a></p>')
    return "\n".join(rows)
