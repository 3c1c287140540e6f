"""Reports, on SQLite and PostgreSQL: every figure checked against a seeded data set
whose right answers are computed here in plain Python from the seed list (not with the reports'
SQL), local days in a time zone across a DST change; JSON, CSV and SVG through the API; roles;
the reports page of the inbox."""

from __future__ import annotations

import csv
import io
import statistics
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent, create_token
from hub.config.settings import ScmSettings
from hub.contract.errors import NotFound, RejectedInput
from hub.reports import queries as reports
from hub.scm import demand
from hub.store.db import make_engine, write_tx
from hub.store.models import Agent, Conversation, Csat, Customer, Message
from hub.web.app import create_app
from tests.support.inbox import sign_in

TZ = ZoneInfo("Europe/Berlin")
# 2026-03-29: clocks go from 02:00 to 03:00 in Berlin; the range covers the days around it.
FROM, TO = date(2026, 3, 27), date(2026, 3, 31)
AGENTS = {1: "Ana", 2: "Ben"}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=TZ)


# (channel, created (local), inbound messages, first response after (s), resolved after (s), intent,
#  assignee, segment, csat score, csat answered (local), first response due after (s), resolution due after (s))
SEED = [
    ("email", local(27, 9), 2, 600, 7200, "order_status", 1, "general", 5, local(27, 12), 3600, 86400),
    ("email", local(27, 23, 50), 1, 1800, 90000, "order_status", 2, "key", 4, local(29, 10), 900, 86400),  # late reply
    ("telegram", local(28, 0, 10), 3, 120, 3600, "stock", 1, "general", 2, local(28, 9), 600, 7200),
    ("telegram", local(28, 12), 1, None, None, "stock", None, "potential", None, None, 600, 7200),  # never answered
    ("voice", local(29, 1, 30), 1, 300, 300, None, 2, "key", 3, local(29, 4), 600, 3600),  # before the DST jump
    ("voice", local(29, 3, 30), 1, 60, 99999, "complaint", 2, "general", 1, local(30, 8), 600, 3600),  # after it
    ("webform", local(30, 22), 2, 7200, None, "order_status", 1, "potential", None, None, 3600, None),  # late
    ("email", local(31, 23, 59), 4, 45, 400, "complaint", 1, "key", 5, local(31, 23, 59, ), 60, 600),
    # Outside the range: never counted.
    ("email", local(26, 23, 59), 1, 10, 20, "order_status", 1, "general", 5, local(26, 23, 59), 60, 60),
    ("telegram", datetime(2026, 4, 1, 0, 0, tzinfo=TZ), 1, 10, 20, "stock", 2, "key", 1, datetime(2026, 4, 1, 0, 1, tzinfo=TZ), 60, 60),
]
# (UTC day, sku, product, unavailable?) stock questions
STOCK = [
    (date(2026, 3, 27), "KET-BLUE", "Blue kettle", True), (date(2026, 3, 27), "KET-BLUE", "Blue kettle", True),
    (date(2026, 3, 28), "KET-BLUE", "Blue kettle", False), (date(2026, 3, 30), "X200", "X200 headphones", True),
    (date(2026, 3, 31), "TOASTER", "Toaster", False), (date(2026, 3, 26), "OLD", "Before the range", True),
]


def seed(engine) -> None:
    conv_t, msg_t, cust_t = Conversation.__table__, Message.__table__, Customer.__table__
    with write_tx(engine) as conn:
        for aid, name in AGENTS.items():
            conn.execute(Agent.__table__.insert().values(id=aid + 100, email=f"{name.lower()}@example.com", name=name,
                                                         password_hash="x", role="agent"))
        for i, (ch, created, n_in, fr, res, intent, assignee, segment, score, answered, fr_due, res_due) in enumerate(SEED, 1):
            conn.execute(cust_t.insert().values(id=i, name=f"Customer {i}", segment=segment, created_at=created, updated_at=created))
            values = {"id": i, "customer_id": i, "channel": ch, "subject": f"s{i}", "status": "resolved" if res else "open",
                          "priority": "normal", "assignee_id": assignee + 100 if assignee else None, "intent": intent,
                          "first_response_at": created + timedelta(seconds=fr) if fr is not None else None,
                          "resolved_at": created + timedelta(seconds=res) if res is not None else None,
                          "last_message_at": created, "created_at": created, "updated_at": created}
            values.update(first_response_due_at=created + timedelta(seconds=fr_due) if fr_due else None,
                          resolution_due_at=created + timedelta(seconds=res_due) if res_due else None)
            conn.execute(conv_t.insert().values(**values))
            for k in range(n_in):
                at = created + timedelta(seconds=k)
                conn.execute(msg_t.insert().values(conversation_id=i, direction="inbound", channel=ch, external_id=f"r{i}-{k}",
                                                   text="hi", sent_at=at, created_at=at, metadata={}))
            if fr is not None:  # the reply: outbound, never counted as inbound volume
                at = created + timedelta(seconds=fr)
                conn.execute(msg_t.insert().values(conversation_id=i, direction="outbound", channel=ch, text="hello",
                                                   sent_at=at, created_at=at, metadata={}))
            if score is not None:
                conn.execute(Csat.__table__.insert().values(conversation_id=i, score=score, created_at=answered))
        for day, sku, name, unavailable in STOCK:
            demand.count(conn, day, sku, unavailable=unavailable, product_name=name)


