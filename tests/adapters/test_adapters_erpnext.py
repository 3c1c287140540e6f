"""The ERPNext back end against tests/support/fake_erpnext.py (Frappe REST API v1 shapes)."""

from __future__ import annotations

import asyncio
import json
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
from adapters.config import BackendSettings, ErpnextSettings
from adapters.erpnext import ErpnextBackend
from adapters.registry import BackendMisconfigured, build_backend
from hub.contract import clock
from tests.support.dates import moved, moved_text
from tests.support.fake_erpnext import API_KEY, API_SECRET, TOKEN, FakeErpnext


@pytest.fixture
async def fake(frozen_clock):
    server = FakeErpnext()
    server.url = await server.start()
    yield server
    await server.stop()


def _settings(fake, **extra) -> ErpnextSettings:
    return ErpnextSettings.model_validate({"url": fake.url, "api_key": API_KEY, "api_secret": API_SECRET, **extra})


@pytest.fixture
async def backend(fake):
    b = ErpnextBackend(_settings(fake), phone_region="GB", timeout_seconds=2)
    yield b
    await b.close()


# --- orders ------------------------------------------------------------------------------------

async def test_shipped_late_order(backend, fake):
    order = await backend.order_status("sal-ord-2026-01001")
    assert order.ref == "SAL-ORD-2026-01001"
    assert (order.state, order.backend_state) == ("shipped", "To Bill")
    assert (order.carrier, order.tracking_number, order.tracking_url) == ("UPS", "1Z999AA10123456784", None)
    assert order.promised_date == moved(date(2026, 11, 16)) and order.expected_date == moved(date(2026, 11, 25)) and order.late
    assert order.shipped_at == moved(datetime(2026, 11, 14, 16, tzinfo=UTC))
    assert [(li.sku, li.name, li.quantity, li.shipped_quantity) for li in order.lines] == [
        ("X200-BLU", "X200 headphones", 1, 1), ("CHG-65W", "USB-C charger 65 W", 1, 1)]
    assert order.owner_email == "ana.silva@example.com" and order.owner_phone == "+351912345678"
    assert order.total == 164.0 and order.currency == "GBP"
    assert all(r.headers["Authorization"] == TOKEN for r in fake.requests)
    # Delivery notes are found through their lines' against_sales_order (a child-table filter).
    dn = fake.seen("Delivery Note")[0]
    assert json.loads(dn.query["filters"])[0] == ["Delivery Note Item", "against_sales_order", "=", "SAL-ORD-2026-01001"]
    assert not fake.seen("Customer")  # the order has its own contact


async def test_delivered_order_with_shipment_and_customer_contact(backend, fake):
    order = await backend.order_status("2026-04711")
    assert order.ref == "SAL-ORD-2026-04711"
    assert (order.state, order.backend_state) == ("delivered", "Completed")
    # The Shipment (carrier integration) beats the delivery note's transporter name.
    assert (order.carrier, order.tracking_number) == ("DHL", "00340434161094042557")
    assert order.tracking_url.endswith("tracking-id=00340434161094042557")
    # No contact on the order: the Customer's email and mobile ("020 7946 0958", read as GB).
    assert order.owner_email == "chloe.martin@example.com" and order.owner_phone == "+442079460958"
    assert belongs_to(order, CustomerRef(phones=("+442079460958",)))
    assert fake.seen("Customer")


async def test_confirmed_and_on_hold(backend):
    bens = await backend.order_status("SAL-ORD-2026-04720")
    assert bens.state == "confirmed" and bens.carrier is None  # the draft delivery note does not count
    assert not belongs_to(bens, CustomerRef(customer_id=3, name="Ben Okafor"))
    held = await backend.order_status("SAL-ORD-2026-04730")
    assert held.state == "on_hold" and held.late and held.owner_phone == "+4930901820"


async def test_number_alone_must_be_unambiguous(backend):
    # SAL-ORD-2025-04711 (cancelled) and SAL-ORD-2026-04711 both end in 4711.
    with pytest.raises(UnknownOrder, match="full number"):
        await backend.order_status("4711")
    assert (await backend.order_status("#1001")).ref == "SAL-ORD-2026-01001"
    assert (await backend.order_status("SAL-ORD-2025-04711")).state == "cancelled"


@pytest.mark.parametrize("ref", ["SAL-ORD-2026-09999", "A1001", "12", "", "%", "SAL-ORD-2026-0100_"])
async def test_unknown_order(backend, ref):
    with pytest.raises(UnknownOrder):
        await backend.order_status(ref)


# --- stock and catalogue -----------------------------------------------------------------------

async def test_stock_per_warehouse_with_incoming(fake):
    b = ErpnextBackend(_settings(fake, warehouses=["Leeds DC - SH", "Rotterdam DC - SH"]), timeout_seconds=2)
    levels = await b.stock(ProductRef(sku="KET-BLUE"))
    assert [(lv.location, lv.on_hand, lv.available) for lv in levels] == [
        ("Leeds DC - SH", 2, 0), ("Rotterdam DC - SH", 0, 0)]
    # Open purchase orders only: the closed PUR-ORD-2026-00020 still has 10 unreceived.
    assert levels[0].incoming == ((moved(date(2026, 11, 29)), 40),)
    assert levels[1].incoming == ((moved(date(2026, 12, 5)), 24),)
    assert levels[0].product_name == "Blue kettle"
    po_items = [r for r in fake.requests if r.path == "/api/resource/Purchase Order Item"]
    assert po_items and all(r.query["parent"] == "Purchase Order" for r in po_items)
    await b.close()


