"""The contract every SCM/ERP back end implements, and the shapes it answers with.

The hub asks a back end four things: where an order is, how much of a product there is, to take an
escalated case, and to hear about demand customers expressed. Back ends depend on this module and
nothing of the hub; the hub picks one from settings (adapters/registry.py) and wraps it with
timeouts and a circuit breaker (adapters/guard.py), so a slow or dead ERP never stalls the hub.

Privacy: a back end returns an order's details to the hub whoever asks; whether the *customer*
may see them is decided by `belongs_to()` (the order's email or phone must match one of the
asker's verified identities). Agents always see them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parseaddr
from typing import Any, Protocol, runtime_checkable

import phonenumbers

from hub.contract import clock

# --- failures a caller can act on -------------------------------------------------------------

class BackendError(Exception):
    """Base of the back-end failures; `code` is stable for API clients."""

    code = "backend_error"


class UnknownOrder(BackendError):
    """No order with this reference: tell the customer to check it, no retry."""

    code = "unknown_order"


class NotTheCustomersOrder(BackendError):
    """The order exists but is not the asker's: the agent may see it, the customer may not."""

    code = "not_the_customers_order"


class UnknownProduct(BackendError):
    """No product matches the SKU or name."""

    code = "unknown_product"


class EscalationNotSupported(BackendError):
    """This back end takes no cases (configured so, or it has no case object): the hub escalates
    by its signed webhook instead. An answer about the configuration, never a failure."""

    code = "escalation_not_supported"


class UnsupportedCall(BackendError):
    """This back end has no such call (the system lacks it, or it is not configured): an answer
    about the back end, never a failure; the hub does without (e.g. segments from contact history
    only)."""

    code = "unsupported_call"


class BackendUnavailable(BackendError):
    """The back end is down, timed out, or the circuit breaker is open: hand over to an agent,
    retry later. retry_after (seconds) is the back end's word or the breaker's reset time."""

    code = "backend_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


# --- what the hub passes in -------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerRef:
    """Who is asking, as far as the hub has verified: normalised emails (lowercase) and E.164
    phones. The hub passes only identities the channel proved (the sender of an email, a Telegram
    contact the user shared of themselves, a caller id), never addresses a customer typed."""

    customer_id: int | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    name: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class ProductRef:
    """A product as the customer named it: a SKU when one was recognised, else free text
    ("X200 in blue"); variant and quantity when stated."""

    sku: str | None = None
    text: str | None = None
    variant: str | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class EscalationCase:
    """A conversation handed to the back office."""

    case_id: str                  # the hub's escalation id, stable across retries (idempotency)
    conversation_id: int
    reason: str
    summary: str
    customer: CustomerRef
    order_refs: tuple[str, ...] = ()
    priority: str = "normal"
    facts: dict[str, Any] = field(default_factory=dict)
    url: str | None = None        # the conversation in the hub's inbox


@dataclass(frozen=True)
class DemandSignal:
    """Customers asked for a product on a day: how often, and how often it was not available."""

    day: date
    sku: str
    asked: int
    unavailable: int
    product_name: str | None = None


# --- what a back end answers ------------------------------------------------------------------

@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    quantity: float
    shipped_quantity: float | None = None
    state: str | None = None


@dataclass(frozen=True)
class OrderStatus:
    """state: one of "pending", "confirmed", "processing", "shipped", "delivered", "cancelled",
    "returned", "on_hold" (each back end maps its own states onto these; `backend_state` keeps the
    original). owner_email / owner_phone: who the order belongs to, for the privacy rule."""

    ref: str
    state: str
    lines: tuple[OrderLine, ...] = ()
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    ordered_at: datetime | None = None
    shipped_at: datetime | None = None
    promised_date: date | None = None
    expected_date: date | None = None
    owner_email: str | None = None
    owner_phone: str | None = None
    backend_state: str | None = None
    total: float | None = None
    currency: str | None = None

    @property
    def late(self) -> bool:
        """Expected after the promise, or promised in the past and not delivered."""
        if self.state in ("delivered", "cancelled", "returned"):
            return False
        if self.promised_date and self.expected_date and self.expected_date > self.promised_date:
            return True
        return bool(self.promised_date and self.promised_date < clock.today())


