"""A generic JSON REST back end, and the HTTP plumbing the ERPNext and Odoo back ends share.

Many shops have an order/stock service of their own (a headless shop, a WMS, an in-house API).
HttpBackend speaks to any of them from settings alone: URL templates with {ref}, {sku}, {query}
and field maps of dotted paths into the JSON it answers (adapters/config.py HttpSettings).

HTTP outcomes map onto the contract the same way for every back end here: 404 is an answer
(UnknownOrder / UnknownProduct), 429 and 5xx, timeouts and refused connections are
BackendUnavailable with the server's Retry-After when it sent one, and 401/403 are
BackendUnavailable too (the hub cannot answer until someone fixes the credentials; the message
says so).

The credentials go only to the back end's own origin (scheme, host and port of base_url, or of a
URL the settings name in full): a next-page link or a redirect to anywhere else is not followed
(BackendUnavailable saying where it pointed), so an answer cannot send the API key to another host.
"""

from __future__ import annotations

import json
from datetime import UTC, date
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp

from adapters.base import (
    BackendError,
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
    UnsupportedCall,
    as_date,
    as_datetime,
    as_float,
    map_state,
    normalise_email,
    normalise_phone,
    order_ref_candidates,
    product_terms,
)
from adapters.config import HttpSettings
from hub.contract import clock

MAX_PAGES = 200  # a catalogue that pages forever is a broken server, not a big shop
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an absolute http(s) URL, the port filled in; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, a malformed IPv6 host
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class HttpError(Exception):
    """A non-2xx answer, before the back end decides what it means."""

    def __init__(self, status: int, body: Any, retry_after: float | None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


class JsonApi:
    """One aiohttp session to one JSON API: auth headers, a timeout, and failures turned into
    BackendUnavailable. The session is opened on first use, inside the hub's event loop."""

    system = "the back end"

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout_seconds: float = 5.0,
                 also_trusted: tuple[str, ...] = ()):
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        # Where the credentials may go: base_url's origin, and those of URLs the settings give in full.
        self.origins = {o for o in (origin(u) for u in (self.base_url, *also_trusted)) if o is not None}

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def own(self, url: str) -> bool:
        """Whether `url` is on the back end's own origin (where the credentials may be sent)."""
        return origin(url) in self.origins

    def refuse_foreign(self, url: str, what: str) -> None:
        if not self.own(url):
            shown = url if len(url) <= 200 else url[:200] + "..."
            raise BackendUnavailable(f"{self.system} named {what} on another origin ({shown}); not followed, so that its "
                                     f"credentials go only to {self.base_url}")

    async def send(self, method: str, path: str, *, params: dict | None = None, json_body: Any = None,
                   headers: dict[str, str] | None = None) -> Any:
        """The decoded JSON of a 2xx answer (None when empty); HttpError for any other status.
        Redirects are followed on the back end's own origin only."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        url = self.url(path)
        self.refuse_foreign(url, "a URL")
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                async with self._session.request(method, url, params=params, json=json_body, headers=headers,
                                                 allow_redirects=False) as resp:
                    location = resp.headers.get("Location") if resp.status in REDIRECTS else None
                    if location:
                        url = urljoin(str(resp.url), location)
                        self.refuse_foreign(url, "a redirect")
                        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                            method, json_body = "GET", None
                        params = None  # the Location carries its own query
                        continue
                    raw = await resp.read()
                    body = _decode(raw)
                    if resp.status >= 300:
                        raise HttpError(resp.status, body, retry_after_seconds(resp.headers.get("Retry-After")))
                    if raw.strip() and body is None:
                        raise BackendUnavailable(f"{self.system} answered {resp.status} with something that is not JSON")
                    return body
            raise BackendUnavailable(f"{self.system} redirected more than {MAX_REDIRECTS} times")
        except TimeoutError as exc:
            raise BackendUnavailable(f"{self.system} cannot be reached: no answer within "
                                     f"{self.timeout.total:g} s") from exc
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"{self.system} cannot be reached: {type(exc).__name__} {exc}".strip()) from exc

    def unavailable(self, err: HttpError) -> BackendUnavailable:
        """The failure a non-answer status means; back ends override describe() for the detail."""
        detail = self.describe(err)
        if err.status in (401, 403):
            return BackendUnavailable(f"{self.system} refused our credentials (HTTP {err.status}{detail}): check the API key")
        if err.status == 429:
            return BackendUnavailable(f"{self.system} is rate-limiting us (HTTP 429{detail})", retry_after=err.retry_after)
        if err.status >= 500:
            return BackendUnavailable(f"{self.system} failed (HTTP {err.status}{detail})", retry_after=err.retry_after)
        return BackendUnavailable(f"{self.system} rejected the request (HTTP {err.status}{detail})", retry_after=err.retry_after)

    def describe(self, err: HttpError) -> str:
        if isinstance(err.body, dict):
            for key in ("message", "error", "detail"):
                value = err.body.get(key)
                if isinstance(value, str) and value:
                    return f": {value[:200]}"
        return ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds, whether the server sent a number or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - clock.now()).total_seconds(), 0.0)


def dig(data: Any, path: str | None) -> Any:
    """The value at a dotted path ("data.status", "lines.0.sku"); None where the path ends.
    An empty path is the data itself."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _text(value: Any) -> str | None:
    if value is None or value is False or value == "":
        return None
    return str(value)