async def test_all_warehouses_by_default(backend):
    levels = await backend.stock(ProductRef(sku="KET-BLUE"))
    assert [lv.location for lv in levels] == ["Leeds DC - SH", "Rotterdam DC - SH", "Work In Progress - SH"]


async def test_variant_by_text(backend):
    levels = await backend.stock(ProductRef(text="Do you have the X200 in black?"))
    assert [(lv.sku, lv.product_name, lv.available) for lv in levels] == [("X200-BLK", "X200 headphones (Black)", 0)]
    assert levels[0].incoming == ((moved(date(2026, 11, 27)), 30),)


async def test_template_sku_means_its_variants(backend):
    levels = await backend.stock(ProductRef(sku="X200"))
    assert sorted({lv.sku for lv in levels}) == ["X200-BLK", "X200-BLU", "X200-WHT"]
    assert {lv.sku: lv.available for lv in levels if lv.location == "Leeds DC - SH"} == {
        "X200-BLK": 0, "X200-BLU": 12, "X200-WHT": 5}


async def test_text_matching_an_attribute_value(backend):
    levels = await backend.stock(ProductRef(text="white", variant=None))
    assert {lv.sku for lv in levels} == {"X200-WHT"}


@pytest.mark.parametrize("product", [ProductRef(sku="NOPE-1"), ProductRef(text="unicorn saddle"),
                                     ProductRef(sku="KET-RETRO"), ProductRef(text="retro kettle")])
async def test_unknown_product(backend, product):
    with pytest.raises(UnknownProduct):
        await backend.stock(product)


async def test_catalogue(backend):
    catalogue = await backend.products()
    assert [(p.sku, p.name, p.variant) for p in catalogue] == [
        ("KET-BLUE", "Blue kettle", None), ("KET-STEEL", "Steel kettle", None),
        ("X200-BLK", "X200 headphones", "Black"), ("X200-BLU", "X200 headphones", "Blue"),
        ("X200-WHT", "X200 headphones", "White")]
    assert catalogue[2].aliases == ("X200",)


# --- escalation and demand ---------------------------------------------------------------------

def _case(case_id="esc-21", priority="high") -> EscalationCase:
    return EscalationCase(case_id=case_id, conversation_id=21, reason="late_order_key_customer",
                          summary="Key customer Ana Silva: order SAL-ORD-2026-01001 is late", priority=priority,
                          customer=CustomerRef(customer_id=1, name="Ana Silva", emails=("ana.silva@example.com",)),
                          order_refs=("SAL-ORD-2026-01001",), facts={"expected": "2026-11-25", "note": "<b>x</b>"},
                          url="http://hub.example/conversations/21")


async def test_escalate_creates_an_issue_once(backend, fake):
    first = await backend.escalate(_case())
    again = await backend.escalate(_case())
    assert first == again and first.reference == "ISS-2026-00008"
    assert first.url == f"{fake.url}/app/issue/ISS-2026-00008"
    created = [i for i in fake.docs["Issue"] if i["name"] == "ISS-2026-00008"]
    assert len(created) == 1 and len(fake.docs["Issue"]) == 2
    issue = created[0]
    assert issue["subject"].endswith("[hub case esc-21]") and issue["priority"] == "High"
    assert issue["raised_by"] == "ana.silva@example.com"
    assert "&lt;b&gt;x&lt;/b&gt;" in issue["description"]  # facts are escaped in the HTML field
    assert 'href="http://hub.example/conversations/21"' in issue["description"]


async def test_issue_validation_error_is_reported(fake):
    b = ErpnextBackend(_settings(fake, issue_priority={"urgent": "Urgent"}), timeout_seconds=2)
    with pytest.raises(BackendUnavailable, match="LinkValidationError Could not find Priority: Urgent"):
        await b.escalate(_case(priority="urgent"))
    await b.close()


async def test_escalation_by_webhook_and_no_demand(fake):
    b = ErpnextBackend(_settings(fake, escalation="webhook"), timeout_seconds=2)
    with pytest.raises(EscalationNotSupported):
        await b.escalate(_case())
    await b.record_demand(DemandSignal(clock.today(), "KET-BLUE", 4, 4))
    assert fake.requests == []
    await b.close()


# --- failures ----------------------------------------------------------------------------------

async def test_wrong_api_key(fake):
    b = ErpnextBackend(_settings(fake, api_secret="wrong"), timeout_seconds=2)
    with pytest.raises(BackendUnavailable, match="refused our credentials .*AuthenticationError Invalid API key"):
        await b.order_status("SAL-ORD-2026-01001")
    await b.close()