def in_range(when: datetime) -> bool:
    return FROM <= when.astimezone(TZ).date() <= TO


def rng() -> reports.ReportRange:
    return reports.parse_range(FROM.isoformat(), TO.isoformat(), "Europe/Berlin")


def quantile(values, q):
    """statistics' inclusive method is the linear interpolation between closest ranks."""
    values = sorted(values)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10 if q == 0.9 else 2, method="inclusive")[-1 if q == 0.9 else 0]


@pytest.fixture
def seeded(engine):
    seed(engine)
    return engine


def test_range_parsing():
    r = reports.parse_range("2026-03-29", "2026-03-29", "Europe/Berlin")
    assert (r.since.isoformat(), r.until.isoformat()) == ("2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00")
    assert reports.parse_range(None, "2026-05-28", None).start == date(2026, 5, 1)
    for args, needle in ((("2026-05-03", "2026-05-01", None), "not be after"), (("x", None, None), "must be a date"),
                         ((None, None, "Mars/Olympus"), "time zone"), ((None, None, "../../etc/passwd"), "time zone"),
                         (("2024-01-01", "2026-01-01", None), "at most 366")):
        with pytest.raises(RejectedInput, match=needle):
            reports.parse_range(*args)
    with pytest.raises(NotFound):
        reports.run(None, "nope", r)


def test_volume_by_local_day_and_channel(seeded):
    engine = seeded
    want = defaultdict(lambda: [0, 0])
    for ch, created, n_in, *_ in SEED:
        if in_range(created):
            want[(created.astimezone(TZ).date().isoformat(), ch)][0] += n_in
            want[(created.astimezone(TZ).date().isoformat(), ch)][1] += 1
    got = reports.volume(engine, rng())
    assert got["channels"] == sorted({ch for ch, created, *_ in SEED if in_range(created)})
    assert len(got["rows"]) == 5 * len(got["channels"])  # every day, every channel, zeros included
    assert {(r["day"], r["channel"]): [r["inbound_messages"], r["new_conversations"]]
            for r in got["rows"] if r["inbound_messages"] or r["new_conversations"]} == dict(want)


def test_response_times_p50_p90(seeded):
    engine = seeded
    groups = defaultdict(lambda: ([], []))
    for ch, created, _, fr, res, *_ in SEED:
        if in_range(created):
            for key in ("all", ch):
                if fr is not None:
                    groups[key][0].append(fr)
                if res is not None:
                    groups[key][1].append(res)
    got = {r["channel"]: r for r in reports.response_times(engine, rng())["rows"]}
    assert set(got) == set(groups)
    for key, (fr, res) in groups.items():
        row = got[key]
        assert row["first_response_count"] == len(fr) and row["resolution_count"] == len(res)
        for field, values, q in (("first_response_p50_s", fr, 0.5), ("first_response_p90_s", fr, 0.9),
                                 ("resolution_p50_s", res, 0.5), ("resolution_p90_s", res, 0.9)):
            want = quantile(values, q)
            assert (row[field] is None) if want is None else row[field] == pytest.approx(want, abs=0.11), (key, field)


