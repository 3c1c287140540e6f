"""The guard: a timeout on every call, a circuit breaker that opens on failures (never on answers),
one half-open probe, a back end's Retry-After honoured, one exception type for every failure."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

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
from adapters.guard import GuardedBackend
from hub.contract import clock


class ScriptedBackend:
    """A back end whose next behaviour the test sets: answer, raise, or hang."""

    name = "scripted"

    def __init__(self):
        self.calls = 0
        self.mode = "ok"          # ok | down | slow | bug | unknown | retry_later
        self.closed = False
        self.release = asyncio.Event()

    async def _act(self):
        self.calls += 1
        if self.mode == "down":
            raise BackendUnavailable("connection refused")
        if self.mode == "retry_later":
            raise BackendUnavailable("503", retry_after=60)
        if self.mode == "slow":
            await self.release.wait()
        if self.mode == "bug":
            raise KeyError("data")
        if self.mode == "unknown":
            raise UnknownOrder("no such order")

    async def order_status(self, ref, customer=None):
        await self._act()
        return OrderStatus(ref=ref, state="shipped")

    async def stock(self, product):
        await self._act()
        if self.mode == "ok" and product.sku == "NOPE":
            raise UnknownProduct("no")
        return [StockLevel(sku=product.sku or "X", location="Main", available=1, on_hand=1)]

    async def products(self):
        await self._act()
        return [Product(sku="X", name="X")]

    async def escalate(self, case):
        await self._act()
        if case.case_id == "declined":
            raise EscalationNotSupported("webhook")
        return EscalationReceipt(reference="R1")

    async def record_demand(self, signal):
        await self._act()
        if signal.sku == "PRIVATE":
            raise NotTheCustomersOrder("odd, but an answer")

    async def close(self):
        self.closed = True


@pytest.fixture
def inner():
    return ScriptedBackend()


@pytest.fixture
def guarded(inner):
    return GuardedBackend(inner, timeout_seconds=0.2, breaker_failures=3, breaker_reset_seconds=0.3)


async def test_passes_answers_through_and_is_a_backend(guarded, inner):
    assert isinstance(guarded, ScmBackend) and guarded.name == "scripted"
    assert (await guarded.order_status("A1", CustomerRef())).ref == "A1"
    assert (await guarded.stock(ProductRef(sku="S")))[0].sku == "S"
    assert (await guarded.products())[0].sku == "X"
    case = EscalationCase("c1", 1, "r", "s", CustomerRef())
    assert (await guarded.escalate(case)).reference == "R1"
    assert await guarded.record_demand(DemandSignal(clock.today(), "S", 1, 0)) is None
    await guarded.close()
    assert inner.closed and inner.calls == 5


async def test_answers_never_trip_the_breaker(guarded, inner):
    inner.mode = "unknown"
    for _ in range(10):
        with pytest.raises(UnknownOrder):
            await guarded.order_status("nope")
    inner.mode = "ok"
    for _ in range(5):
        with pytest.raises(UnknownProduct):
            await guarded.stock(ProductRef(sku="NOPE"))
        with pytest.raises(EscalationNotSupported):
            await guarded.escalate(EscalationCase("declined", 1, "r", "s", CustomerRef()))
        with pytest.raises(NotTheCustomersOrder):
            await guarded.record_demand(DemandSignal(clock.today(), "PRIVATE", 1, 0))
    assert guarded.state == "closed" and inner.calls == 25


async def test_failures_in_between_successes_do_not_open(guarded, inner):
    for _ in range(4):
        inner.mode = "down"
        for _ in range(2):
            with pytest.raises(BackendUnavailable):
                await guarded.order_status("A1")
        inner.mode = "ok"
        await guarded.order_status("A1")
    assert guarded.state == "closed"


async def test_opens_after_consecutive_failures_then_fails_fast(guarded, inner):
    inner.mode = "down"
    for _ in range(3):
        with pytest.raises(BackendUnavailable, match="connection refused"):
            await guarded.order_status("A1")
    assert guarded.state == "opened" and inner.calls == 3
    with pytest.raises(BackendUnavailable, match="circuit open") as caught:
        await guarded.stock(ProductRef(sku="S"))  # one breaker for the whole back end
    assert inner.calls == 3  # not called at all
    assert 0 < caught.value.retry_after <= 0.3


async def test_half_open_probe_success_closes(guarded, inner):
    inner.mode = "down"
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await guarded.order_status("A1")
    inner.mode = "ok"
    await asyncio.sleep(0.35)
    assert (await guarded.order_status("A1")).ref == "A1"  # the probe
    assert guarded.state == "closed"
    await guarded.products()
    assert inner.calls == 5


async def test_half_open_probe_failure_opens_again(guarded, inner):
    inner.mode = "down"
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await guarded.order_status("A1")
    await asyncio.sleep(0.35)
    with pytest.raises(BackendUnavailable, match="connection refused"):
        await guarded.order_status("A1")  # the probe fails: one failure is enough
    assert guarded.state == "opened"
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await guarded.order_status("A1")
    assert inner.calls == 4


async def test_one_probe_at_a_time(inner):
    guarded = GuardedBackend(inner, timeout_seconds=5, breaker_failures=1, breaker_reset_seconds=0.1)
    inner.mode = "down"
    with pytest.raises(BackendUnavailable):
        await guarded.order_status("A1")
    await asyncio.sleep(0.15)
    inner.mode = "slow"
    probe = asyncio.create_task(guarded.order_status("A1"))
    while inner.calls < 2:
        await asyncio.sleep(0.01)
    with pytest.raises(BackendUnavailable, match="probe"):
        await guarded.order_status("A2")
    inner.release.set()
    assert (await probe).ref == "A1"
    assert guarded.state == "closed" and inner.calls == 2


async def test_timeout_is_a_failure(guarded, inner):
    inner.mode = "slow"
    for _ in range(3):
        with pytest.raises(BackendUnavailable, match="no answer within 0.2 s"):
            await guarded.order_status("A1")
    assert guarded.state == "opened"
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await guarded.order_status("A1")


async def test_unexpected_exception_becomes_unavailable(guarded, inner, caplog):
    inner.mode = "bug"
    with pytest.raises(BackendUnavailable, match="unexpected failure \\(KeyError\\)"):
        await guarded.products()
    assert "SCM back end scripted failed on products" in caplog.text


async def test_retry_after_is_honoured(guarded, inner):
    inner.mode = "retry_later"
    with pytest.raises(BackendUnavailable) as first:
        await guarded.order_status("A1")
    assert first.value.retry_after == 60
    inner.mode = "ok"
    with pytest.raises(BackendUnavailable, match="retry later") as second:
        await guarded.order_status("A1")
    assert 59 < second.value.retry_after <= 60
    assert inner.calls == 1


async def test_cancelled_callers_do_not_count(inner):
    guarded = GuardedBackend(inner, timeout_seconds=5, breaker_failures=2, breaker_reset_seconds=30)
    inner.mode = "slow"
    for _ in range(4):
        task = asyncio.create_task(guarded.order_status("A1"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert guarded.state == "closed"


# --- the optional call: a customer's orders ----------------------------------------------------

class OrderHistoryBackend(ScriptedBackend):
    """The scripted back end that also lists a customer's orders."""

    async def customer_orders(self, customer, since=None):
        await self._act()
        if self.mode == "unsupported":
            raise UnsupportedCall("not here")
        return [OrderSummary("A1", date(2026, 11, 1), 10.0, "GBP", "delivered")]


async def test_customer_orders_missing_is_unsupported_and_never_trips_the_breaker(guarded, inner):
    for _ in range(10):
        with pytest.raises(UnsupportedCall):
            await guarded.customer_orders(CustomerRef(emails=("a@example.com",)))
    assert inner.calls == 0 and guarded.state == "closed"


async def test_customer_orders_guarded_like_every_call():
    inner = OrderHistoryBackend()
    guarded = GuardedBackend(inner, timeout_seconds=0.2, breaker_failures=2, breaker_reset_seconds=30)
    assert [o.ref for o in await guarded.customer_orders(CustomerRef())] == ["A1"]
    inner.mode = "unsupported"
    for _ in range(3):
        with pytest.raises(UnsupportedCall):
            await guarded.customer_orders(CustomerRef())
    inner.mode = "slow"
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await guarded.customer_orders(CustomerRef())
    calls = inner.calls
    with pytest.raises(BackendUnavailable):  # the breaker is open: the back end is not asked
        await guarded.customer_orders(CustomerRef())
    assert inner.calls == calls
    inner.release.set()
