"""A local stand-in for Odoo's external JSON-RPC API (POST /jsonrpc), fed from tests/payloads/odoo/
(its dates moved to the clock's today by tests/support/dates.py).

Shapes followed (Odoo documentation "External API" / "External RPC API", odoo/http.py): a
JSON-RPC 2.0 "call" with params {service, method, args}; service "common" answers version,
login and authenticate (a uid, or false for bad credentials); service "object" answers
execute_kw(db, uid, password, model, method, args, kwargs) for search_read, search, search_count,
read and create. Every object call checks the uid and password (odoo.exceptions.AccessDenied
otherwise). Errors come back in HTTP 200 as {"jsonrpc": "2.0", "id": ..., "error": {"code": 200,
"message": "Odoo Server Error", "data": {"name": "odoo.exceptions.AccessDenied", "debug": ...,
"message": ..., "arguments": [...], "context": {}}}}. It enforces what Odoo enforces: an unknown
model (KeyError) or field (ValueError "Invalid field ..."), archived records hidden from search,
domains in prefix notation with '&', '|', '!', dotted paths and child_of, product quantities per
location from the `location` context. Delivery (carrier) fields and the Helpdesk app can be
"uninstalled"; failures and delays can be injected.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.dates import move_dates

PAYLOADS = Path(__file__).parent / "payloads" / "odoo"
DATABASE, LOGIN, PASSWORD, UID = "shop", "hub@shop.example", "7d1f3c0a9b2e4f6a8c5d", 6
MODELS = ["res.partner", "sale.order", "sale.order.line", "stock.picking", "product.product",
          "product.template.attribute.value", "stock.warehouse", "stock.location", "stock.picking.type",
          "stock.move", "helpdesk.ticket"]
# many2one / many2many fields -> the model they point to (for dotted paths and child_of)
RELATIONS = {"partner_id": "res.partner", "order_id": "sale.order", "product_id": "product.product",
             "picking_type_id": "stock.picking.type", "location_id": "stock.location",
             "location_dest_id": "stock.location", "product_template_attribute_value_ids": "product.template.attribute.value",
             "lot_stock_id": "stock.location", "sale_id": "sale.order"}
QUANTITY_FIELDS = {"qty_available", "free_qty", "incoming_qty", "outgoing_qty", "virtual_available"}
DELIVERY_FIELDS = {"carrier_id", "carrier_tracking_ref", "carrier_tracking_url"}


class OdooError(Exception):
    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message


@dataclass
class Call:
    service: str
    method: str
    args: list
    model: str | None = None
    model_method: str | None = None
    kwargs: dict | None = None


@dataclass
class FakeOdoo:
    records: dict[str, list[dict]] = field(default_factory=lambda: {
        m: move_dates(json.loads((PAYLOADS / f"{m}.json").read_text())) for m in MODELS})
    calls: list[Call] = field(default_factory=list)
    delivery_installed: bool = True
    helpdesk_installed: bool = True
    partner_has_mobile: bool = True  # Odoo 18 dropped res.partner.mobile
    delay: float = 0.0
    _failures: list = field(default_factory=list)
    _rpc_errors: list = field(default_factory=list)
    _server: TestServer | None = None

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None):
        self._failures.append([status, times, retry_after])

    def rpc_error(self, name: str, message: str):
        """The next object call answers this server error."""
        self._rpc_errors.append((name, message))

    def object_calls(self, model: str | None = None, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.service == "object" and (model is None or c.model == model)
                and (method is None or c.model_method == method)]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/jsonrpc", self._jsonrpc)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("/")).rstrip("/")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    # --- transport ------------------------------------------------------------------------------

    async def _jsonrpc(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._failures:
            status, _times, retry_after = self._failures[0]
            self._failures[0][1] -= 1
            if self._failures[0][1] <= 0:
                self._failures.pop(0)
            return web.Response(status=status, text="<html><body>Bad Gateway</body></html>", content_type="text/html",
                                headers={"Retry-After": retry_after} if retry_after else {})
        body = await request.json()
        rid = body.get("id")
        try:
            if body.get("jsonrpc") != "2.0" or body.get("method") != "call":
                raise OdooError("werkzeug.exceptions.BadRequest", "Invalid JSON-RPC request")
            params = body.get("params") or {}
            result = self._dispatch(params.get("service"), params.get("method"), list(params.get("args") or []))
        except OdooError as err:
            data = {"name": err.name, "debug": f"Traceback (most recent call last):\n...\n{err.name}: {err.message}\n",
                    "message": err.message, "arguments": [err.message], "context": {}}
            return web.json_response({"jsonrpc": "2.0", "id": rid,
                                      "error": {"code": 200, "message": "Odoo Server Error", "data": data}})
        return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})

    def _dispatch(self, service: str, method: str, args: list) -> Any:
        if service == "common":
            self.calls.append(Call(service, method, args))
            if method == "version":
                return {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
                        "server_serie": "17.0", "protocol_version": 1}
            if method in ("login", "authenticate"):
                db, login, password = args[:3]
                self._database(db)
                return UID if (login, password) == (LOGIN, PASSWORD) else False
            raise OdooError("builtins.NameError", f"Method not available {method}")
        if service == "object" and method in ("execute_kw", "execute"):
            db, uid, password, model, model_method = args[:5]
            rest = args[5:]
            margs = rest[0] if rest else []
            kwargs = (rest[1] if len(rest) > 1 else {}) if method == "execute_kw" else {}
            if method == "execute":
                margs = rest
            self.calls.append(Call(service, method, args, model, model_method, kwargs))
            self._database(db)
            if uid != UID or password != PASSWORD:
                raise OdooError("odoo.exceptions.AccessDenied", "Access Denied")
            if self._rpc_errors:
                raise OdooError(*self._rpc_errors.pop(0))
            return self._execute(model, model_method, list(margs), dict(kwargs or {}))
        raise OdooError("builtins.NameError", f"Unknown service {service!r}")

    @staticmethod
    def _database(db: str) -> None:
        if db != DATABASE:
            raise OdooError("psycopg2.OperationalError", f'connection failed: FATAL:  database "{db}" does not exist')

    # --- the ORM, as far as the adapter uses it -------------------------------------------------

    def _model(self, model: str) -> list[dict]:
        if model not in self.records or (model == "helpdesk.ticket" and not self.helpdesk_installed):
            raise OdooError("builtins.KeyError", repr(model))
        return self.records[model]

    def _fields(self, model: str) -> set[str]:
        known = {"id", "display_name"}
        for rec in self.records[model]:
            known.update(k for k in rec if not k.startswith("_"))
        if model == "product.product":
            known |= QUANTITY_FIELDS
        if model == "stock.picking" and not self.delivery_installed:
            known -= DELIVERY_FIELDS
        if model == "res.partner" and not self.partner_has_mobile:
            known.discard("mobile")
        return known

    def _check_fields(self, model: str, fields: list[str]) -> None:
        known = self._fields(model)
        for f in fields:
            if f.split(".")[0] not in known:
                raise OdooError("builtins.ValueError", f"Invalid field {f!r} on model {model!r}")

    def _execute(self, model: str, method: str, args: list, kwargs: dict) -> Any:
        records = self._model(model)
        context = kwargs.pop("context", {}) or {}
        if method in ("search_read", "search", "search_count"):
            domain = args[0] if args else kwargs.get("domain", [])
            active_test = context.get("active_test", True)
            found = [r for r in records if (not active_test or self._visible(model, r)) and self._eval(model, r, domain)]
            order = kwargs.get("order")
            if order:
                key, _, direction = order.partition(" ")
                found.sort(key=lambda r: str(r.get(key) or ""), reverse=direction.strip().lower() == "desc")
            found = found[int(kwargs.get("offset") or 0):]
            if kwargs.get("limit"):
                found = found[:int(kwargs["limit"])]
            if method == "search":
                return [r["id"] for r in found]
            if method == "search_count":
                return len(found)
            fields = args[1] if len(args) > 1 else kwargs.get("fields") or sorted(self._fields(model))
            self._check_fields(model, fields)
            return [self._project(model, r, fields, context) for r in found]
        if method == "read":
            ids = args[0]
            fields = args[1] if len(args) > 1 else kwargs.get("fields") or sorted(self._fields(model))
            self._check_fields(model, fields)
            by_id = {r["id"]: r for r in records}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise OdooError("odoo.exceptions.MissingError",
                                f"Record does not exist or has been deleted.\n(Record: {model}({missing[0]},), User: {UID})")
            return [self._project(model, by_id[i], fields, context) for i in ids]
        if method == "create" and model == "helpdesk.ticket":
            vals = args[0]
            if not vals.get("name"):
                raise OdooError("odoo.exceptions.ValidationError", "Missing required fields on helpdesk.ticket: Subject")
            self._check_fields(model, list(vals))
            new_id = 1 + max(r["id"] for r in records)
            records.append({"id": new_id, "stage_id": [1, "New"], **vals})
            return new_id
        raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")

    def _visible(self, model: str, rec: dict) -> bool:
        return rec.get("active", True) is not False  # archived records stay out of searches

    def _project(self, model: str, rec: dict, fields: list[str], context: dict) -> dict:
        out = {"id": rec["id"]}
        for f in fields:
            if f in QUANTITY_FIELDS and model == "product.product":
                out[f] = self._quantity(rec, f, context.get("location"))
            else:
                out[f] = rec.get(f, False)
        return out

    def _quantity(self, product: dict, fieldname: str, location: Any) -> float:
        """The quantity at a location and its children (Odoo's `location` context), or over all
        internal locations when none is given."""
        allowed = self._descendants(location) if location else {
            r["id"] for r in self.records["stock.location"] if r["usage"] == "internal"}
        total = 0.0
        for loc, q in (product.get("_quantities") or {}).items():
            if int(loc) in allowed:
                if fieldname == "virtual_available":
                    total += q["qty_available"] + q["incoming_qty"] - q["outgoing_qty"]
                else:
                    total += q[fieldname]
        return total

    def _descendants(self, location_id: int) -> set[int]:
        return {r["id"] for r in self.records["stock.location"]
                if f"/{location_id}/" in f"/{r['parent_path']}"}

    # --- domains ----------------------------------------------------------------------------------

    def _eval(self, model: str, rec: dict, domain: list) -> bool:
        stack: list[bool] = []
        for item in reversed(domain):
            if item == "!":
                stack.append(not stack.pop())
            elif item in ("&", "|"):
                a, b = stack.pop(), stack.pop()
                stack.append((a and b) if item == "&" else (a or b))
            else:
                stack.append(self._term(model, rec, item))
        return all(stack)  # terms without an operator are AND-ed

    def _values(self, model: str, rec: dict, path: str) -> list[Any]:
        head, _, rest = path.partition(".")
        if head not in self._fields(model) and head != "id":
            raise OdooError("builtins.ValueError", f"Invalid field {head!r} on model {model!r}")
        value = rec.get(head, False)
        if not rest:
            return [value]
        target = RELATIONS[head]
        ids = value if isinstance(value, list) and all(isinstance(v, int) for v in value) and head.endswith("_ids") \
            else ([value[0]] if isinstance(value, list) and value else [])
        out = []
        for sub in self.records[target]:
            if sub["id"] in ids:
                out.extend(self._values(target, sub, rest))
        return out

    def _term(self, model: str, rec: dict, term: list) -> bool:
        path, op, operand = term
        if op == "child_of":
            value = rec.get(path)
            vid = value[0] if isinstance(value, list) and value else value
            roots = operand if isinstance(operand, list) else [operand]
            return any(vid in self._descendants(root) for root in roots)
        return any(_compare(v, op, operand) for v in self._values(model, rec, path) or [False])


def _like_regex(pattern: str) -> str:
    """PostgreSQL's LIKE pattern as a regular expression: % any run, _ any one character, a
    backslash makes the next character literal."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return "".join(out)


def _ilike(pattern: str, value: str, exact: bool) -> bool:
    # As Odoo does it: =ilike hands the operand to ILIKE as it is, ilike wraps it in %...%.
    return bool(re.fullmatch(_like_regex(pattern if exact else f"%{pattern}%"), value, re.IGNORECASE | re.DOTALL))


def _compare(value: Any, op: str, operand: Any) -> bool:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], int) and isinstance(value[1], str):
        value = value[0]  # a many2one compares by id
    if isinstance(value, list):  # a x2many: any of its ids
        return any(_compare(v, op, operand) for v in value) if value else _compare(False, op, operand)
    if op == "=":
        return value == operand
    if op == "!=":
        return value != operand
    if op == "in":
        return value in operand
    if op == "not in":
        return value not in operand
    if op in ("ilike", "like", "=ilike", "=like", "not ilike"):
        hit = value is not False and _ilike(str(operand), str(value), exact=op.startswith("="))
        return not hit if op == "not ilike" else hit
    if value is False or value is None:
        return False
    return {">": value > operand, "<": value < operand, ">=": value >= operand, "<=": value <= operand}[op]
