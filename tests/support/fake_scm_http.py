"""A local stand-in for a shop's own order/stock REST API, the shape adapters/http.py's default
settings describe, fed from tests/payloads/scm_http/ (its dates moved to the clock's today by tests/support/dates.py).

GET /orders/{ref} (and /api/v2/orders/{ref}, wrapped in {"data": ...}), GET /customers/orders?email=
(or phone=, E.164; since=ISO date) -> {"orders": [...]} (404 for a customer it does not know), GET /stock/{sku}, GET /stock?q=words, GET /products (paged, "next" link),
POST /cases (Idempotency-Key required; a replay answers the first case, or 409 in strict mode),
POST /demand. A bearer token is required (401 without). Every request is recorded; failures
(status, Retry-After) and delays can be injected for breaker and timeout tests.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.dates import move_dates

PAYLOADS = Path(__file__).parent / "payloads" / "scm_http"
TOKEN = "Bearer test-scm-token"
PAGE_SIZE = 3


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object = None


@dataclass
class FakeScmHttp:
    orders: dict = field(default_factory=lambda: move_dates(json.loads((PAYLOADS / "orders.json").read_text())))
    products: list = field(default_factory=lambda: move_dates(json.loads((PAYLOADS / "stock.json").read_text())))
    requests: list[Request] = field(default_factory=list)
    cases: dict = field(default_factory=dict)
    demand: list = field(default_factory=list)
    strict_idempotency: bool = False
    delay: float = 0.0
    # The "next" links of /products point here when set (another host, as a hostile answer would).
    next_base: str | None = None
    # path -> absolute URL: those requests are answered with a 302 there.
    redirects: dict = field(default_factory=dict)
    _failures: list = field(default_factory=list)
    _server: TestServer | None = None

    def fail(self, status: int, *, times: int = 1, retry_after: str | None = None, body: str = '{"error": "boom"}'):
        """The next `times` requests answer `status` (with Retry-After when given)."""
        self._failures.append([status, times, retry_after, body])

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        body = await request.json() if request.can_read_body else None
        self.requests.append(Request(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._failures:
            status, times, retry_after, text = self._failures[0]
            self._failures[0][1] -= 1
            if self._failures[0][1] <= 0:
                self._failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.Response(status=status, text=text, content_type="application/json", headers=headers)
        if request.path in self.redirects:
            raise web.HTTPFound(self.redirects[request.path])
        if request.headers.get("Authorization") != TOKEN:
            return web.json_response({"error": "unauthorized"}, status=401)
        return await handler(request)

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/orders/{ref}", self._order)
        app.router.add_get("/api/v2/orders/{ref}", self._order_v2)
        app.router.add_get("/customers/orders", self._customer_orders)
        app.router.add_get("/stock/{sku}", self._stock)
        app.router.add_get("/stock", self._search)
        app.router.add_get("/products", self._products)
        app.router.add_post("/cases", self._case)
        app.router.add_post("/demand", self._demand)
        return app

    async def start(self) -> str:
        self._server = TestServer(self._app(), host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("/")).rstrip("/")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    # --- routes ---------------------------------------------------------------------------------

    async def _order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["ref"])
        if order is None:
            return web.json_response({"error": "order not found"}, status=404)
        return web.json_response(order)

    async def _order_v2(self, request: web.Request) -> web.Response:
        """The same orders wrapped the way many APIs answer: {"data": {...}, "meta": {...}}."""
        order = self.orders.get(request.match_info["ref"])
        if order is None:
            return web.json_response({"errors": [{"status": "404", "title": "Not Found"}]}, status=404)
        return web.json_response({"data": {"id": order["ref"], "attributes": order}, "meta": {"api": "v2"}})

    async def _customer_orders(self, request: web.Request) -> web.Response:
        email = request.query.get("email", "").strip().lower()
        phone = "".join(ch for ch in request.query.get("phone", "") if ch.isdigit() or ch == "+")
        since = request.query.get("since", "")

        def mine(order: dict) -> bool:
            who = order.get("customer") or {}
            their_phone = "".join(ch for ch in who.get("phone") or "" if ch.isdigit() or ch == "+")
            return bool((email and (who.get("email") or "").lower() == email) or (phone and their_phone == phone))

        orders = [o for o in self.orders.values() if mine(o)]
        if not orders:
            return web.json_response({"error": "customer not found"}, status=404)
        orders = [o for o in orders if not since or (o.get("ordered_at") or "")[:10] >= since]
        return web.json_response({"orders": orders, "count": len(orders)})

    async def _stock(self, request: web.Request) -> web.Response:
        for product in self.products:
            if product["sku"] == request.match_info["sku"].upper():
                return web.json_response({"sku": product["sku"], "levels": product["levels"]})
        return web.json_response({"error": "unknown sku"}, status=404)

    async def _search(self, request: web.Request) -> web.Response:
        words = request.query.get("q", "").lower().split()
        levels = []
        for product in self.products:
            aliases = product["aliases"] if isinstance(product["aliases"], list) else [product["aliases"]]
            hay = " ".join([product["sku"], product["name"], product["variant"] or "", *aliases]).lower()
            if words and all(w in hay for w in words):
                levels.extend(product["levels"])
        return web.json_response({"query": request.query.get("q"), "levels": levels})

    async def _products(self, request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        chunk = self.products[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        more = page * PAGE_SIZE < len(self.products)
        items = [{k: p[k] for k in ("sku", "name", "variant", "aliases")} for p in chunk]
        following = f"{self.next_base or ''}/products?page={page + 1}" if more else None
        return web.json_response({"items": items, "next": following})

    async def _case(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return web.json_response({"error": "Idempotency-Key header required"}, status=400)
        if key in self.cases:
            return web.json_response(self.cases[key], status=409 if self.strict_idempotency else 200)
        body = await request.json()
        if not body.get("summary"):
            return web.json_response({"error": "summary required"}, status=422)
        number = f"CS-{1000 + len(self.cases) + 1}"
        self.cases[key] = {"id": number, "url": f"https://backoffice.example/cases/{number}", "case": body}
        return web.json_response(self.cases[key], status=201)

    async def _demand(self, request: web.Request) -> web.Response:
        self.demand.append(await request.json())
        return web.json_response({"accepted": True}, status=202)
