"""Escalation to the back office through a running hub, on SQLite and PostgreSQL: a signed webhook
to a local back-office server that checks the signature and the replay window the way a real
receiver would (with the verify_signature() the hub publishes), retries on 5xx, a refusal, email
and back-end escalation, the back office's events in the conversation's timeline, roles, and the
late-order rule for key customers."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from hub.auth.accounts import create_agent, create_token
from hub.config.settings import ScmSettings
from hub.contract import clock
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.scm.escalation import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature
from hub.store.db import make_engine, read_tx, write_tx
from hub.store.models import Customer, Escalation
from hub.web.app import create_app

SECRET = "a back-office secret shared with the hub"


@dataclass
class BackOffice:
    """A back-office system's webhook endpoint: it accepts only requests whose signature is valid
    and whose timestamp is within its replay window, and answers with its own case number."""

    fail_with: list[int] = field(default_factory=list)  # statuses to answer first, in order
    received: list[dict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if not verify_signature(SECRET, request.headers.get(TIMESTAMP_HEADER, ""), body,
                                request.headers.get(SIGNATURE_HEADER, ""), tolerance=300):
            self.refused.append("bad signature")
            return web.json_response({"error": "bad signature"}, status=401)
        if self.fail_with:
            return web.json_response({"error": "busy"}, status=self.fail_with.pop(0))
        case = json.loads(body)
        case["_headers"] = dict(request.headers)
        case["_raw"] = body.decode()
        self.received.append(case)
        return web.json_response({"reference": f"BO-{len(self.received)}", "url": f"https://bo.example/cases/{len(self.received)}"})


@pytest.fixture
async def back_office():
    office = BackOffice()
    app = web.Application()
    app.router.add_post("/cases", office.handle)
    server = TestServer(app)
    await server.start_server()
    office.url = str(server.make_url("/cases"))
    yield office
    await server.close()


@dataclass
class Hub:
    client: TestClient
    engine: object
    agent: dict
    backoffice: dict
    integration: dict
    settings: object


async def start_hub(settings) -> Hub:
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    backoffice = create_token(engine, "erp", role="backoffice")
    integration = create_token(engine, "shop", role="integration")
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    token = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    return Hub(client, engine, bearer(token), bearer(backoffice), bearer(integration), settings)


@pytest.fixture
async def hub(settings, back_office):
    scm = ScmSettings(backoffice_url=back_office.url, backoffice_secret=SECRET, routing_poll_seconds=0.05)
    h = await start_hub(settings.model_copy(update={"scm": scm}))
    yield h
    await h.client.close()
    h.engine.dispose()


async def eventually(check, timeout: float = 20.0):
    """Wait for background work (the outbox, routing) to get somewhere; not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("the background work did not get there in time")
        await asyncio.sleep(0.05)


def a_conversation(engine, address="ana.silva@example.com", text="Please call me about my delivery.", external_id="<e1@x>"):
    return ingest(engine, InboundMessage("email", external_id, Sender(address, "Ana Silva"), text, subject="Delivery"))


async def escalation_of(hub, escalation_id):
    resp = await hub.client.get(f"/api/v1/escalations/{escalation_id}", headers=hub.agent)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# --- the signed webhook -------------------------------------------------------------------------------


async def test_escalation_reaches_the_back_office_signed(hub, back_office):
    r = a_conversation(hub.engine)
    resp = await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                 json={"reason": "Courier lost the parcel; please resend"}, headers=hub.agent)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["status"] == "queued" and created["target"] == "webhook"

    async def sent():
        e = await escalation_of(hub, created["id"])
        return e if e["status"] == "sent" else None

    done = await eventually(sent)
    assert done["external_reference"] == "BO-1" and done["external_url"] == "https://bo.example/cases/1"
    assert back_office.refused == []
    [case] = back_office.received
    assert case["escalation_id"] == created["id"] and case["conversation_id"] == r.conversation_id
    assert case["reason"] == "Courier lost the parcel; please resend"
    assert case["events_url"].endswith(f"/api/v1/escalations/{created['id']}/events")
    assert {"kind": "email", "address": "ana.silva@example.com", "verified": False} in case["customer"]["identities"]
    headers = case["_headers"]
    assert headers["X-Servicehub-Delivery"] == f"escalation:{created['id']}"
    # The replay window: the same request presented later than the tolerance is refused, and a
    # changed body never verifies.
    raw, ts, sig = case["_raw"].encode(), headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, ts, raw, sig)
    assert not verify_signature(SECRET, ts, raw, sig, now=int(ts) + 301)
    assert not verify_signature(SECRET, ts, raw.replace(b"resend", b"refund"), sig)
    assert not verify_signature("another secret", ts, raw, sig)
    # ...and the timeline says the conversation was escalated.
    conv = await (await hub.client.get(f"/api/v1/conversations/{r.conversation_id}", headers=hub.agent)).json()
    assert any(m["direction"] == "system" and "Escalated to the back office" in m["text"] for m in conv["messages"])