@dataclass(frozen=True)
class OrderSummary:
    """One of a customer's orders, as much as customer value needs: when it was placed, its total
    in its currency, and its state (one of ORDER_STATES, as for OrderStatus)."""

    ref: str
    placed_on: date | None
    total: float | None
    currency: str | None
    state: str


@dataclass(frozen=True)
class StockLevel:
    """One product at one location. incoming: (date, quantity) of expected receipts."""

    sku: str
    location: str
    available: float
    on_hand: float
    incoming: tuple[tuple[date, float], ...] = ()
    product_name: str | None = None


@dataclass(frozen=True)
class Product:
    """A catalogue entry, for recognising products customers name (knowledge/intents.py)."""

    sku: str
    name: str
    variant: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationReceipt:
    """The back office took the case: its own reference, and a link when it has one."""

    reference: str
    url: str | None = None


# --- the contract -----------------------------------------------------------------------------

@runtime_checkable
class ScmBackend(Protocol):
    """One SCM/ERP back end. Every method may raise BackendUnavailable; the lookups raise
    UnknownOrder / UnknownProduct. Implementations never contact customers."""

    name: str

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        """The order with this reference (as the customer wrote it; the back end normalises)."""

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        """Stock of the product per location; several SKUs when the text matches variants."""

    async def products(self) -> list[Product]:
        """The catalogue, for recognising product names and SKUs in messages (cached by the hub)."""

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        """Hand a case to the back office. Must be idempotent on case.case_id."""

    async def record_demand(self, signal: DemandSignal) -> None:
        """Push a demand signal; back ends that do not take demand do nothing."""

    async def close(self) -> None:
        """Release connections."""


@runtime_checkable
class CustomerOrders(Protocol):
    """The optional call of the contract: the orders of one customer, for customer value and
    segments (hub/segments/value.py). A back end that lacks it simply does not define it (or raises
    UnsupportedCall); the hub then values customers from contact history only.

    Orders are matched on the customer's verified emails and phones; `since` (inclusive) limits
    them to those placed on or after that day. Every state is returned (the hub decides what
    counts); never raises UnknownOrder: a customer without orders is an empty list."""

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        """The customer's orders placed since `since`, any order."""


def belongs_to(order: OrderStatus, customer: CustomerRef | None) -> bool:
    """The privacy rule: the order's email or phone matches one of the asker's verified ones.

    Emails compare case-insensitively (a display name around the address is ignored); phones
    compare as E.164 numbers, so "+44 20 7946 0958" and "+442079460958" match while a number
    that merely shares digits with another country's does not. Back ends store owner_phone in
    E.164 (normalise_phone with their configured region) because a national number alone cannot
    say which country it belongs to."""
    if customer is None:
        return False
    email = normalise_email(order.owner_email)
    if email and email in {normalise_email(e) for e in customer.emails}:
        return True
    phone = normalise_phone(order.owner_phone)
    return bool(phone and phone in {normalise_phone(p) for p in customer.phones})


# --- helpers every back end shares ------------------------------------------------------------

ORDER_STATES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "returned", "on_hold")

# Back-end words for our states that many systems share; each back end adds its own map.
COMMON_STATES: dict[str, str] = {
    "draft": "pending", "new": "pending", "open": "confirmed", "paid": "confirmed",
    "picking": "processing", "packed": "processing", "in_transit": "shipped", "in transit": "shipped",
    "dispatched": "shipped", "completed": "delivered", "done": "delivered", "closed": "delivered",
    "canceled": "cancelled", "cancel": "cancelled", "refunded": "returned", "hold": "on_hold",
    "on hold": "on_hold", "on-hold": "on_hold",
}


