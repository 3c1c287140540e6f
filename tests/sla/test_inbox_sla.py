"""SLA, segments, teams and satisfaction in the inbox pages, through a real aiohttp server on SQLite and PostgreSQL: SLA timers
on rows and on the conversation (warning / overdue), the "SLA due soon" view, the segment badge
and filter, the availability toggle, teams on the admin page, the CSAT answer and the Reports link.
The SLA worker is driven by the test (one pass), on a 24/7 calendar so that wall time is business
time whatever day the tests run."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from hub.assignment import rules as assignment
from hub.auth.accounts import create_agent
from hub.config.settings import SlaSettings
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.sla import timers as sla
from hub.store.db import make_engine
from hub.store.models import Conversation, Csat, Customer, utcnow
from hub.web.app import create_app
from tests.support.inbox import csrf_of, sign_in

conv_t, customer_t, csat_t = Conversation.__table__, Customer.__table__, Csat.__table__
ALWAYS = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
async def hub(settings):
    settings.sla.worker = False  # the test runs the passes itself
    # The tests set customers' segments by hand: a recomputation in the background (whenever the
    # segment worker wins its lease) would set them back from the customers' history.
    settings.segments.enabled = False
    settings.sla.assignment = "off"
    settings.sla.calendars = {"default": SlaSettings.Calendar(timezone="UTC", hours=ALWAYS)}
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    ids = {
        "admin": create_agent(engine, "admin@example.com", "admin password", role="admin", name="Ada Admin"),
        "agent": create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent"),
    }
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine = engine
    client.ids = ids
    client.rules = sla.build_rules(settings.sla)
    yield client
    await client.close()
    engine.dispose()


def opened(engine, subject: str, address: str, age: timedelta) -> int:
    result = ingest(engine, InboundMessage(channel="email", external_id=f"<{subject}@x>", sender=Sender(address, subject),
                                           text=f"{subject} text", subject=subject))
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == result.conversation_id).values(created_at=utcnow() - age))
    return result.conversation_id


async def test_rows_show_timers_segments_and_the_due_soon_view(hub):
    warned = opened(hub.engine, "Nearly late", "ana@example.com", timedelta(hours=3, minutes=30))  # 4h target, 80% passed
    late = opened(hub.engine, "Already late", "ben@example.com", timedelta(hours=5))
    calm = opened(hub.engine, "Just in", "cy@example.com", timedelta(minutes=1))
    with hub.engine.begin() as conn:
        key = conn.execute(select(conv_t.c.customer_id).where(conv_t.c.id == late)).scalar()
        conn.execute(update(customer_t).where(customer_t.c.id == key).values(segment="key"))
        conn.execute(update(conv_t).where(conv_t.c.id == calm).values(priority="low"))  # 8h target
    sla.run_pass(hub.engine, hub.rules, now=utcnow())
    await sign_in(hub)

    page = await (await hub.get("/inbox?view=all")).text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr class="[^"]*" data-id="(\d+)">.*?</tr>', page, re.DOTALL)}
    assert "sla-warning" in rows[str(warned)] and "due in" in rows[str(warned)]
    # A key customer's conversation: the stricter key-customer policy (1h first response) and a badge.
    assert "sla-overdue" in rows[str(late)] and "overdue" in rows[str(late)] and 'class="seg seg-key"' in rows[str(late)]
    assert "sla-ok" in rows[str(calm)]
    assert '<select id="segment" name="segment">' in page
    assert 'href="/inbox/reports"' in page

    keys_only = await (await hub.get("/inbox?view=all&segment=key")).text()
    assert "Already late" in keys_only and "Nearly late" not in keys_only
    bad = await hub.get("/inbox?segment=vip")
    assert bad.status == 422 and "segment must be one of" in await bad.text()

    due_soon = await (await hub.get("/inbox?view=sla")).text()
    assert due_soon.index("Already late") < due_soon.index("Nearly late")  # most urgent first
    assert "Just in" not in due_soon  # due in about 8 hours: not soon
    rows_fragment = await (await hub.get("/inbox/rows?view=all&segment=key")).text()
    assert "Already late" in rows_fragment


async def test_conversation_shows_its_timers_and_the_customers_satisfaction(hub):
    cid = opened(hub.engine, "Broken kettle", "ana@example.com", timedelta(hours=5))
    sla.run_pass(hub.engine, hub.rules, now=utcnow())
    with hub.engine.begin() as conn:
        conn.execute(csat_t.insert().values(conversation_id=cid, score=2, comment="Took <b>too</b> long", created_at=utcnow()))
    await sign_in(hub)
    page = await (await hub.get(f"/inbox/c/{cid}")).text()
    assert "Policy: normal" in page
    assert re.search(r'class="timer timer-overdue">overdue by 1h 0\dm business time', page)
    assert re.search(r'class="timer timer-ok">\d+h \d\dm business time left', page)  # resolution: 24h
    assert "2 / 5" in page and "csat-bad" in page
    assert "Took &lt;b&gt;too&lt;/b&gt; long" in page  # what the customer typed is escaped


async def test_availability_toggle_and_teams_on_the_admin_page(hub):
    await sign_in(hub)
    page = await (await hub.get("/inbox")).text()
    assert "Set away" in page
    token = csrf_of(page)
    refused = await hub.post("/inbox/availability", data={"available": "false"}, allow_redirects=False)
    assert refused.status == 403  # no CSRF token
    resp = await hub.post("/inbox/availability", data={"available": "false", "_csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert assignment.is_available(hub.engine, hub.ids["agent"]) is False
    assert "Set available" in await (await hub.get("/inbox")).text()
    bad = await hub.post("/inbox/availability", data={"available": "maybe", "_csrf": token}, allow_redirects=False)
    assert bad.status == 422

    forbidden = await hub.get("/inbox/admin/agents")
    assert forbidden.status == 403
    await hub.post("/inbox/logout", data={"_csrf": token}, allow_redirects=False)
    await sign_in(hub, "admin@example.com", "admin password")
    admin_page = await (await hub.get("/inbox/admin/agents")).text()
    token = csrf_of(admin_page)
    assert ">away<" in admin_page
    resp = await hub.post("/inbox/admin/agents", data={"action": "team_create", "name": "Key accounts", "_csrf": token},
                          allow_redirects=False)
    assert resp.status == 303
    team_id = assignment.list_teams(hub.engine)[0]["id"]
    resp = await hub.post("/inbox/admin/agents", data={"action": "team_add", "team_id": team_id, "agent_id": hub.ids["agent"],
                                                       "_csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert assignment.teams_of_agents(hub.engine) == {hub.ids["agent"]: ["Key accounts"]}
    await hub.post("/inbox/admin/agents", data={"action": "availability", "agent_id": hub.ids["agent"], "available": "true",
                                                "_csrf": token}, allow_redirects=False)
    assert assignment.is_available(hub.engine, hub.ids["agent"]) is True
    admin_page = await (await hub.get("/inbox/admin/agents")).text()
    assert '<span class="tag">Key accounts</span>' in admin_page


async def bearer(client, email: str, password: str) -> dict:
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_rest_timers_teams_and_availability(hub):
    agent_h = await bearer(hub, "agent@example.com", "agent password")
    admin_h = await bearer(hub, "admin@example.com", "admin password")
    cid = opened(hub.engine, "Late parcel", "ana@example.com", timedelta(hours=5))
    sla.run_pass(hub.engine, hub.rules, now=utcnow())
    sla.run_pass(hub.engine, hub.rules, now=utcnow())  # fires the breach
    body = await (await hub.get(f"/api/v1/conversations/{cid}/sla", headers=agent_h)).json()
    assert body["policy"] == "normal" and body["first_response"]["breached"] is True
    assert body["first_response"]["remaining_business_seconds"] < -3500
    assert body["resolution"]["running"] is True and body["resolution"]["breached"] is False
    assert [(e["timer"], e["stage"]) for e in body["events"]] == [("first_response", "breach")]
    assert (await hub.get("/api/v1/conversations/999/sla", headers=agent_h)).status == 404
    hub.session.cookie_jar.clear()  # the sign-in also set a session cookie: only bearer tokens from here
    assert (await hub.get(f"/api/v1/conversations/{cid}/sla")).status == 401

    assert (await hub.post("/api/v1/teams", json={"name": "Key"}, headers=agent_h)).status == 403
    created = await hub.post("/api/v1/teams", json={"name": "Key"}, headers=admin_h)
    assert created.status == 201
    team = await created.json()
    assert (await hub.post("/api/v1/teams", json={"name": "Key"}, headers=admin_h)).status == 409
    url = f"/api/v1/teams/{team['id']}/members"
    assert (await hub.post(url, json={"agent_id": hub.ids["agent"]}, headers=admin_h)).status == 204
    assert (await hub.post(url, json={"agent_id": 999}, headers=admin_h)).status == 404
    teams = await (await hub.get("/api/v1/teams", headers=agent_h)).json()
    assert teams["items"][0]["members"][0]["email"] == "agent@example.com"
    assert (await hub.delete(f"{url}/{hub.ids['agent']}", headers=admin_h)).status == 204

    me = await hub.put("/api/v1/agents/me/availability", json={"available": False}, headers=agent_h)
    assert (await me.json()) == {"agent_id": hub.ids["agent"], "available": False}
    assert (await (await hub.get("/api/v1/agents/me/availability", headers=agent_h)).json())["available"] is False
    other = f"/api/v1/agents/{hub.ids['admin']}/availability"
    assert (await hub.put(other, json={"available": False}, headers=agent_h)).status == 403
    assert (await hub.put(f"/api/v1/agents/{hub.ids['agent']}/availability", json={"available": True},
                          headers=admin_h)).status == 200
    assert (await hub.put("/api/v1/agents/me/availability", json={"available": "yes please"}, headers=agent_h)).status == 422