class HttpBackend:
    """ScmBackend over a shop's own JSON REST API, mapped by settings."""

    name = "http"

    def __init__(self, settings: HttpSettings, *, phone_region: str | None = None, timeout_seconds: float = 5.0):
        self.settings = settings
        self.phone_region = phone_region
        headers = dict(settings.headers)
        if settings.auth_value is not None:
            headers[settings.auth_header] = settings.auth_value.get_secret_value()
        configured = tuple(v for k, v in settings.model_dump().items() if k.endswith("_url") and isinstance(v, str) and "://" in v)
        self.api = JsonApi(settings.base_url, headers=headers, timeout_seconds=timeout_seconds, also_trusted=configured)
        self.api.system = f"the SCM API at {settings.base_url}"

    async def _get(self, url: str, missing: type[BackendError] | None = None) -> Any:
        try:
            return await self.api.send("GET", url)
        except HttpError as err:
            if err.status == 404 and missing is not None:
                raise missing(f"not found: {url}") from None
            raise self.api.unavailable(err) from None

    @staticmethod
    def _fill(template: str, **values: str) -> str:
        return template.format_map({k: quote(v, safe="") for k, v in values.items()})

    # --- orders ---------------------------------------------------------------------------------

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        for candidate in order_ref_candidates(ref, self.settings.order_prefixes):
            try:
                data = await self._get(self._fill(self.settings.order_url, ref=candidate), UnknownOrder)
            except UnknownOrder:
                continue
            root = dig(data, self.settings.order_root)
            if isinstance(root, dict):
                return self._order(root, candidate)
        raise UnknownOrder(f"no order {ref!r}")

    def _order(self, root: dict, asked: str) -> OrderStatus:
        f = self.settings.order_fields

        def get(field: str) -> Any:
            return dig(root, f[field]) if field in f else None

        lines = []
        for item in dig(root, self.settings.lines_path) or []:
            lf = self.settings.line_fields
            sku = _text(dig(item, lf.get("sku")))
            if sku is None:
                continue
            lines.append(OrderLine(
                sku=sku, name=_text(dig(item, lf.get("name"))) or sku,
                quantity=as_float(dig(item, lf.get("quantity"))) or 0.0,
                shipped_quantity=as_float(dig(item, lf.get("shipped_quantity"))) if "shipped_quantity" in lf else None,
                state=_text(dig(item, lf.get("state"))) if "state" in lf else None,
            ))
        raw_state = _text(get("state"))
        return OrderStatus(
            ref=_text(get("ref")) or asked,
            state=map_state(raw_state, self.settings.states),
            lines=tuple(lines),
            carrier=_text(get("carrier")), tracking_number=_text(get("tracking_number")),
            tracking_url=_text(get("tracking_url")),
            ordered_at=as_datetime(get("ordered_at")), shipped_at=as_datetime(get("shipped_at")),
            promised_date=as_date(get("promised_date")), expected_date=as_date(get("expected_date")),
            owner_email=normalise_email(_text(get("owner_email"))),
            owner_phone=normalise_phone(_text(get("owner_phone")), self.phone_region),
            backend_state=raw_state, total=as_float(get("total")), currency=_text(get("currency")),
        )

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        s = self.settings
        if not s.customer_orders_url:
            raise UnsupportedCall("no customer_orders_url configured")
        template = s.customer_orders_url
        emails = sorted({e for e in (normalise_email(x) for x in customer.emails) if e})
        phones = sorted({p for p in (normalise_phone(x, self.phone_region) for x in customer.phones) if p})
        asks = ([{"email": e} for e in emails] if "{email}" in template else []) + \
               ([{"phone": p} for p in phones] if "{phone}" in template else [])
        found: dict[str, OrderSummary] = {}
        for ask in asks:
            url = self._fill(template, **{"email": "", "phone": "", **ask,
                                          "since": since.isoformat() if since else ""})
            try:
                data = await self._get(url, UnknownOrder)
            except UnknownOrder:
                continue  # 404: the API knows no such customer, so no orders
            for item in dig(data, s.customer_orders_path) or []:
                order = self._summary(item) if isinstance(item, dict) else None
                if order is None or order.ref in found:
                    continue
                # The API may ignore {since}; the window holds all the same.
                if since is None or order.placed_on is None or order.placed_on >= since:
                    found[order.ref] = order
        return sorted(found.values(), key=lambda o: (o.placed_on or date.min, o.ref))

    def _summary(self, item: dict) -> OrderSummary | None:
        f = self.settings.customer_order_fields
        ref = _text(dig(item, f.get("ref")))
        if ref is None:
            return None
        raw_state = _text(dig(item, f.get("state"))) if "state" in f else None
        return OrderSummary(
            ref=ref, placed_on=as_date(dig(item, f.get("placed_on"))) if "placed_on" in f else None,
            total=as_float(dig(item, f.get("total"))) if "total" in f else None,
            currency=_text(dig(item, f.get("currency"))) if "currency" in f else None,
            state=map_state(raw_state, self.settings.states),
        )

    # --- stock and catalogue --------------------------------------------------------------------

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        s = self.settings
        data = None
        if product.sku:
            try:
                data = await self._get(self._fill(s.stock_url, sku=product.sku.strip()), UnknownProduct)
            except UnknownProduct:
                data = None
        if data is None:
            terms = product_terms(product.text, product.variant)
            if not terms or not s.stock_search_url:
                raise UnknownProduct(f"no product matches {product.sku or product.text!r}")
            data = await self._get(self._fill(s.stock_search_url, query=" ".join(terms)), UnknownProduct)
        levels = [self._level(item) for item in (dig(data, s.stock_path) or []) if isinstance(item, dict)]
        levels = [lv for lv in levels if lv is not None]
        if not levels:
            raise UnknownProduct(f"no product matches {product.sku or product.text!r}")
        return levels

    def _level(self, item: dict) -> StockLevel | None:
        f = self.settings.stock_fields
        sku = _text(dig(item, f.get("sku")))
        if sku is None:
            return None
        incoming = []
        for receipt in dig(item, self.settings.incoming_path) or []:
            day = as_date(dig(receipt, self.settings.incoming_fields.get("date")))
            qty = as_float(dig(receipt, self.settings.incoming_fields.get("quantity")))
            if day is not None and qty:
                incoming.append((day, qty))
        on_hand = as_float(dig(item, f.get("on_hand")))
        available = as_float(dig(item, f.get("available")))
        return StockLevel(
            sku=sku, location=_text(dig(item, f.get("location"))) or "all",
            available=max(available if available is not None else (on_hand or 0.0), 0.0),
            on_hand=on_hand if on_hand is not None else (available or 0.0),
            incoming=tuple(sorted(incoming)), product_name=_text(dig(item, f.get("product_name"))),
        )

    async def products(self) -> list[Product]:
        s = self.settings
        out: list[Product] = []
        url: str | None = s.products_url
        seen: set[str] = set()
        for _page in range(MAX_PAGES):
            if not url or url in seen:
                break
            seen.add(url)
            data = await self._get(url)
            for item in dig(data, s.products_path) or []:
                sku = _text(dig(item, s.product_fields.get("sku")))
                name = _text(dig(item, s.product_fields.get("name")))
                if sku is None or name is None:
                    continue
                aliases = dig(item, s.product_fields.get("aliases"))
                if isinstance(aliases, str):
                    aliases = aliases.split(",")
                out.append(Product(sku=sku, name=name, variant=_text(dig(item, s.product_fields.get("variant"))),
                                   aliases=tuple(a.strip() for a in aliases or () if isinstance(a, str) and a.strip())))
            following = _text(dig(data, s.next_page_path)) if s.next_page_path else None
            url = urljoin(self.api.url(url), following) if following else None
            if url is not None:
                self.api.refuse_foreign(url, "its next page")
        return out

    # --- cases and demand -----------------------------------------------------------------------

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        s = self.settings
        if not s.escalate_url:
            raise EscalationNotSupported("no escalate_url configured: the hub escalates by webhook")
        body = {
            "case_id": case.case_id, "conversation_id": case.conversation_id, "reason": case.reason,
            "summary": case.summary, "priority": case.priority, "order_refs": list(case.order_refs),
            "customer": {"id": case.customer.customer_id, "name": case.customer.name,
                         "emails": list(case.customer.emails), "phones": list(case.customer.phones),
                         "segment": case.customer.segment},
            "facts": case.facts, "url": case.url,
        }
        try:
            data = await self.api.send("POST", s.escalate_url, json_body=json.loads(json.dumps(body, default=str)),
                                       headers={"Idempotency-Key": case.case_id})
        except HttpError as err:
            # 409: the case was taken before (a retry after a lost answer); the body names it.
            if err.status == 409 and dig(err.body, s.escalation_reference_path) is not None:
                data = err.body
            else:
                raise self.api.unavailable(err) from None
        reference = _text(dig(data, s.escalation_reference_path))
        if reference is None:
            raise BackendUnavailable(f"{self.api.system} took the case but named no reference "
                                     f"(expected at {s.escalation_reference_path!r})")
        url = _text(dig(data, s.escalation_url_path)) if s.escalation_url_path else None
        return EscalationReceipt(reference=reference, url=url)

    async def record_demand(self, signal: DemandSignal) -> None:
        """POSTs the day's totals; the key carries the figures, so a resend of the same totals is
        a duplicate the server may drop, and new totals for the day are new."""
        if not self.settings.demand_url:
            return
        body = {"day": signal.day.isoformat(), "sku": signal.sku, "asked": signal.asked,
                "unavailable": signal.unavailable, "product_name": signal.product_name}
        key = f"demand:{signal.day.isoformat()}:{signal.sku}:{signal.asked}:{signal.unavailable}"
        try:
            await self.api.send("POST", self.settings.demand_url, json_body=body, headers={"Idempotency-Key": key})
        except HttpError as err:
            if err.status != 409:
                raise self.api.unavailable(err) from None

    async def close(self) -> None:
        await self.api.close()