def map_state(raw: str | None, states: dict[str, str] | None = None) -> str:
    """One of ORDER_STATES for a back end's state: its own map first (case-insensitive), then
    the common words. A state nobody mapped reads as "processing": the order exists and is not
    finished, which is all the hub may safely say (backend_state keeps the original)."""
    key = (raw or "").strip().lower()
    for table in (states or {}, COMMON_STATES):
        for name, ours in table.items():
            if name.strip().lower() == key and ours in ORDER_STATES:
                return ours
    return key if key in ORDER_STATES else "processing"


def normalise_email(raw: str | None) -> str | None:
    """The bare address, lowercase ("Ana <Ana@Example.com>" -> "ana@example.com"); None if empty."""
    if not raw:
        return None
    address = parseaddr(raw)[1] or raw
    address = address.strip().lower()
    return address if "@" in address else None


def normalise_phone(raw: str | None, region: str | None = None) -> str | None:
    """E.164 form of a phone number; `region` (ISO country, "GB") reads national numbers.

    A number phonenumbers cannot parse falls back to "+" and its digits only when it was written
    internationally; otherwise None, so it can never match anyone (privacy over convenience)."""
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    if raw.startswith("00"):  # the international call prefix most of the world dials
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = _digits(raw)
    return f"+{digits}" if raw.startswith("+") and len(digits) >= 7 else None


MAX_REF_CHARS = 64  # longer is not an order number; nothing is looked up


def order_ref_candidates(ref: str, prefixes: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The references an order number a customer wrote may stand for, most literal first:
    "#a1001" -> ["a1001", "A1001"]; with prefixes ("SO-",) "4711" -> [..., "SO-4711"] and
    "so 4711" -> [..., "SO-4711"]. Back ends look these up exactly (no LIKE), so a typo never
    returns somebody else's order."""
    text = ref.strip().lstrip("#").strip()
    if not text or len(text) > MAX_REF_CHARS:
        return []
    squeezed = re.sub(r"\s+", "", text)
    out: list[str] = []
    for cand in (text, squeezed, text.upper(), squeezed.upper()):
        if cand not in out:
            out.append(cand)
    upper = squeezed.upper()
    for prefix in prefixes:
        p = prefix.upper()
        bare = p.rstrip("-/ ")
        # "SO4711", "SO 4711", "SO/4711" -> "SO-4711"; "4711" -> "SO-4711"
        number = upper[len(bare):].lstrip("-/") if bare and upper.startswith(bare) else upper
        if upper.startswith(p) or not number.isdigit():
            continue
        if prefix + number not in out:
            out.append(prefix + number)
    return out


_STOPWORDS = frozenset(
    "a an the do does you have has is are in on of for with and or any some my your our it its "
    "stock available availability still there please can i me we buy order color colour "
    "version model size".split()
)


def product_terms(text: str | None, variant: str | None = None) -> list[str]:
    """The words that must all appear in a product's name, variant, aliases or SKU for free text
    to match it: "the X200 in blue?" -> ["x200", "blue"]. Plural "kettles" searches "kettle"."""
    words = re.findall(r"[\w-]+", " ".join(filter(None, (text, variant))).lower())
    terms: list[str] = []
    for word in words:
        word = word.strip("-_")
        if len(word) < 2 or word in _STOPWORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        if word not in terms:
            terms.append(word)
    return terms


def product_label(name: str, variant: str | None = None) -> str:
    """How a product is named to a customer: "X200 headphones (blue)", but "Blue kettle"."""
    if variant and variant.strip() and variant.strip().lower() not in name.lower():
        return f"{name} ({variant.strip()})"
    return name


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def as_date(value: Any) -> date | None:
    """A date from what back ends store: a date, a datetime, or ISO text ("2026-11-23", with a
    time or not). Anything else (an empty string, Odoo's False) is no date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def as_datetime(value: Any) -> datetime | None:
    """An aware datetime (naive ones are taken as UTC, as ERPs and SQL columns mostly store)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_float(value: Any) -> float | None:
    if value is None or value is False or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
