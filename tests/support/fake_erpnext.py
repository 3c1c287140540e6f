"""A local stand-in for ERPNext's REST API v1 (Frappe framework), fed from tests/payloads/erpnext/
(its dates moved to the clock's today by tests/support/dates.py).

It behaves as Frappe does where the adapter depends on it (frappe/api/v1.py, frappe/client.py,
frappe/utils/response.py): token auth (`Authorization: token key:secret`, 401
AuthenticationError otherwise); GET /api/resource/{DocType}/{name} -> {"data": doc} or 404
DoesNotExistError; GET /api/resource/{DocType} with JSON `fields` / `filters` / `or_filters`
(3-item filters on the doctype, 4-item ones on a child table), `limit_start`,
`limit_page_length` (default 20, 0 = all), `order_by`; a child table listed without
`parent=` is a 403 PermissionError, an unknown field a 500 from the database; POST
/api/resource/Issue validates like Frappe (417 ValidationError: missing subject, unknown
priority link, invalid raised_by email). Errors carry exc_type, exception and _server_messages.
Requests are recorded; failures and delays can be injected.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.dates import move_dates

PAYLOADS = Path(__file__).parent / "payloads" / "erpnext"
API_KEY, API_SECRET = "a1b2c3d4e5f6a7b", "9f8e7d6c5b4a3f2"
TOKEN = f"token {API_KEY}:{API_SECRET}"

FILES = {"Sales Order": "sales_order", "Customer": "customer", "Delivery Note": "delivery_note",
         "Shipment": "shipment", "Item": "item", "Bin": "bin", "Purchase Order": "purchase_order", "Issue": "issue"}
# child doctype -> (parent doctype, table field)
CHILDREN = {"Sales Order Item": ("Sales Order", "items"), "Delivery Note Item": ("Delivery Note", "items"),
            "Shipment Delivery Note": ("Shipment", "shipment_delivery_note"),
            "Item Variant Attribute": ("Item", "attributes"), "Purchase Order Item": ("Purchase Order", "items")}
STANDARD = {"name", "owner", "creation", "modified", "modified_by", "docstatus", "idx", "parent", "parentfield",
            "parenttype", "doctype"}
PRIORITIES = {"Low", "Medium", "High"}


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: Any = None


def _like(pattern: str) -> re.Pattern:
    """SQL LIKE on MariaDB's default collation: % and _ wildcards, a backslash escapes the next
    character, case-insensitive."""
    out = "".join(re.escape(tok[1]) if tok.startswith("\\") and len(tok) == 2 else ".*" if tok == "%" else "." if tok == "_"
                  else re.escape(tok) for tok in re.findall(r"\\.|.", pattern, re.DOTALL))
    return re.compile(f"^{out}$", re.IGNORECASE | re.DOTALL)


def _compare(value: Any, op: str, operand: Any) -> bool:
    op = op.lower()
    if op in ("in", "not in"):
        items = operand if isinstance(operand, list) else [v.strip() for v in str(operand).split(",")]
        return (value in items) == (op == "in")
    if op in ("like", "not like"):
        return bool(_like(str(operand)).match(str(value or ""))) == (op == "like")
    if op == "is":
        return bool(value) == (operand == "set")
    if op in ("=", "!="):
        same = value == operand or (value is not None and str(value) == str(operand))
        return same == (op == "=")
    if value is None:
        return False
    try:
        a, b = float(value), float(operand)
    except (TypeError, ValueError):
        a, b = str(value), str(operand)
    return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


class FrappeError(Exception):
    def __init__(self, kind: str, status: int, message: str):
        super().__init__(message)
        self.kind, self.status, self.message = kind, status, message

    def response(self) -> web.Response:
        server_messages = json.dumps([json.dumps({"message": self.message, "title": "Message", "indicator": "red",
                                                  "raise_exception": 1})])
        return web.json_response({"exc_type": self.kind, "exception": f"frappe.exceptions.{self.kind}: {self.message}",
                                  "_server_messages": server_messages}, status=self.status)


@dataclass
class FakeErpnext:
    docs: dict[str, list[dict]] = field(default_factory=lambda: {
        dt: move_dates(json.loads((PAYLOADS / f"{f}.json").read_text())) for dt, f in FILES.items()})
    requests: list[Seen] = field(default_factory=list)
    delay: float = 0.0
    forbidden: set[str] = field(default_factory=set)  # doctypes the API user may not touch
    _failures: list = field(default_factory=list)
    _server: TestServer | None = None

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None, text: str = "<h1>502 Bad Gateway</h1>"):
        self._failures.append([status, times, retry_after, text])

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/resource/{doctype}", self._list)
        app.router.add_post("/api/resource/{doctype}", self._insert)
        app.router.add_get("/api/resource/{doctype}/{name:.+}", self._read)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("/")).rstrip("/")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    def seen(self, doctype: str) -> list[Seen]:
        return [r for r in self.requests if r.path.startswith(f"/api/resource/{doctype}")]

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        body = await request.text() if request.can_read_body else None
        self.requests.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._failures:
            status, _times, retry_after, text = self._failures[0]
            self._failures[0][1] -= 1
            if self._failures[0][1] <= 0:
                self._failures.pop(0)
            return web.Response(status=status, text=text, content_type="text/html",
                                headers={"Retry-After": retry_after} if retry_after else {})
        try:
            if request.headers.get("Authorization") != TOKEN:
                raise FrappeError("AuthenticationError", 401, "Invalid API key or secret")
            if request.match_info["doctype"] in self.forbidden:
                raise FrappeError("PermissionError", 403, f"Insufficient Permission for {request.match_info['doctype']}")
            return await handler(request)
        except FrappeError as err:
            return err.response()

    # --- documents ------------------------------------------------------------------------------

    def _rows(self, doctype: str, parent: str | None) -> list[dict]:
        if doctype in CHILDREN:
            owner, table = CHILDREN[doctype]
            # frappe.client.get_list: child tables only through a parent the user may read.
            if parent != owner:
                raise FrappeError("PermissionError", 403, "Not permitted")
            return [row for doc in self.docs[owner] for row in doc.get(table) or []]
        if doctype not in self.docs:
            raise FrappeError("DoesNotExistError", 404, f"DocType {doctype} not found")
        return self.docs[doctype]

    def _known(self, doctype: str, rows: list[dict]) -> set[str]:
        fields = set(STANDARD)
        for row in rows:
            fields.update(row)
        return fields

    def _check(self, fieldname: str, known: set[str]) -> None:
        if fieldname not in known:
            raise FrappeError("OperationalError", 500, f"(1054, \"Unknown column '{fieldname}' in 'field list'\")")

    def _matches(self, doctype: str, doc: dict, cond: Any, known: set[str]) -> bool:
        if len(cond) == 4 and cond[0] != doctype:
            child, fieldname, op, operand = cond
            table = next((t for c, (p, t) in CHILDREN.items() if c == child and p == doctype), None)
            if table is None:
                raise FrappeError("DataError", 417, f"{child} is not a child table of {doctype}")
            return any(_compare(row.get(fieldname), op, operand) for row in doc.get(table) or [])
        fieldname, op, operand = cond[-3:]
        self._check(fieldname, known)
        return _compare(doc.get(fieldname), op, operand)

    @staticmethod
    def _conditions(raw: str | None) -> list:
        if not raw:
            return []
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            return [[k, *(v if isinstance(v, list) else ["=", v])] for k, v in parsed.items()]
        return parsed

    async def _list(self, request: web.Request) -> web.Response:
        doctype = request.match_info["doctype"]
        q = request.query
        rows = self._rows(doctype, q.get("parent"))
        known = self._known(doctype, rows)
        fields = json.loads(q.get("fields", '["name"]'))
        for fieldname in fields:
            if fieldname != "*":
                self._check(fieldname, known)
        filters, or_filters = self._conditions(q.get("filters")), self._conditions(q.get("or_filters"))
        out = [r for r in rows if all(self._matches(doctype, r, c, known) for c in filters)
               and (not or_filters or any(self._matches(doctype, r, c, known) for c in or_filters))]
        if q.get("order_by"):
            key, _, direction = q["order_by"].partition(" ")
            out.sort(key=lambda r: str(r.get(key.strip("`")) or ""), reverse=direction.strip().lower() == "desc")
        start, limit = int(q.get("limit_start", "0")), int(q.get("limit_page_length", "20"))
        out = out[start:start + limit] if limit else out[start:]
        data = [{k: v for k, v in r.items() if not isinstance(v, list)} if fields == ["*"]
                else {f: r.get(f) for f in fields} for r in out]
        return web.json_response({"data": data})

    async def _read(self, request: web.Request) -> web.Response:
        doctype, name = request.match_info["doctype"], request.match_info["name"]
        for doc in self._rows(doctype, None):
            if doc["name"] == name:
                return web.json_response({"data": doc})
        raise FrappeError("DoesNotExistError", 404, f"{doctype} {name} not found")

    async def _insert(self, request: web.Request) -> web.Response:
        doctype = request.match_info["doctype"]
        if doctype != "Issue":
            raise FrappeError("PermissionError", 403, f"No permission to create {doctype}")
        doc = await request.json()
        if not doc.get("subject"):
            raise FrappeError("MandatoryError", 417, "[Issue, new-issue-1]: subject")
        if doc.get("priority") and doc["priority"] not in PRIORITIES:
            raise FrappeError("LinkValidationError", 417, f"Could not find Priority: {doc['priority']}")
        if doc.get("raised_by") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", doc["raised_by"]):
            raise FrappeError("InvalidEmailAddressError", 417, f"{doc['raised_by']} is not a valid Email Address")
        issues = self.docs["Issue"]
        number = 1 + max(int(i["name"].rsplit("-", 1)[1]) for i in issues)
        saved = {**copy.deepcopy(doc), "name": f"ISS-2026-{number:05d}", "docstatus": 0, "doctype": "Issue",
                 "status": doc.get("status") or "Open", "owner": API_KEY}
        issues.append(saved)
        return web.json_response({"data": saved})