def test_sla_attainment(seeded):
    engine = seeded
    now = datetime(2026, 4, 15, tzinfo=TZ)  # every target has passed
    want = defaultdict(lambda: [0, 0, 0, 0])
    for ch, created, _, fr, res, *_rest in SEED:
        fr_due, res_due = _rest[-2:]
        if not in_range(created):
            continue
        for key in ("all", ch):
            if fr_due is not None:
                want[key][1] += 1
                want[key][0] += fr is not None and fr <= fr_due
            if res_due is not None:
                want[key][3] += 1
                want[key][2] += res is not None and res <= res_due
    got = {r["channel"]: r for r in reports.sla_attainment(engine, rng(), now=now)["rows"]}
    assert {k: [r["first_response_met"], r["first_response_due"], r["resolution_met"], r["resolution_due"]]
            for k, r in got.items()} == dict(want)
    assert got["all"]["first_response_pct"] == round(100 * want["all"][0] / want["all"][1], 1)
    # Before the targets passed, an unanswered conversation is still running: not counted.
    early = {r["channel"]: r for r in reports.sla_attainment(engine, rng(), now=local(28, 12, 1))["rows"]}
    assert early["telegram"]["first_response_due"] == want["telegram"][1] - 1


def test_csat_by_channel_agent_and_segment(seeded):
    engine = seeded
    answers = [(s[0], s[6], s[7], s[8]) for s in SEED if s[8] is not None and in_range(s[9])]
    got = {(r["dimension"], r["key"]): r for r in reports.csat(engine, rng())["rows"]}
    want = {}
    for dim, idx in (("all", None), ("channel", 0), ("agent", 1), ("segment", 2)):
        groups = defaultdict(list)
        for a in answers:
            key = "all" if idx is None else a[idx]
            groups["" if key is None else str(key + 100 if dim == "agent" else key)].append(a[3])
        for key, scores in groups.items():
            want[(dim, key)] = (len(scores), round(sum(scores) / len(scores), 2), sum(s >= 4 for s in scores),
                                round(100 * sum(s >= 4 for s in scores) / len(scores), 1))
    assert {k: (r["answered"], r["average"], r["satisfied"], r["csat_pct"]) for k, r in got.items()} == want
    assert got[("agent", "101")]["label"] == "Ana"


def test_top_intents_and_out_of_stock(seeded):
    engine = seeded
    counts = Counter(s[5] for s in SEED if in_range(s[1]) and s[5])
    got = reports.intents(engine, rng())
    assert [(r["intent"], r["conversations"]) for r in got["rows"]] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert got["rows"][0]["share_pct"] == round(100 * counts.most_common(1)[0][1] / sum(counts.values()), 1)
    asked, unavailable, names = Counter(), Counter(), {}
    for day, sku, name, out in STOCK:
        if FROM <= day <= TO:
            asked[sku] += 1
            unavailable[sku] += out
            names[sku] = name
    want = sorted(((s, names[s], asked[s], unavailable[s]) for s in asked if unavailable[s]), key=lambda t: (-t[3], t[0]))
    assert [(r["sku"], r["product_name"], r["asked"], r["unavailable"]) for r in reports.out_of_stock(engine, rng())["rows"]] == want


def test_csv_and_svg_escape_what_they_show():
    report = {"report": "intents", "title": "Top intents", "from": "2026-01-01", "to": "2026-01-02", "tz": "UTC",
              "columns": ["intent", "conversations", "share_pct"],
              "rows": [{"intent": "=HYPERLINK(\"x\")", "conversations": 2, "share_pct": 100.0},
                       {"intent": "<script>alert(1)</script>", "conversations": 1, "share_pct": None}]}
    table = list(csv.reader(io.StringIO(reports.to_csv(report))))
    assert table[1][0] == "'=HYPERLINK(\"x\")" and table[2][2] == ""
    svg = reports.to_svg(report)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag.endswith("svg") and "<script" not in svg
    assert "&lt;script&gt;" in svg


@pytest.fixture
async def api(settings):
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    tokens = {"integration": create_token(engine, "shop", role="integration")}
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    tokens["agent"] = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    seed(engine)
    yield client, engine, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    await client.close()
    engine.dispose()


