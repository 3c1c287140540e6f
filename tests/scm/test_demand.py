"""Demand flowing back, on SQLite and PostgreSQL: stock questions counted per product and day, the
unmet-demand listing as JSON and CSV through the API, and the daily push to the back end's
record_demand() (the real sql back end and its demo SCM database), retried when it is down."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from adapters.config import SqlSettings
from adapters.demo_scm import seed_demo_scm
from adapters.sql import SqlBackend
from hub.auth.accounts import create_agent, create_token
from hub.config.settings import ScmSettings
from hub.contract import clock
from hub.scm import demand
from hub.store.db import make_engine, read_tx, write_tx
from hub.store.models import DemandCount, utcnow
from hub.web.app import create_app

demand_t = DemandCount.__table__
TODAY = utcnow().date()
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture(autouse=True)
def on_today():
    """Every test runs at noon of TODAY, even one that starts after midnight."""
    with clock.use(clock.FixedClock(datetime.combine(TODAY, time(12), UTC))) as fixed:
        yield fixed


def ask(engine, day, sku, *, unavailable, name=None, times=1):
    with write_tx(engine) as conn:
        for _ in range(times):
            demand.count(conn, day, sku, unavailable=unavailable, product_name=name)


def test_questions_are_counted_per_product_and_day(engine):
    ask(engine, YESTERDAY, "KET-BLUE", unavailable=True, name="Blue kettle", times=3)
    ask(engine, YESTERDAY, "KET-BLUE", unavailable=False)
    ask(engine, TODAY, "KET-BLUE", unavailable=True)
    ask(engine, TODAY, "KET-STEEL", unavailable=False, name="Steel kettle")
    rows = demand.demand(engine, demand.DemandQuery(YESTERDAY, TODAY))
    assert [(r["day"], r["sku"], r["asked"], r["unavailable"], r["available"]) for r in rows] == [
        (YESTERDAY.isoformat(), "KET-BLUE", 4, 3, 1),
        (TODAY.isoformat(), "KET-BLUE", 1, 1, 0),
        (TODAY.isoformat(), "KET-STEEL", 1, 0, 1),
    ]
    assert rows[0]["product_name"] == "Blue kettle"
    unmet = demand.demand(engine, demand.DemandQuery(YESTERDAY, TODAY, unmet=True))
    assert [(r["day"], r["sku"]) for r in unmet] == [(YESTERDAY.isoformat(), "KET-BLUE"), (TODAY.isoformat(), "KET-BLUE")]
    assert demand.demand(engine, demand.DemandQuery(TODAY, TODAY, sku="KET-STEEL"))[0]["asked"] == 1


@pytest.mark.parametrize(
    "args, needle",
    [
        (("2026-05-03", "2026-05-01", None), "from must not be after to"),
        (("3 May", None, None), "from must be a date"),
        (("2024-01-01", "2026-01-01", None), "at most 366 days"),
        ((None, None, "maybe"), "unmet must be true or false"),
    ],
)
def test_bad_ranges_are_refused_clearly(args, needle):
    from hub.contract.errors import RejectedInput

    with pytest.raises(RejectedInput, match=needle):
        demand.parse_query(*args)


def test_default_range_is_the_last_30_days():
    q = demand.parse_query(None, None, None, today=date(2026, 5, 31))
    assert (q.start, q.end, q.unmet) == (date(2026, 5, 2), date(2026, 5, 31), False)


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
async def api(settings):
    # Routing and the push are off here: these tests look at the listing alone.
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    tokens = {"backoffice": create_token(engine, "erp", role="backoffice"),
              "integration": create_token(engine, "shop", role="integration")}
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    tokens["agent"] = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    yield client, engine, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    await client.close()
    engine.dispose()


async def test_unmet_demand_as_json_and_csv(api):
    client, engine, auth = api
    ask(engine, YESTERDAY, "KET-BLUE", unavailable=True, name="Blue kettle", times=2)
    ask(engine, YESTERDAY, "KET-STEEL", unavailable=False, name="Steel kettle")
    ask(engine, TODAY, "X200-BLK", unavailable=True, name="X200 headphones (black)")
    params = {"from": YESTERDAY.isoformat(), "to": TODAY.isoformat(), "unmet": "true"}

    resp = await client.get("/api/v1/demand", params=params, headers=auth["agent"])
    assert resp.status == 200
    body = await resp.json()
    assert body["from"] == YESTERDAY.isoformat() and body["unmet"] is True
    assert [(r["sku"], r["asked"], r["unavailable"]) for r in body["items"]] == [("KET-BLUE", 2, 2), ("X200-BLK", 1, 1)]

    for extra, headers in (({"format": "csv"}, auth["agent"]), ({}, {**auth["backoffice"], "Accept": "text/csv"})):
        resp = await client.get("/api/v1/demand", params={**params, **extra}, headers=headers)
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert "attachment" in resp.headers["Content-Disposition"]
        table = list(csv.DictReader(io.StringIO(await resp.text())))
        assert [(r["day"], r["sku"], r["asked"], r["unavailable"]) for r in table] == [
            (YESTERDAY.isoformat(), "KET-BLUE", "2", "2"), (TODAY.isoformat(), "X200-BLK", "1", "1")]
        assert table[0]["product_name"] == "Blue kettle"

    everything = await (await client.get("/api/v1/demand", params={**params, "unmet": "false"}, headers=auth["agent"])).json()
    assert len(everything["items"]) == 3


async def test_demand_api_refuses_bad_input_and_wrong_roles(api):
    client, _engine, auth = api
    resp = await client.get("/api/v1/demand", params={"from": "2026-05-03", "to": "2026-05-01"}, headers=auth["agent"])
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "rejected_input"
    resp = await client.get("/api/v1/demand", params={"format": "xml"}, headers=auth["agent"])
    assert resp.status == 422
    assert (await client.get("/api/v1/demand", headers=auth["integration"])).status == 403
    assert (await client.get("/api/v1/demand")).status == 401


# --- the push to the back end -----------------------------------------------------------------------


def scm_demand(url):
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return {(r.day, r.sku): (r.asked, r.unavailable)
                    for r in conn.execute(sa.text("SELECT day, sku, asked, unavailable FROM demand")).all()}
    finally:
        eng.dispose()


def day_of(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def test_complete_days_are_pushed_once_and_again_when_they_change(engine, tmp_path):
    url = seed_demo_scm(tmp_path / "scm")
    backend = SqlBackend(SqlSettings(), url=url)
    try:
        ask(engine, YESTERDAY - timedelta(days=1), "KET-BLUE", unavailable=True, name="Blue kettle", times=2)
        ask(engine, YESTERDAY, "KET-BLUE", unavailable=True, times=3)
        ask(engine, YESTERDAY, "KET-STEEL", unavailable=False)
        ask(engine, TODAY, "KET-BLUE", unavailable=True)  # today is not complete: not pushed yet

        assert await demand.push_demand(engine, backend) == (3, 0)
        pushed = {(day_of(d), sku): v for (d, sku), v in scm_demand(url).items()}
        assert pushed == {(YESTERDAY - timedelta(days=1), "KET-BLUE"): (2, 2), (YESTERDAY, "KET-BLUE"): (3, 3),
                          (YESTERDAY, "KET-STEEL"): (1, 0)}
        assert await demand.push_demand(engine, backend) == (0, 0)  # nothing new

        # A question routed late (the back end was down) changes yesterday: pushed again, replaced.
        ask(engine, YESTERDAY, "KET-BLUE", unavailable=False)
        assert await demand.push_demand(engine, backend) == (1, 0)
        pushed = {(day_of(d), sku): v for (d, sku), v in scm_demand(url).items()}
        assert pushed[(YESTERDAY, "KET-BLUE")] == (4, 3)
        # Tomorrow, today is complete.
        assert await demand.push_demand(engine, backend, today=TODAY + timedelta(days=1)) == (1, 0)
    finally:
        await backend.close()


async def test_a_failed_push_is_kept_and_retried(engine, tmp_path):
    down = tmp_path / "scm-down"
    down.mkdir()
    url = f"sqlite:///{down / 'scm-demo.db'}"
    backend = SqlBackend(SqlSettings(), url=url)  # no tables yet: the back end answers nothing
    try:
        ask(engine, YESTERDAY, "KET-BLUE", unavailable=True, times=2)
        ask(engine, YESTERDAY, "X200-BLK", unavailable=True)
        assert await demand.push_demand(engine, backend) == (0, 2)
        with read_tx(engine) as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(demand_t).where(demand_t.c.pushed_at.is_not(None))).scalar() == 0
        seed_demo_scm(down)  # back up
        assert await demand.push_demand(engine, backend) == (2, 0)
        assert {sku for (_d, sku) in scm_demand(url)} == {"KET-BLUE", "X200-BLK"}
    finally:
        await backend.close()
