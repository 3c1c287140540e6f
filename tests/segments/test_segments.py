"""Customer value and segments on SQLite and PostgreSQL: order figures from a real back end (the
SQL back end over the demo SCM database, the HTTP back end against its stand-in server),
thresholds, a manual segment that survives recomputation, a back end that is down keeping the
previous figures, the segment filter on the REST API, and the CLI."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from adapters.base import OrderSummary
from adapters.config import HttpSettings, SqlSettings
from adapters.demo_scm import seed_demo_database
from adapters.guard import GuardedBackend
from adapters.http import HttpBackend
from adapters.sql import SqlBackend
from hub.auth.accounts import create_agent
from hub.config.settings import SegmentSettings
from hub.contract.messages import InboundMessage, Sender
from hub.conversations.listing import ConversationFilter, list_conversations
from hub.ingest.pipeline import ingest
from hub.segments import value as segments
from hub.segments.value import mark_key_customer
from hub.store.db import read_tx, write_tx
from hub.store.models import AuditLog, Customer, CustomerValue
from hub.web.app import create_app
from hub.web.keys import ENGINE
from tests.support.fake_scm_http import TOKEN, FakeScmHttp

customer_t = Customer.__table__
value_t = CustomerValue.__table__


def _msg(channel: str, external_id: str, address: str, name: str, text: str = "Hello") -> InboundMessage:
    return InboundMessage(channel, external_id, Sender(address, name), text, subject=text[:40])


def _demo_customers(engine) -> dict[str, int]:
    """The demo's customers, as they write in: Ana and Ben by email, Chloé by phone, Dmitri by form."""
    return {
        "ana": ingest(engine, _msg("email", "<a1@x>", "ana.silva@example.com", "Ana Silva")).customer_id,
        "ben": ingest(engine, _msg("email", "<b1@x>", "ben.okafor@example.com", "Ben Okafor")).customer_id,
        "chloe": ingest(engine, _msg("voice", "call-1", "+44 20 7946 0958", "Chloé Martin")).customer_id,
        "dmitri": ingest(engine, _msg("webform", "form-1", "dmitri@example.org", "Dmitri Volkov")).customer_id,
    }


@pytest.fixture
async def demo_backend(tmp_path):
    url = f"sqlite:///{tmp_path / 'scm-demo.db'}"
    seed_demo_database(url)
    backend = GuardedBackend(SqlBackend(SqlSettings(), url=url), timeout_seconds=5)
    yield backend
    await backend.close()


@pytest.fixture
async def fake_http():
    server = FakeScmHttp()
    server.url = await server.start()
    yield server
    await server.stop()


def _http_backend(fake, **extra) -> GuardedBackend:
    settings = HttpSettings.model_validate({"base_url": fake.url, "auth_value": TOKEN, **extra})
    # A breaker that never opens here: each test says when the server fails.
    return GuardedBackend(HttpBackend(settings, timeout_seconds=2), timeout_seconds=2, breaker_failures=100)


def _segment(engine, customer_id: int) -> tuple[str, bool]:
    with read_tx(engine) as conn:
        row = conn.execute(select(customer_t.c.segment, customer_t.c.segment_locked)
                           .where(customer_t.c.id == customer_id)).one()
    return row.segment, row.segment_locked


def _value(engine, customer_id: int):
    with read_tx(engine) as conn:
        return conn.execute(select(value_t).where(value_t.c.customer_id == customer_id)).first()


# --- the rules -----------------------------------------------------------------------------------

