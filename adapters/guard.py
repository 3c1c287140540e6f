"""Timeouts and a circuit breaker around every call to the SCM/ERP back end.

A dead or slow ERP must never stall the hub: each call is cut after `timeout_seconds`; after
`breaker_failures` consecutive failures the breaker opens and calls fail at once with
BackendUnavailable(retry_after=...) for `breaker_reset_seconds`; then one probe call goes through
(half-open) and its outcome closes the breaker or opens it again.

The breaker is purgatory's (AsyncCircuitBreakerFactory: asyncio-native, exclusions by exception
type, and a Redis-backed store should several hub processes ever need to share one breaker). On top
of it this module adds what the hub needs and purgatory leaves open: answers (UnknownOrder,
UnknownProduct, NotTheCustomersOrder, EscalationNotSupported) count as the back end working, only
one probe runs while half-open, a back end's own Retry-After is honoured, and every failure reaches
the caller as the one exception it can act on, BackendUnavailable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from adapters.base import (
    BackendUnavailable,
    CustomerRef,
    DemandSignal,
    EscalationCase,
    EscalationNotSupported,
    EscalationReceipt,
    NotTheCustomersOrder,
    OrderStatus,
    OrderSummary,
    Product,
    ProductRef,
    ScmBackend,
    StockLevel,
    UnknownOrder,
    UnknownProduct,
    UnsupportedCall,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# The back end answered: it works, whatever the answer says.
ANSWERS = (UnknownOrder, UnknownProduct, NotTheCustomersOrder, EscalationNotSupported, UnsupportedCall)
# A Retry-After longer than this is a misconfigured proxy, not a plan: we try again sooner.
MAX_HOLD_SECONDS = 3600.0


class GuardedBackend:
    """An ScmBackend that wraps another with a timeout per call and one circuit breaker."""

    def __init__(self, inner: ScmBackend, *, timeout_seconds: float = 5.0, breaker_failures: int = 5,
                 breaker_reset_seconds: float = 30.0):
        self.inner = inner
        self.name = inner.name
        self.timeout_seconds = timeout_seconds
        self.reset_seconds = breaker_reset_seconds
        # A cancelled caller (a client that went away) says nothing about the back end.
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=breaker_failures, default_ttl=breaker_reset_seconds,
            exclude=[*ANSWERS, asyncio.CancelledError],
        )
        self._probing = False
        self._hold_until = 0.0  # monotonic; a back end's "retry after" we honour

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if now < self._hold_until:
            raise BackendUnavailable(f"{self.name}: asked to retry later", retry_after=self._hold_until - now)
        breaker = await self._breakers.get_breaker(self.name)
        probe = breaker.context.state != "closed"
        if probe and self._probing:
            raise BackendUnavailable(f"{self.name}: recovering, a probe is under way", retry_after=1.0)
        try:
            if probe:
                self._probing = True
            async with breaker:
                async with asyncio.timeout(self.timeout_seconds):
                    return await call()
        except OpenedState as opened:
            # purgatory stamps opened_at with the machine's clock (time.time), so this compares with it.
            remaining = opened.opened_at + self.reset_seconds - time.time()
            raise BackendUnavailable(f"{self.name} is unavailable (circuit open after repeated failures)",
                                     retry_after=max(remaining, 0.0)) from None
        except ANSWERS:
            raise
        except TimeoutError:
            raise BackendUnavailable(f"{self.name}: no answer within {self.timeout_seconds:g} s",
                                     retry_after=self.reset_seconds) from None
        except BackendUnavailable as exc:
            if exc.retry_after:
                self._hold_until = time.monotonic() + min(exc.retry_after, MAX_HOLD_SECONDS)
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug or a shape the adapter did not expect: the hub hands over to an agent all the
            # same, and the log has the trace for whoever fixes it.
            log.exception("SCM back end %s failed on %s", self.name, what)
            raise BackendUnavailable(f"{self.name}: unexpected failure ({type(exc).__name__})") from exc
        finally:
            if probe:
                self._probing = False

    @property
    def state(self) -> str:
        """"closed", "opened" or "half-opened", for health pages and metrics."""
        try:
            return self._breakers.uow.contexts.breakers[self.name].state  # type: ignore[attr-defined]
        except (AttributeError, KeyError):
            return "closed"

    async def order_status(self, ref: str, customer: CustomerRef | None = None) -> OrderStatus:
        return await self._call("order_status", lambda: self.inner.order_status(ref, customer))

    async def stock(self, product: ProductRef) -> list[StockLevel]:
        return await self._call("stock", lambda: self.inner.stock(product))

    async def products(self) -> list[Product]:
        return await self._call("products", self.inner.products)

    async def escalate(self, case: EscalationCase) -> EscalationReceipt:
        return await self._call("escalate", lambda: self.inner.escalate(case))

    async def record_demand(self, signal: DemandSignal) -> None:
        return await self._call("record_demand", lambda: self.inner.record_demand(signal))

    async def customer_orders(self, customer: CustomerRef, since: date | None = None) -> list[OrderSummary]:
        """The optional call (adapters.base.CustomerOrders): UnsupportedCall when the back end
        lacks it, without touching the breaker."""
        call = getattr(self.inner, "customer_orders", None)
        if call is None:
            raise UnsupportedCall(f"the {self.name} back end cannot list a customer's orders")
        return await self._call("customer_orders", lambda: call(customer, since))

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.inner.close()
        except TimeoutError:
            log.warning("SCM back end %s did not close within %g s", self.name, self.timeout_seconds)