async def test_permission_error(backend, fake):
    fake.forbidden.add("Bin")
    with pytest.raises(BackendUnavailable, match="PermissionError Insufficient Permission for Bin"):
        await backend.stock(ProductRef(sku="KET-BLUE"))


async def test_gateway_error_with_retry_after(backend, fake):
    fake.fail(503, retry_after="30", text="<html>upstream down</html>")
    with pytest.raises(BackendUnavailable, match="HTTP 503") as caught:
        await backend.products()
    assert caught.value.retry_after == 30


async def test_timeout_and_breaker(fake, tmp_path):
    settings = BackendSettings.model_validate({
        "kind": "erpnext", "timeout_seconds": 0.3, "breaker_failures": 2, "breaker_reset_seconds": 0.2,
        "erpnext": {"url": fake.url, "api_key": API_KEY, "api_secret": API_SECRET}})
    backend = build_backend(settings, data_dir=tmp_path)
    fake.delay = 1.0
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await backend.order_status("SAL-ORD-2026-01001")
    assert backend.state == "opened"
    sent = len(fake.requests)
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await backend.order_status("SAL-ORD-2026-01001")
    assert len(fake.requests) == sent
    fake.delay = 0
    await asyncio.sleep(0.25)
    assert (await backend.order_status("SAL-ORD-2026-01001")).state == "shipped"
    assert backend.state == "closed"
    await backend.close()


async def test_down(fake):
    b = ErpnextBackend(_settings(fake), timeout_seconds=2)
    await fake.stop()
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        await b.order_status("SAL-ORD-2026-01001")
    await b.close()


def test_registry_needs_a_url(tmp_path):
    with pytest.raises(BackendMisconfigured, match="ERPNEXT__URL"):
        build_backend(BackendSettings(kind="erpnext"), data_dir=tmp_path)


# --- a customer's orders -------------------------------------------------------------------------

async def test_customer_orders_by_contact_email_and_by_customer(backend, fake):
    ana = await backend.customer_orders(CustomerRef(emails=("Ana.Silva@example.com",)))
    assert [(o.ref, o.placed_on, o.total, o.currency, o.state) for o in ana] == [
        ("SAL-ORD-2026-01001", moved(date(2026, 11, 10)), 164.0, "GBP", "shipped")]
    # SAL-ORD-2026-04711 has no contact of its own: it is Chloé's through its Customer link.
    chloe = await backend.customer_orders(CustomerRef(emails=("chloe.martin@example.com",)))
    assert [o.ref for o in chloe] == ["SAL-ORD-2026-04711"]
    listed = fake.seen("Sales Order")[-1]
    assert json.loads(listed.query["filters"]) == [["docstatus", "=", 1]]
    assert ["customer", "in", ["Chloé Martin"]] in json.loads(listed.query["or_filters"])


async def test_customer_orders_skip_cancelled_and_honour_since(backend, fake):
    # Grace's only order was cancelled (docstatus 2): not an order to value.
    assert await backend.customer_orders(CustomerRef(emails=("grace.lee@example.com",))) == []
    ana = CustomerRef(emails=("ana.silva@example.com",))
    assert await backend.customer_orders(ana, since=moved(date(2026, 11, 11))) == []
    assert ["transaction_date", ">=", moved_text("2026-11-11")] in json.loads(fake.seen("Sales Order")[-1].query["filters"])
    assert await backend.customer_orders(CustomerRef()) == []


async def test_customer_orders_server_down(backend, fake):
    fake.fail(502)
    with pytest.raises(BackendUnavailable):
        await backend.customer_orders(CustomerRef(emails=("ana.silva@example.com",)))


async def test_wildcards_in_a_customers_words_match_themselves_only(backend, fake):
    """A _ in a product word is a LIKE wildcard to MariaDB: unescaped, "x_200" also matched a
    hundred "x1200" cables, which filled the page of 100 and hid the one item called x_200."""
    def item(code: str, name: str) -> dict:
        return {"name": code, "item_code": code, "item_name": name, "item_group": "Cables", "description": name,
                "has_variants": 0, "variant_of": None, "disabled": 0, "is_stock_item": 1, "is_sales_item": 1,
                "stock_uom": "Nos", "doctype": "Item", "attributes": []}

    fake.docs["Item"] += [item(f"CAB-{i:03}", f"Cable x{i % 10}200 ({i})") for i in range(120)]
    fake.docs["Item"].append(item("ADP-X_200", "Adapter x_200"))
    fake.docs["Bin"].append({"name": "BIN-X_200", "item_code": "ADP-X_200", "warehouse": "Leeds DC - SH", "actual_qty": 3.0,
                             "reserved_qty": 0.0, "ordered_qty": 0.0, "indented_qty": 0.0, "planned_qty": 0.0,
                             "projected_qty": 3.0, "stock_uom": "Nos", "doctype": "Bin"})
    levels = await backend.stock(ProductRef(text="x_200"))
    assert {lv.sku for lv in levels} == {"ADP-X_200"}
    sent = [json.loads(r.query["or_filters"]) for r in fake.requests if r.path == "/api/resource/Item" and "or_filters" in r.query]
    assert sent and all(f[2] == "%x\\_200%" for f in sent[0])