def test_thresholds_and_what_counts():
    s = SegmentSettings(currency="GBP", exchange_rates={"EUR": 0.5})
    day = date(2026, 11, 1)
    orders = [
        OrderSummary("1", day, 1000.0, "GBP", "delivered"),
        OrderSummary("2", day, 1000.0, "EUR", "shipped"),     # 500 at the rate
        OrderSummary("3", day, 900.0, "USD", "confirmed"),    # no rate: counts as an order, not value
        OrderSummary("4", day, 5000.0, "GBP", "cancelled"),   # not an order any more
        OrderSummary("5", day, 5000.0, None, "pending"),      # a quotation
        OrderSummary("6", day, 100.0, None, "delivered"),     # no currency: the home one
    ]
    assert segments.order_figures(orders, s) == (1600.0, 4)
    classify = lambda v, n, c=0: segments.classify(segments.Figures(v, n, c, 0), s).value  # noqa: E731
    assert classify(2000, 0) == "key" and classify(0, 12) == "key"
    assert classify(1999.99, 11) == "potential"
    assert classify(300, 0) == "potential" and classify(0, 3) == "potential" and classify(0, 0, 5) == "potential"
    assert classify(299.99, 2, 4) == "general"


# --- recomputation with a back end ---------------------------------------------------------------

async def test_demo_customers_get_their_segments(engine, demo_backend):
    ids = _demo_customers(engine)
    run = await segments.recompute_due(engine, demo_backend, SegmentSettings())
    assert run.computed == 4 and run.stale == 0
    assert _segment(engine, ids["ana"]) == ("key", False)         # 2366 GBP in five orders
    assert _segment(engine, ids["chloe"]) == ("potential", False)  # three orders, found by her phone
    assert _segment(engine, ids["ben"]) == ("general", False)
    assert _segment(engine, ids["dmitri"]) == ("general", False)
    ana = _value(engine, ids["ana"])
    assert (ana.order_value, ana.order_count, ana.currency, ana.source) == (2366.0, 5, "GBP", "scm")
    assert (ana.contacts, ana.messages, ana.error) == (1, 1, None) and ana.orders_as_of is not None
    # Nothing is due any more until the figures go stale.
    assert segments.due_customers(engine) == []
    # A shorter window leaves Ana's older orders out: three orders, 378 GBP.
    out = await segments.recompute_customer(engine, demo_backend, SegmentSettings(window_days=80), ids["ana"])
    assert (out["order_value"], out["order_count"], out["segment"]) == (378.0, 3, "potential")


async def test_contact_history_alone_makes_a_potential_customer(engine):
    # Five web-form questions: five conversations.
    cids = {ingest(engine, _msg("webform", f"form-{n}", "writer@example.net", "Frequent Writer", f"question {n}")).customer_id
            for n in range(5)}
    (cid,) = cids
    out = await segments.recompute_customer(engine, None, SegmentSettings(), cid)
    assert (out["source"], out["contacts"], out["messages"]) == ("contacts", 5, 5)
    assert _segment(engine, cid) == ("potential", False)
    # Fewer contacts needed than that: general.
    out = await segments.recompute_customer(engine, None, SegmentSettings(potential_contacts=50), cid)
    assert out["segment"] == "general"


async def test_backend_without_the_call_values_contacts_only(engine, fake_http):
    ids = _demo_customers(engine)
    backend = _http_backend(fake_http, customer_orders_url=None)
    try:
        out = await segments.recompute_customer(engine, backend, SegmentSettings(), ids["ana"])
    finally:
        await backend.close()
    assert (out["source"], out["order_count"], out["segment"]) == ("contacts", 0, "general")


async def test_manual_segment_survives_recomputation(engine, demo_backend):
    ids = _demo_customers(engine)
    s = SegmentSettings()
    out = segments.set_manual_segment(engine, ids["ben"], "key", "admin:1")
    assert (out["segment"], out["segment_locked"]) == ("key", True)
    await segments.recompute_customer(engine, demo_backend, s, ids["ben"])
    assert _segment(engine, ids["ben"]) == ("key", True)
    assert _value(engine, ids["ben"]).order_count == 1  # the figures are still brought up to date
    # The demo's key-customer rule locks too, whatever the orders say.
    assert mark_key_customer(engine, "email", "dmitri@example.org") == ids["dmitri"]
    await segments.recompute_customer(engine, demo_backend, s, ids["dmitri"])
    assert _segment(engine, ids["dmitri"]) == ("key", True)
    # Handed back to the computation: general again, and due at once.
    segments.set_manual_segment(engine, ids["ben"], None, "admin:1")
    assert ids["ben"] in segments.due_customers(engine)
    await segments.recompute_due(engine, demo_backend, s)
    assert _segment(engine, ids["ben"]) == ("general", False)
    with read_tx(engine) as conn:
        logged = conn.execute(select(AuditLog.__table__.c.actor, AuditLog.__table__.c.detail)
                              .where(AuditLog.__table__.c.action == "customer.segment")
                              .order_by(AuditLog.__table__.c.id)).all()
    assert [(r.actor, r.detail["segment"]) for r in logged] == [("admin:1", "key"), ("system", "key"), ("admin:1", "computed")]
    with pytest.raises(Exception, match="segment must be one of"):
        segments.set_manual_segment(engine, ids["ben"], "vip", "admin:1")


