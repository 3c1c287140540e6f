"""The Odoo back end against tests/support/fake_odoo.py (external JSON-RPC API shapes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

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
    belongs_to,
)
from adapters.config import BackendSettings, OdooSettings
from adapters.odoo import OdooBackend
from adapters.registry import BackendMisconfigured, build_backend
from hub.contract import clock
from tests.support.dates import moved
from tests.support.fake_odoo import DATABASE, LOGIN, PASSWORD, UID, FakeOdoo


@pytest.fixture
async def fake(frozen_clock):
    server = FakeOdoo()
    server.url = await server.start()
    yield server
    await server.stop()


def _settings(fake, **extra) -> OdooSettings:
    return OdooSettings.model_validate({"url": fake.url, "database": DATABASE, "username": LOGIN,
                                        "password": PASSWORD, **extra})


@pytest.fixture
async def backend(fake):
    b = OdooBackend(_settings(fake, escalation="helpdesk", helpdesk_team_id=1), phone_region="GB", timeout_seconds=2)
    yield b
    await b.close()


# --- orders ------------------------------------------------------------------------------------

async def test_shipped_order(backend, fake):
    order = await backend.order_status("#1001")
    assert order.ref == "S01001"
    assert (order.state, order.backend_state) == ("shipped", "sale")
    assert (order.carrier, order.tracking_number) == ("UPS Standard", "1Z999AA10123456784")
    assert order.tracking_url.endswith("tracknum=1Z999AA10123456784")
    assert order.promised_date == moved(date(2026, 11, 16)) and order.expected_date is None
    assert order.late  # promised in the past, not known to be delivered
    assert order.shipped_at == moved(datetime(2026, 11, 14, 16, tzinfo=UTC))
    # The section line is left out; codes come from product.product, names lose the [code].
    assert [(li.sku, li.name, li.quantity, li.shipped_quantity) for li in order.lines] == [
        ("X200-BLU", "X200 headphones (Blue)", 1, 1), ("CHG-65W", "USB-C charger 65 W", 1, 1)]
    assert order.owner_email == "ana.silva@example.com" and order.owner_phone == "+351912345678"
    assert order.total == 164.0 and order.currency == "GBP"
    # One login, then execute_kw with the uid and the key on every call.
    logins = [c for c in fake.calls if c.service == "common"]
    assert [(c.method, c.args) for c in logins] == [("authenticate", [DATABASE, LOGIN, PASSWORD, {}])]
    assert all(c.args[:3] == [DATABASE, UID, PASSWORD] for c in fake.object_calls())
    search = fake.object_calls("sale.order", "search_read")[0]
    assert search.args[5] == [[["name", "in", ["1001", "S1001", "S01001"]]]]


async def test_partner_phone_and_privacy(backend):
    order = await backend.order_status("S4711")
    assert order.ref == "S04711" and order.state == "shipped" and order.carrier == "DHL Express"
    assert order.promised_date == moved(date(2026, 11, 24))  # no commitment date: the expected date told at sale
    assert order.owner_phone == "+442079460958"  # "020 7946 0958" read as GB
    assert belongs_to(order, CustomerRef(phones=("+442079460958",)))
    assert not belongs_to(order, CustomerRef(emails=("ana.silva@example.com",)))


async def test_customer_reference_finds_the_order(backend):
    assert (await backend.order_status("PO-CM-2211")).ref == "S04711"


async def test_states_from_pickings(backend):
    bens = await backend.order_status("4720")
    assert bens.state == "confirmed" and bens.expected_date == moved(date(2026, 11, 27)) and bens.carrier is None
    assert not belongs_to(bens, CustomerRef(customer_id=3, name="Ben Okafor"))
    dmitri = await backend.order_status("S04730")
    assert dmitri.state == "processing" and dmitri.carrier == "DPD Next Day" and dmitri.tracking_number is None
    assert dmitri.expected_date == moved(date(2026, 12, 7)) and dmitri.late
    assert dmitri.owner_phone == "+4915123456789"  # the mobile, where the version has one
    assert (await backend.order_status("S00998")).state == "pending"
    assert (await backend.order_status("S04690")).state == "returned"
    assert (await backend.order_status("S04650")).state == "cancelled"


async def test_without_delivery_module_or_partner_mobile(fake):
    fake.delivery_installed = False
    fake.partner_has_mobile = False
    b = OdooBackend(_settings(fake), timeout_seconds=2)
    for _ in range(2):  # the second time the missing fields are not asked for again
        order = await b.order_status("S01001")
        assert order.state == "shipped" and order.carrier is None and order.tracking_number is None
    dmitri = await b.order_status("S04730")
    assert dmitri.owner_phone is None  # only a mobile, which this version does not have
    refusals = [c for c in fake.object_calls("stock.picking") if "carrier_id" in c.kwargs["fields"]]
    assert len(refusals) == 1
    await b.close()


@pytest.mark.parametrize("ref", ["S09999", "99999", "A1001", "", "PO-%"])
async def test_unknown_order(backend, ref):
    with pytest.raises(UnknownOrder):
        await backend.order_status(ref)


# --- stock and catalogue -----------------------------------------------------------------------

async def test_stock_per_warehouse_with_incoming(backend, fake):
    levels = await backend.stock(ProductRef(sku="ket-blue"))
    assert [(lv.location, lv.on_hand, lv.available, lv.incoming) for lv in levels] == [
        ("Leeds DC", 2, 0, ((moved(date(2026, 11, 29)), 40),)),
        ("Rotterdam DC", 0, 0, ((moved(date(2026, 12, 5)), 24),))]
    assert levels[0].sku == "KET-BLUE" and levels[0].product_name == "Blue kettle"
    reads = fake.object_calls("product.product", "read")
    assert [c.kwargs["context"] for c in reads] == [{"location": 8}, {"location": 18}]


async def test_variant_by_text(backend):
    levels = await backend.stock(ProductRef(text="Do you have the X200 in blue?"))
    assert [(lv.sku, lv.location, lv.available) for lv in levels] == [
        ("X200-BLU", "Leeds DC", 12), ("X200-BLU", "Rotterdam DC", 3)]
    assert levels[0].product_name == "X200 headphones (Blue)"
    all_x200 = await backend.stock(ProductRef(text="x200"))
    assert sorted({lv.sku for lv in all_x200}) == ["X200-BLK", "X200-BLU", "X200-WHT"]


async def test_only_chosen_warehouses(fake):
    b = OdooBackend(_settings(fake, warehouses=["RTM"]), timeout_seconds=2)
    levels = await b.stock(ProductRef(sku="X200-BLK"))
    assert [(lv.location, lv.available, lv.incoming) for lv in levels] == [("Rotterdam DC", 0, ())]
    await b.close()


@pytest.mark.parametrize("product", [ProductRef(sku="NOPE"), ProductRef(text="unicorn saddle"),
                                     ProductRef(text="retro kettle"), ProductRef(text="shipping box")])
async def test_unknown_product(backend, product):
    with pytest.raises(UnknownProduct):
        await backend.stock(product)


async def test_catalogue(backend):
    catalogue = await backend.products()
    assert [(p.sku, p.name, p.variant) for p in catalogue] == [
        ("CHG-65W", "USB-C charger 65 W", None), ("KET-BLUE", "Blue kettle", None),
        ("KET-STEEL", "Steel kettle", None), ("X200-BLK", "X200 headphones", "Black"),
        ("X200-BLU", "X200 headphones", "Blue"), ("X200-WHT", "X200 headphones", "White")]


# --- escalation and demand ---------------------------------------------------------------------

def _case(case_id="esc-31") -> EscalationCase:
    return EscalationCase(case_id=case_id, conversation_id=31, reason="late_order_key_customer",
                          summary="Key customer: order S01001 is late", priority="urgent",
                          customer=CustomerRef(customer_id=1, name="Ana Silva", emails=("ana.silva@example.com",)),
                          order_refs=("S01001",), facts={"promised": "2026-11-16"}, url="http://hub/c/31")


async def test_escalate_creates_one_ticket(backend, fake):
    first = await backend.escalate(_case())
    again = await backend.escalate(_case())
    assert first == again and first.reference == "#13"
    assert first.url == f"{fake.url}/web#id=13&model=helpdesk.ticket&view_type=form"
    created = [t for t in fake.records["helpdesk.ticket"] if t["id"] == 13]
    assert len(created) == 1
    ticket = created[0]
    assert ticket["name"].endswith("[hub case esc-31]") and ticket["priority"] == "3" and ticket["team_id"] == 1
    assert ticket["partner_email"] == "ana.silva@example.com" and "S01001" in ticket["description"]


async def test_helpdesk_not_installed(backend, fake):
    fake.helpdesk_installed = False
    with pytest.raises(BackendUnavailable, match="KeyError.*is the app installed"):
        await backend.escalate(_case())


async def test_webhook_escalation_and_no_demand(fake):
    b = OdooBackend(_settings(fake), timeout_seconds=2)
    with pytest.raises(EscalationNotSupported):
        await b.escalate(_case())
    await b.record_demand(DemandSignal(clock.today(), "KET-BLUE", 2, 2))
    assert fake.calls == []
    await b.close()


# --- failures ----------------------------------------------------------------------------------

async def test_refused_login(fake):
    b = OdooBackend(_settings(fake, password="wrong"), timeout_seconds=2)
    with pytest.raises(BackendUnavailable, match="refused the login"):
        await b.order_status("S01001")
    await b.close()


async def test_wrong_database(fake):
    b = OdooBackend(_settings(fake, database="nope"), timeout_seconds=2)
    with pytest.raises(BackendUnavailable, match='database "nope" does not exist'):
        await b.products()
    await b.close()


async def test_access_denied_logs_in_again(backend, fake):
    await backend.order_status("S01001")
    fake.rpc_error("odoo.exceptions.AccessDenied", "Access Denied")
    with pytest.raises(BackendUnavailable, match="AccessDenied"):
        await backend.order_status("S01001")
    await backend.order_status("S01001")
    assert [c.method for c in fake.calls if c.service == "common"] == ["authenticate", "authenticate"]


async def test_access_error_on_a_model(backend, fake):
    fake.rpc_error("odoo.exceptions.AccessError",
                   "You are not allowed to access 'Warehouse' (stock.warehouse) records.")
    with pytest.raises(BackendUnavailable, match="AccessError: You are not allowed"):
        await backend.stock(ProductRef(sku="KET-BLUE"))


async def test_proxy_error_with_retry_after(backend, fake):
    fake.fail(503, retry_after="45")
    with pytest.raises(BackendUnavailable, match="HTTP 503") as caught:
        await backend.order_status("S01001")
    assert caught.value.retry_after == 45


async def test_timeout_breaker_and_recovery(fake, tmp_path):
    settings = BackendSettings.model_validate({
        "kind": "odoo", "timeout_seconds": 0.3, "breaker_failures": 2, "breaker_reset_seconds": 0.2,
        "odoo": {"url": fake.url, "database": DATABASE, "username": LOGIN, "password": PASSWORD}})
    backend = build_backend(settings, data_dir=tmp_path)
    fake.delay = 1.0
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await backend.products()
    sent = len(fake.calls)
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await backend.products()
    assert len(fake.calls) == sent
    fake.delay = 0
    await asyncio.sleep(0.25)
    assert len(await backend.products()) == 6
    assert backend.state == "closed"
    await backend.close()


async def test_down(fake):
    b = OdooBackend(_settings(fake), timeout_seconds=2)
    await fake.stop()
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        await b.order_status("S01001")
    await b.close()


def test_registry_needs_url_and_database(tmp_path):
    with pytest.raises(BackendMisconfigured, match="ODOO__URL"):
        build_backend(BackendSettings(kind="odoo"), data_dir=tmp_path)
    with pytest.raises(BackendMisconfigured, match="ODOO__DATABASE"):
        build_backend(BackendSettings.model_validate({"kind": "odoo", "odoo": {"url": "http://erp"}}), data_dir=tmp_path)


# --- a customer's orders -------------------------------------------------------------------------

async def test_customer_orders_by_partner_email(backend, fake):
    ana = await backend.customer_orders(CustomerRef(emails=("ANA.SILVA@example.com",)))
    # S00998 is a quotation (state "sent"): returned as pending, the hub decides it does not count.
    assert [(o.ref, o.placed_on, o.total, o.currency, o.state) for o in ana] == [
        ("S01001", moved(date(2026, 11, 10)), 164.0, "GBP", "confirmed"), ("S00998", moved(date(2026, 11, 22)), 49.0, "GBP", "pending")]
    chloe = await backend.customer_orders(CustomerRef(emails=("chloe.martin@example.com",)),
                                          since=moved(date(2026, 11, 1)))
    assert [o.ref for o in chloe] == ["S04711"]
    ben = await backend.customer_orders(CustomerRef(emails=("ben.okafor@example.com",)))
    assert {o.ref: o.state for o in ben} == {"S04720": "confirmed", "S04650": "cancelled"}
    partners = fake.object_calls("res.partner", "search_read")[-1]
    assert partners.args[-2] == [[["email", "=ilike", "ben.okafor@example.com"]]]


async def test_customer_orders_match_the_address_exactly_not_as_a_pattern(backend, fake):
    # In ILIKE, _ and % are wildcards: ana_silva@ and ana%@ must not find ana.silva@'s orders.
    for address in ("ana_silva@example.com", "ana%@example.com", "%@example.com", "ana.silv_@example.com"):
        assert await backend.customer_orders(CustomerRef(emails=(address,))) == [], address
    partners = fake.object_calls("res.partner", "search_read")[-1]
    assert partners.args[-2] == [[["email", "=ilike", "ana.silv\\_@example.com"]]]
    assert [o.ref for o in await backend.customer_orders(CustomerRef(emails=("ana.silva@example.com",)))] == ["S01001", "S00998"]


async def test_customer_orders_nobody(backend, fake):
    assert await backend.customer_orders(CustomerRef(emails=("nobody@example.com",))) == []
    assert await backend.customer_orders(CustomerRef()) == []


async def test_customer_orders_server_down(backend, fake):
    fake.fail(502)
    with pytest.raises(BackendUnavailable):
        await backend.customer_orders(CustomerRef(emails=("ana.silva@example.com",)))
