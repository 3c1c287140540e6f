"""The generic HTTP back end against tests/support/fake_scm_http.py: mapped fields, answers, failures,
and the guard around it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from adapters.base import (
    BackendUnavailable,
    CustomerRef,
    DemandSignal,
    EscalationCase,
    EscalationNotSupported,
    ProductRef,
    UnknownOrder,
    UnknownProduct,
    UnsupportedCall,
    belongs_to,
)
from adapters.config import BackendSettings, HttpSettings
from adapters.http import HttpBackend, dig, retry_after_seconds
from adapters.registry import BackendMisconfigured, build_backend
from hub.contract import clock
from tests.support.dates import moved
from tests.support.fake_scm_http import TOKEN, FakeScmHttp


@pytest.fixture
async def fake(frozen_clock):
    server = FakeScmHttp()
    url = await server.start()
    server.url = url
    yield server
    await server.stop()


def _settings(fake, **extra) -> HttpSettings:
    return HttpSettings.model_validate({"base_url": fake.url, "auth_value": TOKEN, "order_prefixes": ["SO-"],
                                        "escalate_url": "/cases", "demand_url": "/demand", **extra})


@pytest.fixture
async def backend(fake):
    b = HttpBackend(_settings(fake, states={"awaiting_stock": "on_hold"}), phone_region="GB", timeout_seconds=2)
    yield b
    await b.close()


# --- orders ------------------------------------------------------------------------------------

async def test_order_found_and_mapped(backend, fake):
    order = await backend.order_status("a1001")
    assert order.ref == "A1001"
    assert (order.state, order.backend_state) == ("shipped", "in_transit")
    assert order.late  # promised a week ago, expected in two days
    assert (order.carrier, order.tracking_number) == ("UPS", "1Z999AA10123456784")
    assert order.shipped_at == moved(datetime(2026, 11, 14, 16, tzinfo=UTC))
    assert order.owner_email == "ana.silva@example.com" and order.owner_phone == "+351912345678"
    assert [(li.sku, li.quantity, li.shipped_quantity) for li in order.lines] == [("X200-BLU", 1, 1), ("CHG-65W", 1, 1)]
    assert order.total == 164.0 and order.currency == "GBP"
    # The literal reference 404s, the upper-cased one is found; the token went with each request.
    assert [r.path for r in fake.requests] == ["/orders/a1001", "/orders/A1001"]
    assert all(r.headers["Authorization"] == TOKEN for r in fake.requests)


async def test_order_number_with_prefix_and_national_phone(backend, fake):
    order = await backend.order_status("#4711")
    assert order.ref == "SO-4711" and order.state == "shipped" and not order.late
    assert order.owner_phone == "+442079460958"  # "020 7946 0958" read as a GB number
    assert belongs_to(order, CustomerRef(phones=("+442079460958",)))
    assert fake.requests[-1].path == "/orders/SO-4711"


async def test_state_map_and_missing_fields(backend):
    order = await backend.order_status("SO-4720")
    assert (order.state, order.backend_state) == ("on_hold", "awaiting_stock")
    assert order.carrier is None and order.expected_date is None and order.owner_phone is None
    assert not belongs_to(order, CustomerRef(customer_id=3, name="Ben Okafor"))  # Telegram, nothing verified
    assert belongs_to(order, CustomerRef(emails=("BEN.OKAFOR@example.com",)))


async def test_unknown_state_reads_as_processing(fake):
    b = HttpBackend(_settings(fake), timeout_seconds=2)
    assert (await b.order_status("SO-4720")).state == "processing"
    await b.close()


async def test_wrapped_answer_mapped_by_settings(fake):
    fields = {"ref": "id", "state": "attributes.status", "owner_email": "attributes.customer.email",
              "tracking_number": "attributes.shipment.tracking_number", "promised_date": "attributes.promised_date"}
    b = HttpBackend(_settings(fake, order_url="/api/v2/orders/{ref}", order_root="data", order_fields=fields,
                              lines_path="attributes.lines"), timeout_seconds=2)
    order = await b.order_status("SO-4711")
    assert (order.ref, order.state, order.tracking_number) == ("SO-4711", "shipped", "00340434161094042557")
    assert order.promised_date == moved(date(2026, 11, 24)) and order.carrier is None and len(order.lines) == 2
    with pytest.raises(UnknownOrder):
        await b.order_status("SO-9999")
    await b.close()


@pytest.mark.parametrize("ref", ["A9999", "", "../products", "A1001/../../x"])
async def test_unknown_order(backend, ref):
    with pytest.raises(UnknownOrder):
        await backend.order_status(ref)


# --- stock and catalogue -----------------------------------------------------------------------

async def test_stock_by_sku_with_incoming(backend, fake):
    levels = await backend.stock(ProductRef(sku="ket-blue"))
    assert [(lv.location, lv.available, lv.on_hand) for lv in levels] == [("Leeds DC", 0, 2), ("Rotterdam DC", 0, 0)]
    assert levels[0].incoming == ((moved(date(2026, 11, 29)), 40),) and levels[0].product_name == "Blue kettle"
    assert fake.requests[-1].path == "/stock/ket-blue"


async def test_stock_by_text(backend, fake):
    levels = await backend.stock(ProductRef(text="Do you have the X200 in black?"))
    assert [lv.sku for lv in levels] == ["X200-BLK"]
    assert levels[0].incoming == ((moved(date(2026, 11, 27)), 30), (moved(date(2026, 12, 10)), 10))
    assert fake.requests[-1].query == {"q": "x200 black"}
    assert {lv.sku for lv in await backend.stock(ProductRef(text="kettle"))} == {"KET-BLUE", "KET-STEEL"}


async def test_unknown_sku_falls_back_to_text(backend):
    levels = await backend.stock(ProductRef(sku="KETTLE-B", text="blue kettle"))
    assert {lv.sku for lv in levels} == {"KET-BLUE"}


@pytest.mark.parametrize("product", [ProductRef(sku="NOPE"), ProductRef(text="unicorn saddle"), ProductRef(text="the")])
async def test_unknown_product(backend, product):
    with pytest.raises(UnknownProduct):
        await backend.stock(product)


async def test_catalogue_follows_pages(backend, fake):
    catalogue = await backend.products()
    assert [p.sku for p in catalogue] == ["KET-BLUE", "KET-STEEL", "X200-BLU", "X200-BLK", "X200-WHT", "LMP-AERO", "PLG-S1"]
    assert catalogue[2].variant == "blue" and catalogue[5].variant is None
    assert catalogue[6].aliases == ("wifi plug", "smart socket")
    assert [r.query.get("page") for r in fake.requests] == [None, "2", "3"]


async def _other_host():
    """A second server (another origin: another port) that records what reaches it."""
    other = FakeScmHttp()
    other.url = await other.start()
    return other


@pytest.mark.parametrize("form", ["{url}", "//127.0.0.1:{port}"])
async def test_catalogue_never_follows_a_next_page_to_another_origin(backend, fake, form):
    other = await _other_host()
    try:
        port = other.url.rsplit(":", 1)[1]
        fake.next_base = form.format(url=other.url, port=port)
        with pytest.raises(BackendUnavailable, match="next page on another origin"):
            await backend.products()
        assert other.requests == []  # the API key never went there
        assert [r.query.get("page") for r in fake.requests] == [None]
    finally:
        await other.stop()


async def test_redirects_are_followed_on_the_own_origin_only(backend, fake):
    other = await _other_host()
    try:
        fake.redirects["/orders/A1001"] = f"{fake.url}/api/v2/orders/A1001"  # same origin: followed, key and all
        assert (await backend.order_status("A1001")).ref == "A1001"
        assert fake.requests[-1].path == "/api/v2/orders/A1001" and fake.requests[-1].headers["Authorization"] == TOKEN
        fake.redirects["/orders/A1001"] = f"{other.url}/orders/A1001"
        with pytest.raises(BackendUnavailable, match="redirect on another origin"):
            await backend.order_status("A1001")
        assert other.requests == []
    finally:
        await other.stop()


async def test_urls_the_settings_give_in_full_are_trusted(fake):
    other = await _other_host()
    try:
        b = HttpBackend(_settings(fake, products_url=f"{other.url}/products"), timeout_seconds=2)
        try:
            assert len(await b.products()) == 7  # the catalogue service the admin named, paged there
        finally:
            await b.close()
        assert [r.query.get("page") for r in other.requests] == [None, "2", "3"]
    finally:
        await other.stop()


# --- escalation and demand ---------------------------------------------------------------------

def _case(case_id="esc-9") -> EscalationCase:
    return EscalationCase(case_id=case_id, conversation_id=9, reason="late_order", summary="A1001 is late",
                          customer=CustomerRef(customer_id=1, emails=("ana.silva@example.com",), segment="key"),
                          order_refs=("A1001",), facts={"expected": date(2026, 11, 25)}, url="http://hub/c/9")


@pytest.mark.parametrize("strict", [False, True])
async def test_escalate_is_idempotent(backend, fake, strict):
    fake.strict_idempotency = strict
    first = await backend.escalate(_case())
    again = await backend.escalate(_case())
    assert first == again and first.reference == "CS-1001" and first.url.endswith("/cases/CS-1001")
    assert (await backend.escalate(_case("esc-10"))).reference == "CS-1002"
    posted = [r for r in fake.requests if r.path == "/cases"]
    assert [r.headers["Idempotency-Key"] for r in posted] == ["esc-9", "esc-9", "esc-10"]
    assert posted[0].body["customer"]["emails"] == ["ana.silva@example.com"]
    assert posted[0].body["facts"] == {"expected": "2026-11-25"}


async def test_escalation_not_configured(fake):
    b = HttpBackend(_settings(fake, escalate_url=None, demand_url=None), timeout_seconds=2)
    with pytest.raises(EscalationNotSupported):
        await b.escalate(_case())
    await b.record_demand(DemandSignal(clock.today(), "KET-BLUE", 3, 3))
    assert fake.requests == []
    await b.close()


async def test_record_demand(backend, fake):
    await backend.record_demand(DemandSignal(date(2026, 11, 23), "KET-BLUE", 3, 2, "Blue kettle"))
    assert fake.demand == [{"day": "2026-11-23", "sku": "KET-BLUE", "asked": 3, "unavailable": 2,
                            "product_name": "Blue kettle"}]
    assert fake.requests[-1].headers["Idempotency-Key"] == "demand:2026-11-23:KET-BLUE:3:2"


# --- failures ----------------------------------------------------------------------------------

async def test_server_error_with_retry_after(backend, fake):
    fake.fail(503, retry_after="120")
    with pytest.raises(BackendUnavailable, match="HTTP 503") as caught:
        await backend.order_status("A1001")
    assert caught.value.retry_after == 120


async def test_rate_limited_with_http_date(backend, fake):
    fake.fail(429, retry_after=format_datetime(clock.now() + timedelta(seconds=90), usegmt=True))
    with pytest.raises(BackendUnavailable, match="rate-limiting") as caught:
        await backend.stock(ProductRef(sku="KET-BLUE"))
    assert 80 < caught.value.retry_after <= 90


async def test_wrong_credentials(fake):
    b = HttpBackend(_settings(fake, auth_value="Bearer wrong"), timeout_seconds=2)
    with pytest.raises(BackendUnavailable, match="refused our credentials"):
        await b.order_status("A1001")
    await b.close()


async def test_not_json(backend, fake):
    fake.fail(200, body="<html>maintenance</html>")
    with pytest.raises(BackendUnavailable, match="not JSON"):
        await backend.order_status("A1001")


async def test_timeout(fake):
    fake.delay = 1.0
    b = HttpBackend(_settings(fake), timeout_seconds=0.2)
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        await b.order_status("A1001")
    await b.close()


async def test_connection_refused(fake):
    b = HttpBackend(_settings(fake), timeout_seconds=2)
    await fake.stop()
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        await b.products()
    await b.close()


async def test_guarded_breaker_opens_and_recovers(fake, tmp_path):
    settings = BackendSettings.model_validate({
        "kind": "http", "timeout_seconds": 2, "breaker_failures": 2, "breaker_reset_seconds": 0.2,
        "http": {"base_url": fake.url, "auth_value": TOKEN}})
    backend = build_backend(settings, data_dir=tmp_path)
    fake.fail(502, times=2)
    for _ in range(2):
        with pytest.raises(BackendUnavailable, match="HTTP 502"):
            await backend.order_status("A1001")
    calls = len(fake.requests)
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await backend.order_status("A1001")
    assert len(fake.requests) == calls  # failed fast, nothing sent
    await asyncio.sleep(0.25)
    assert (await backend.order_status("A1001")).ref == "A1001"  # the half-open probe
    assert backend.state == "closed"
    # Unknown orders are answers: any number of them leaves the breaker closed.
    for _ in range(4):
        with pytest.raises(UnknownOrder):
            await backend.order_status("NOPE")
    assert backend.state == "closed"
    await backend.close()


def test_registry_needs_a_url(tmp_path):
    with pytest.raises(BackendMisconfigured, match="SERVICEHUB_SCM__BACKEND__HTTP__BASE_URL"):
        build_backend(BackendSettings(kind="http"), data_dir=tmp_path)


def test_dig_and_retry_after():
    data = {"data": {"lines": [{"sku": "A"}, {"sku": "B"}], "n": 0}}
    assert dig(data, "data.lines.1.sku") == "B" and dig(data, "data.lines.-1.sku") == "B"
    assert dig(data, "data.lines.5.sku") is None and dig(data, "data.n.x") is None and dig(data, "") is data
    assert retry_after_seconds("7") == 7 and retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0


# --- a customer's orders -------------------------------------------------------------------------

async def test_customer_orders_by_email(backend, fake):
    orders = await backend.customer_orders(CustomerRef(emails=("Ana.Silva@example.com",)))
    assert [(o.ref, o.total, o.currency, o.state) for o in orders] == [("A1001", 164.0, "GBP", "shipped")]
    assert orders[0].placed_on == moved(date(2026, 11, 10))
    asked = [r for r in fake.requests if r.path == "/customers/orders"]
    assert asked[0].query == {"email": "ana.silva@example.com", "since": ""}


async def test_customer_orders_since_unknown_and_by_phone(fake):
    b = HttpBackend(_settings(fake, customer_orders_url="/customers/orders?phone={phone}&since={since}"),
                    phone_region="GB", timeout_seconds=2)
    try:
        ana = CustomerRef(emails=("ana.silva@example.com",), phones=("+351 912 345 678",))
        assert [o.ref for o in await b.customer_orders(ana)] == ["A1001"]
        assert await b.customer_orders(ana, since=moved(date(2026, 11, 11))) == []
        # 404: a customer the API does not know has no orders.
        assert await b.customer_orders(CustomerRef(phones=("+12025550143",))) == []
    finally:
        await b.close()


async def test_customer_orders_not_offered(fake):
    b = HttpBackend(_settings(fake, customer_orders_url=None), timeout_seconds=2)
    try:
        with pytest.raises(UnsupportedCall):
            await b.customer_orders(CustomerRef(emails=("ana.silva@example.com",)))
    finally:
        await b.close()


async def test_customer_orders_server_down_is_unavailable(backend, fake):
    fake.fail(503, retry_after="7")
    with pytest.raises(BackendUnavailable):
        await backend.customer_orders(CustomerRef(emails=("ana.silva@example.com",)))
