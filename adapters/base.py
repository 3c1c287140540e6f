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

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable


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
        return bool(self.promised_date and self.promised_date < date.today())


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


def belongs_to(order: OrderStatus, customer: CustomerRef | None) -> bool:
    """The privacy rule: the order's email or phone matches one of the asker's verified ones."""
    if customer is None:
        return False
    if order.owner_email and order.owner_email.strip().lower() in {e.lower() for e in customer.emails}:
        return True
    return bool(order.owner_phone and _digits(order.owner_phone) in {_digits(p) for p in customer.phones})


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())