async def test_a_busy_back_office_is_retried_until_it_takes_the_case(hub, back_office):
    back_office.fail_with = [503, 502]
    r = a_conversation(hub.engine)
    created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                           json={"reason": "Refund approval needed"}, headers=hub.agent)).json()

    async def sent():
        e = await escalation_of(hub, created["id"])
        return e if e["status"] == "sent" and e["delivery"]["state"] == "sent" else None

    done = await eventually(sent)
    assert back_office.attempts == 3 and len(back_office.received) == 1
    assert done["delivery"]["state"] == "sent" and done["delivery"]["attempts"] == 3


async def test_a_refusal_marks_the_escalation_failed_and_says_why(hub, back_office):
    back_office.fail_with = [422]
    r = a_conversation(hub.engine)
    created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                           json={"reason": "Refund approval needed"}, headers=hub.agent)).json()

    async def failed():
        e = await escalation_of(hub, created["id"])
        return e if e["status"] == "failed" else None

    done = await eventually(failed)
    assert "422" in done["last_error"] and back_office.attempts == 1
    conv = await (await hub.client.get(f"/api/v1/conversations/{r.conversation_id}", headers=hub.agent)).json()
    assert any("could not be delivered" in m["text"] for m in conv["messages"] if m["direction"] == "system")


def test_signatures():
    body = b'{"escalation_id": 1}'
    # The receiver checks against its own clock; here it is given, so the test holds on any day.
    ts = now = int(clock.timestamp())
    sig = sign(SECRET, ts, body)
    assert sig.startswith("v1=") and verify_signature(SECRET, str(ts), body, sig, now=now)
    assert verify_signature(SECRET, ts, body, f"v1=deadbeef, {sig}", now=now)  # during a secret rotation
    assert not verify_signature(SECRET, ts - 400, body, sign(SECRET, ts - 400, body), now=now)  # too old: a replay
    assert not verify_signature(SECRET, ts + 400, body, sign(SECRET, ts + 400, body), now=now)  # from the future
    assert not verify_signature(SECRET, "yesterday", body, sig, now=now)
    assert not verify_signature(SECRET, ts, body, "", now=now)
    assert not verify_signature(SECRET, ts, body, sig.replace("v1=", "v0="), now=now)


@pytest.mark.parametrize("timestamp, signature", [
    (None, "v1=é"),  # non-ASCII: hmac.compare_digest raises on such a str
    (None, "v1=\udcff"),  # an undecodable byte, as a server may hand it over
    (None, "v1=" + "ä" * 64),
    (None, None),
    (None, b"v1=00"),
    (None, "v1=," * 10_000),
    ("１７００００００００", "sig"),  # digits of another script: int() reads them
    ("1_700_000_000", "sig"),
    ("-1", "sig"),
    ("9" * 5000, "sig"),  # longer than int() converts
    ("", "sig"),
    ("1.5e9", "sig"),
])
def test_a_malformed_signature_header_is_false_never_an_exception(timestamp, signature):
    body = b'{"escalation_id": 1}'
    ts = int(time.time())
    real = sign(SECRET, ts, body)
    presented = real if signature == "sig" else signature
    assert verify_signature(SECRET, ts if timestamp is None else timestamp, body, presented) is False
    assert verify_signature(SECRET, ts, body, f"v1=é, {real}") is True  # a garbled one beside the right one


# --- the back office reports progress -------------------------------------------------------------------


async def test_back_office_events_appear_in_the_timeline(hub, back_office):
    r = a_conversation(hub.engine)
    created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                           json={"reason": "Replacement needed"}, headers=hub.agent)).json()
    url = f"/api/v1/escalations/{created['id']}/events"
    event = {"status": "in_progress", "comment": "Courier contacted, replacement packed", "external_reference": "BO-77",
             "event_id": "evt-1"}
    resp = await hub.client.post(url, json=event, headers=hub.backoffice)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["status"] == "in_progress" and body["external_reference"] == "BO-77" and len(body["events"]) == 1
    again = await hub.client.post(url, json=event, headers=hub.backoffice)  # the back office retried
    assert again.status == 200 and len((await again.json())["events"]) == 1
    resolved = await hub.client.post(url, json={"status": "resolved", "comment": "Delivered"}, headers=hub.backoffice)
    assert (await resolved.json())["status"] == "resolved"

    conv = await (await hub.client.get(f"/api/v1/conversations/{r.conversation_id}", headers=hub.agent)).json()
    timeline = [m["text"] for m in conv["messages"] if m["direction"] == "system"]
    assert any("in progress" in t and "BO-77" in t and "Courier contacted" in t for t in timeline)
    assert any("resolved" in t and "Delivered" in t for t in timeline)
    assert len([t for t in timeline if "Courier contacted" in t]) == 1
    # The back office may read the escalation it works on.
    assert (await hub.client.get(f"/api/v1/escalations/{created['id']}", headers=hub.backoffice)).status == 200