async def test_reports_api_json_csv_svg_and_roles(api):
    client, engine, auth = api
    params = {"from": FROM.isoformat(), "to": TO.isoformat(), "tz": "Europe/Berlin"}
    listing = await (await client.get("/api/v1/reports", headers=auth["agent"])).json()
    assert [r["name"] for r in listing["reports"]] == list(reports.REPORTS)
    for name in reports.REPORTS:
        resp = await client.get(f"/api/v1/reports/{name}", params=params, headers=auth["agent"])
        assert resp.status == 200, (name, await resp.text())
        body = await resp.json()
        assert body["report"] == name and body["from"] == "2026-03-27" and body["tz"] == "Europe/Berlin"
        assert body == reports.run(engine, name, rng()) or name == "sla"

        for extra, headers in (({"format": "csv"}, auth["agent"]), ({}, {**auth["agent"], "Accept": "text/csv"})):
            resp = await client.get(f"/api/v1/reports/{name}", params={**params, **extra}, headers=headers)
            assert resp.status == 200 and resp.content_type == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
            table = list(csv.DictReader(io.StringIO(await resp.text())))
            assert len(table) == len(body["rows"]) and (not table or list(table[0]) == body["columns"])

        for url, extra in ((f"/api/v1/reports/{name}.svg", {}), (f"/api/v1/reports/{name}", {"format": "svg"})):
            resp = await client.get(url, params={**params, **extra}, headers=auth["agent"])
            assert resp.status == 200 and resp.content_type == "image/svg+xml"
            svg = await resp.text()
            ET.fromstring(svg)
            assert "<script" not in svg and "default-src 'none'" in resp.headers["Content-Security-Policy"]
    volume = await (await client.get("/api/v1/reports/volume", params=params, headers=auth["agent"])).json()
    assert sum(r["new_conversations"] for r in volume["rows"]) == sum(in_range(s[1]) for s in SEED)

    assert (await client.get("/api/v1/reports/volume")).status == 401
    assert (await client.get("/api/v1/reports/volume", headers=auth["integration"])).status == 403
    assert (await client.get("/api/v1/reports/nope", headers=auth["agent"])).status == 404
    for bad in ({"tz": "Nowhere/City"}, {"from": "2026-13-01"}, {"format": "xml"}, {"from": "2026-05-02", "to": "2026-05-01"}):
        resp = await client.get("/api/v1/reports/volume", params=bad, headers=auth["agent"])
        assert resp.status == 422 and (await resp.json())["error"]["code"] == "rejected_input", bad


async def test_reports_page_in_the_inbox(api):
    client, _engine, _auth = api
    assert (await client.get("/inbox/reports", allow_redirects=False)).status == 303
    await sign_in(client)
    resp = await client.get("/inbox/reports", params={"from": FROM.isoformat(), "to": TO.isoformat(), "tz": "Europe/Berlin"})
    html = await resp.text()
    assert resp.status == 200
    for name in reports.REPORTS:
        assert f'src="/api/v1/reports/{name}.svg?from=2026-03-27&amp;to=2026-03-31&amp;tz=Europe%2FBerlin"' in html
        assert f"/api/v1/reports/{name}?from=2026-03-27&amp;to=2026-03-31&amp;tz=Europe%2FBerlin&amp;format=csv" in html
    assert "<script>" not in html.replace('<script src=', '')
    # The chart the page points at is served on the session cookie.
    chart = await client.get("/api/v1/reports/csat.svg", params={"from": FROM.isoformat(), "to": TO.isoformat()})
    assert chart.status == 200 and chart.content_type == "image/svg+xml"
    resp = await client.get("/inbox/reports", params={"tz": "Nowhere/City"})
    assert resp.status == 422 and "time zone" in await resp.text()


def test_demo_history_is_idempotent_and_fills_every_report(engine):
    from hub.demo.history import seed_history

    seed_history(engine)
    r = reports.parse_range(None, None, "UTC")
    first = {name: reports.run(engine, name, r) for name in reports.REPORTS}
    seed_history(engine)
    assert {name: reports.run(engine, name, r) for name in reports.REPORTS} == first
    assert sum(row["new_conversations"] for row in first["volume"]["rows"]) > 500
    assert set(first["volume"]["channels"]) == {"email", "telegram", "voice", "webform"}
    times = {row["channel"]: row for row in first["response_times"]["rows"]}
    assert times["telegram"]["first_response_p50_s"] < times["email"]["first_response_p50_s"]
    assert {row["dimension"] for row in first["csat"]["rows"]} == {"all", "channel", "agent", "segment"}
    assert len([row for row in first["csat"]["rows"] if row["dimension"] == "agent"]) == 3
    assert first["intents"]["rows"][0]["intent"] == "order_status"
    assert {row["sku"] for row in first["out_of_stock"]["rows"][:2]} == {"KET-BLUE", "X200-BLK"}
    assert 0 < first["sla"]["rows"][0]["first_response_pct"] < 100