async def test_backend_down_keeps_the_previous_figures(engine, fake_http):
    ana = ingest(engine, _msg("email", "<a1@x>", "ana.silva@example.com", "Ana Silva")).customer_id
    ben = ingest(engine, _msg("email", "<b1@x>", "ben.okafor@example.com", "Ben Okafor")).customer_id
    s = SegmentSettings(potential_value=100)  # Ana's one order in the stand-in (164 GBP) makes her potential
    backend = _http_backend(fake_http)
    try:
        first = await segments.recompute_customer(engine, backend, s, ana)
        assert (first["order_value"], first["order_count"], first["segment"], first["source"]) == (164.0, 1, "potential", "scm")
        # Ben was never computed, and has been set potential some other way before.
        with write_tx(engine) as conn:
            conn.execute(update(customer_t).where(customer_t.c.id == ben).values(segment="potential"))
        segments.request_recompute(engine)
        fake_http.fail(503, times=50)
        run = await segments.recompute_due(engine, backend, s)
        # The first customer the back end failed for ends the run; the others stay due.
        assert (run.computed, run.stale) == (1, 1)
        await segments.recompute_customer(engine, backend, s, ana)
        await segments.recompute_customer(engine, backend, s, ben)
    finally:
        await backend.close()
    kept = _value(engine, ana)
    assert (kept.order_value, kept.order_count, kept.source) == (164.0, 1, "stale")
    assert "503" in kept.error and kept.orders_as_of is not None
    assert kept.due_at < kept.computed_at + timedelta(hours=1)  # retried at the next interval, not in a day
    assert _segment(engine, ana) == ("potential", False)
    # Nothing was ever known of Ben's orders: his segment is not judged on a back end that is down.
    assert _segment(engine, ben) == ("potential", False) and _value(engine, ben).source == "stale"


# --- filterable everywhere --------------------------------------------------------------------------

async def test_conversation_list_filters_by_segment(engine):
    ids = _demo_customers(engine)
    segments.set_manual_segment(engine, ids["chloe"], "potential", "admin:1")
    page = list_conversations(engine, ConversationFilter(segment="potential"))
    assert {c["customer"]["id"] for c in page["items"]} == {ids["chloe"]}
    assert len(list_conversations(engine, ConversationFilter(segment="general"))["items"]) == 3
    with pytest.raises(Exception, match="segment must be one of"):
        list_conversations(engine, ConversationFilter(segment="vip"))


def test_a_text_search_keeps_to_the_segment(engine):
    ids = _demo_customers(engine)
    segments.set_manual_segment(engine, ids["chloe"], "potential", "admin:1")

    def customers(**kw):
        return {c["customer"]["id"] for c in list_conversations(engine, ConversationFilter(**kw))["items"]}

    assert customers(q="martin", segment="potential") == {ids["chloe"]}
    assert customers(q="martin", segment="general") == set()
    assert customers(q="example", segment="general") == {ids["ana"], ids["ben"], ids["dmitri"]}
    assert customers(q="example", segment="potential") == set()