async def test_roles(hub):
    r = a_conversation(hub.engine)
    created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                           json={"reason": "Replacement needed"}, headers=hub.agent)).json()
    events = f"/api/v1/escalations/{created['id']}/events"
    for headers in (hub.agent, hub.integration):
        resp = await hub.client.post(events, json={"status": "acknowledged"}, headers=headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                 json={"reason": "x"}, headers=hub.backoffice)
    assert resp.status == 403
    assert (await hub.client.get(f"/api/v1/escalations/{created['id']}", headers=hub.integration)).status == 403
    assert (await hub.client.post(events, json={"status": "acknowledged"})).status == 401


@pytest.mark.parametrize(
    "body, needle",
    [
        ({}, "status, a comment or an external_reference"),
        ({"status": "done"}, "status"),
        ({"status": "acknowledged", "colour": 1}, "colour"),
    ],
)
async def test_bad_events_get_a_clear_422(hub, body, needle):
    r = a_conversation(hub.engine)
    created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                           json={"reason": "Replacement needed"}, headers=hub.agent)).json()
    resp = await hub.client.post(f"/api/v1/escalations/{created['id']}/events", json=body, headers=hub.backoffice)
    assert resp.status == 422
    assert needle in (await resp.json())["error"]["message"]


async def test_unknown_escalation_and_conversation_are_404(hub):
    assert (await hub.client.get("/api/v1/escalations/999", headers=hub.agent)).status == 404
    resp = await hub.client.post("/api/v1/escalations/999/events", json={"comment": "hi"}, headers=hub.backoffice)
    assert resp.status == 404
    resp = await hub.client.post("/api/v1/conversations/999/escalations", json={"reason": "x"}, headers=hub.agent)
    assert resp.status == 404


# --- the rule: a late order of a key customer ---------------------------------------------------------


async def test_a_key_customers_late_order_is_escalated_once(hub, back_office):
    first = a_conversation(hub.engine, text="Hello, my order A1001 was due on Monday and has not arrived.", external_id="<k1@x>")
    with write_tx(hub.engine) as conn:
        conn.execute(update(Customer.__table__).where(Customer.__table__.c.id == first.customer_id).values(segment="key"))
    # Routing ran for the first message before she was key; her follow-up in the same thread triggers the rule.
    for i in (2, 3):
        resp = await hub.client.post("/api/v1/messages", headers=hub.integration, json={
            "channel": "email", "external_id": f"<k{i}@x>", "sender": {"address": "ana.silva@example.com"},
            "in_reply_to": ["<k1@x>"], "text": f"Any news on order A1001? ({i})"})
        assert resp.status == 201

    async def delivered():
        return back_office.received if back_office.received else None

    [case] = await eventually(delivered)
    assert "A1001" in case["reason"] and "late" in case["reason"] and case["priority"] == "high"
    assert case["order_refs"] == ["A1001"] and any(f["kind"] == "order" for f in case["facts"])

    async def all_routed():
        with read_tx(hub.engine) as conn:
            from hub.store.models import Message

            m = Message.__table__
            left = conn.execute(select(m.c.id).where(m.c.direction == "inbound", m.c.routed_at.is_(None))).all()
        return not left

    await eventually(all_routed)
    with read_tx(hub.engine) as conn:
        escalations = conn.execute(select(Escalation.__table__)).all()
    assert len(escalations) == 1 and escalations[0].created_by == "rule:late_order_key_customer"


# --- the alternatives: email and the back end's own escalate() --------------------------------------


async def test_escalation_by_email(settings):
    scm = ScmSettings(escalation_email="backoffice@shop.example", routing_poll_seconds=0.05)
    hub = await start_hub(settings.model_copy(update={"scm": scm}))
    try:
        r = a_conversation(hub.engine)
        created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                               json={"reason": "Invoice correction"}, headers=hub.agent)).json()
        assert created["target"] == "email"

        async def sent():
            e = await escalation_of(hub, created["id"])
            return e if e["status"] == "sent" else None

        await eventually(sent)
        # Email goes through the email channel (here the log channel, which records what it sends).
        lines = [json.loads(line) for line in (settings.data_dir / "outbound.jsonl").read_text().splitlines()]
        [mail] = [m for m in lines if m["recipient"] == "backoffice@shop.example"]
        assert mail["subject"].startswith(f"[Escalation #{created['id']}]") and "Invoice correction" in mail["text"]
        resp = await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                     json={"reason": "x", "target": "webhook"}, headers=hub.agent)
        assert resp.status == 422 and "webhook" in (await resp.json())["error"]["message"]
    finally:
        await hub.client.close()
        hub.engine.dispose()


async def test_escalation_to_the_back_end(settings):
    hub = await start_hub(settings.model_copy(update={"scm": ScmSettings(routing_poll_seconds=0.05)}))
    try:
        r = a_conversation(hub.engine)
        created = await (await hub.client.post(f"/api/v1/conversations/{r.conversation_id}/escalations",
                                               json={"reason": "Check the warehouse"}, headers=hub.agent)).json()
        assert created["target"] == "backend"

        async def sent():
            e = await escalation_of(hub, created["id"])
            return e if e["status"] == "sent" else None

        done = await eventually(sent)
        assert done["external_reference"]  # the demo SCM database's case number
    finally:
        await hub.client.close()
        hub.engine.dispose()