async def test_rest_api(settings):
    app = create_app(settings.model_copy(update={"segments": SegmentSettings(interval_seconds=3600)}))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        engine = app[ENGINE]
        create_agent(engine, "admin@example.com", "admin password", role="admin")
        create_agent(engine, "agent@example.com", "agent password", role="agent")
        tokens = {}
        for who in ("admin", "agent"):
            resp = await client.post("/api/v1/auth/login", json={"email": f"{who}@example.com", "password": f"{who} password"})
            tokens[who] = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        client.session.cookie_jar.clear()
        ids = _demo_customers(engine)
        admin, agent = tokens["admin"], tokens["agent"]

        # One customer now, from the demo SCM database the hub seeded in its data dir.
        resp = await client.post("/api/v1/segments/recompute", json={"customer_id": ids["ana"]}, headers=admin)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert (body["segment"], body["value"]["order_count"], body["value"]["source"]) == ("key", 5, "scm")
        # Everyone, by the worker.
        resp = await client.post("/api/v1/segments/recompute", json={}, headers=admin)
        assert resp.status == 202 and (await resp.json())["due"] == 4
        assert (await client.post("/api/v1/segments/recompute", json={}, headers=agent)).status == 403
        resp = await client.post("/api/v1/segments/recompute", json={"customer_id": 999999}, headers=admin)
        assert resp.status == 404

        resp = await client.put(f"/api/v1/customers/{ids['ben']}/segment", json={"segment": "key"}, headers=admin)
        assert resp.status == 200 and (await resp.json())["segment_locked"] is True
        assert (await client.put(f"/api/v1/customers/{ids['ben']}/segment", json={"segment": "vip"}, headers=admin)).status == 422
        assert (await client.put(f"/api/v1/customers/{ids['ben']}/segment", json={"segment": None}, headers=agent)).status == 403

        resp = await client.get("/api/v1/conversations", params={"segment": "key"}, headers=agent)
        assert {c["customer"]["id"] for c in (await resp.json())["items"]} == {ids["ana"], ids["ben"]}
        assert (await client.get("/api/v1/conversations", params={"segment": "vip"}, headers=agent)).status == 422

        resp = await client.get("/api/v1/customers", params={"segment": "key", "limit": 1}, headers=agent)
        first = await resp.json()
        resp = await client.get("/api/v1/customers", params={"segment": "key", "cursor": first["next_cursor"]}, headers=agent)
        listed = first["items"] + (await resp.json())["items"]
        assert {c["id"] for c in listed} == {ids["ana"], ids["ben"]}
        # A text in a name or an address, as the inbox search finds it; with the segment too.
        resp = await client.get("/api/v1/customers", params={"q": "MARTIN"}, headers=agent)
        assert [c["id"] for c in (await resp.json())["items"]] == [ids["chloe"]]
        resp = await client.get("/api/v1/customers", params={"q": "example.com", "segment": "key"}, headers=agent)
        assert {c["id"] for c in (await resp.json())["items"]} == {ids["ana"], ids["ben"]}
        assert (await client.get("/api/v1/customers", params={"q": "nul\u0000"}, headers=agent)).status == 400

        resp = await client.get(f"/api/v1/customers/{ids['ana']}", headers=agent)
        detail = await resp.json()
        assert detail["segment"] == "key" and detail["value"]["order_value"] == 2366.0
    finally:
        await client.close()


# --- the CLI -----------------------------------------------------------------------------------------

def test_cli_recompute(settings, engine, monkeypatch, capsys):
    from hub.cli.main import main

    monkeypatch.setenv("SERVICEHUB_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("SERVICEHUB_DATA_DIR", str(settings.data_dir))
    ids = _demo_customers(engine)
    assert main(["segments", "recompute"]) == 0
    assert "4 customers recomputed" in capsys.readouterr().out
    assert _segment(engine, ids["ana"])[0] == "key" and _segment(engine, ids["chloe"])[0] == "potential"
    assert main(["segments", "recompute", "--customer", str(ids["chloe"])]) == 0
    assert '"order_count": 3' in capsys.readouterr().out
    assert main(["segments", "recompute", "--customer", "999999"]) == 2
