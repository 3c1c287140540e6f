"""REST API v1 end to end through a real aiohttp server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from hub.auth.accounts import create_agent, create_token
from hub.store.db import make_engine
from hub.store.models import Outbox
from hub.web.app import create_app
from hub.web.keys import ENGINE, REGISTRY, SETTINGS


@dataclass
class Hub:
    client: TestClient
    integration: dict
    admin: dict
    agent: dict
    backoffice: dict
    agent_id: int
    app: object

    async def post_message(self, **body):
        body.setdefault("channel", "api")
        body.setdefault("sender", {"address": "ana@example.com", "name": "Ana"})
        body.setdefault("text", "hello")
        return await self.client.post("/api/v1/messages", json=body, headers=self.integration)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def hub(settings):
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin")
    agent_id = create_agent(engine, "agent@example.com", "agent password", role="agent")
    integration = create_token(engine, "shop", role="integration")
    backoffice = create_token(engine, "erp", role="backoffice")
    engine.dispose()
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {}
    for email, password in [("admin@example.com", "admin password"), ("agent@example.com", "agent password")]:
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert resp.status == 200
        tokens[email] = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    yield Hub(
        client,
        bearer(integration),
        bearer(tokens["admin@example.com"]),
        bearer(tokens["agent@example.com"]),
        bearer(backoffice),
        agent_id,
        app,
    )
    await client.close()


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


# --- ingest ---------------------------------------------------------------------------------------


async def test_post_message_creates_then_deduplicates(hub):
    first = await hub.post_message(external_id="m1", subject="Order 17")
    assert first.status == 201
    ids = await first.json()
    assert ids["created"] is True and {"customer_id", "conversation_id", "message_id"} <= set(ids)
    again = await hub.post_message(external_id="m1", subject="Order 17")
    assert again.status == 200
    assert await again.json() == {**ids, "created": False}


async def test_post_message_threads_by_in_reply_to_and_conversation_id(hub):
    a = await (await hub.post_message(external_id="m1")).json()
    b = await (await hub.post_message(external_id="m2", in_reply_to=["m1"])).json()
    c = await (await hub.post_message(external_id="m3", conversation_id=a["conversation_id"])).json()
    assert a["conversation_id"] == b["conversation_id"] == c["conversation_id"]


async def test_post_message_keeps_metadata_and_sent_at(hub):
    ids = await (await hub.post_message(external_id="m1", sent_at="2026-01-02T03:04:05+01:00",
                                        metadata={"order": "A1", "tags": ["vip"]})).json()
    conv = await (await hub.client.get(f"/api/v1/conversations/{ids['conversation_id']}", headers=hub.agent)).json()
    assert conv["messages"][0]["sent_at"] == "2026-01-02T02:04:05Z"


@pytest.mark.parametrize(
    "body, status, code, needle",
    [
        (b"{not json", 400, "bad_request", "not valid JSON"),
        (b"[1, 2]", 400, "bad_request", "JSON object"),
        (b"", 400, "bad_request", "JSON body"),
        (b'{"channel": "api", "sender": {"address": "a@b.c"}, "text": "x"}', 422, "validation_error", "external_id"),
        (b'{"channel": "api", "external_id": 5, "sender": {"address": "a@b.c"}, "text": "x"}', 422, "validation_error", "external_id"),
        (b'{"channel": "api", "external_id": "x", "sender": {"address": "a@b.c"}}', 422, "validation_error", "needs text"),
        (b'{"channel": "api", "external_id": "x", "sender": {"address": "a@b.c"}, "text": "x", "sent_at": "yesterday"}', 422, "validation_error", "sent_at"),
        (b'{"channel": "api", "external_id": "x", "sender": {"address": "a@b.c"}, "text": "x", "colour": 1}', 422, "validation_error", "colour"),
        (b'{"channel": "fax", "external_id": "x", "sender": {"address": "a@b.c"}, "text": "x"}', 422, "rejected_input", "unknown channel 'fax'"),
        (b'{"channel": "email", "external_id": "x", "sender": {"address": "nobody"}, "text": "x"}', 422, "rejected_input", "not an email address"),
    ],
)
async def test_bad_message_bodies_get_a_clear_4xx(hub, body, status, code, needle):
    resp = await hub.client.post("/api/v1/messages", data=body, headers={**hub.integration, "Content-Type": "application/json"})
    err = await error_of(resp, status)
    assert err["code"] == code and needle in err["message"]


async def test_oversized_body_is_413_and_the_hub_keeps_running(hub):
    big = "x" * (hub.app[SETTINGS].max_request_bytes + 10)
    resp = await hub.post_message(external_id="big", text=big)
    err = await error_of(resp, 413)
    assert err["code"] == "payload_too_large"
    assert (await hub.post_message(external_id="small")).status == 201


async def test_ingest_needs_an_integration_token(hub):
    await error_of(await hub.client.post("/api/v1/messages", json={}), 401)
    await error_of(await hub.client.post("/api/v1/messages", json={}, headers=bearer("shub_wrong")), 401)
    err = await error_of(await hub.client.post("/api/v1/messages", json={}, headers=hub.admin), 403)
    assert "integration" in err["message"]


# --- conversations -----------------------------------------------------------------------------


async def test_list_filters_and_cursor_pagination(hub):
    for i in range(7):
        await hub.post_message(external_id=f"a{i}", sender={"address": f"c{i}@example.com", "name": f"Cust {i}"}, subject=f"Subject {i}")
    await hub.post_message(channel="webform", external_id="w1", sender={"address": "web@example.com", "name": "Webby"}, subject="Form")
    seen, cursor = [], None
    while True:
        url = "/api/v1/conversations?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await hub.client.get(url, headers=hub.agent)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 8 and len(set(seen)) == 8
    assert seen == sorted(seen, reverse=True)  # newest activity first

    web = await (await hub.client.get("/api/v1/conversations?channel=webform", headers=hub.agent)).json()
    assert [c["subject"] for c in web["items"]] == ["Form"]
    found = await (await hub.client.get("/api/v1/conversations?q=cust 3", headers=hub.agent)).json()
    assert [c["customer"]["name"] for c in found["items"]] == ["Cust 3"]
    by_addr = await (await hub.client.get("/api/v1/conversations?q=c5@example", headers=hub.agent)).json()
    assert [c["customer"]["name"] for c in by_addr["items"]] == ["Cust 5"]
    cust = found["items"][0]["customer"]["id"]
    mine = await (await hub.client.get(f"/api/v1/conversations?customer={cust}", headers=hub.agent)).json()
    assert len(mine["items"]) == 1


async def test_list_rejects_bad_filters(hub):
    for query, needle in [("status=nope", "status"), ("limit=0", "limit"), ("limit=x", "limit"),
                          ("cursor=@@@", "cursor"), ("assignee=-1", "assignee")]:
        err = await error_of(await hub.client.get(f"/api/v1/conversations?{query}", headers=hub.agent), 422)
        assert needle in err["message"]


async def test_patch_assign_resolve_and_filter(hub):
    ids = await (await hub.post_message(external_id="m1")).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}"
    resp = await hub.client.patch(url, json={"assignee_id": hub.agent_id, "priority": "high"}, headers=hub.admin)
    assert resp.status == 200
    conv = await resp.json()
    assert conv["assignee_id"] == hub.agent_id and conv["priority"] == "high"
    mine = await (await hub.client.get(f"/api/v1/conversations?assignee={hub.agent_id}", headers=hub.agent)).json()
    assert [c["id"] for c in mine["items"]] == [ids["conversation_id"]]
    unassigned = await (await hub.client.get("/api/v1/conversations?assignee=none", headers=hub.agent)).json()
    assert unassigned["items"] == []
    conv = await (await hub.client.patch(url, json={"status": "resolved"}, headers=hub.agent)).json()
    assert conv["status"] == "resolved" and conv["resolved_at"]
    resolved = await (await hub.client.get("/api/v1/conversations?status=resolved", headers=hub.agent)).json()
    assert [c["id"] for c in resolved["items"]] == [ids["conversation_id"]]
    # A new message within the reopen window reopens it.
    await hub.post_message(external_id="m2", in_reply_to=["m1"])
    conv = await (await hub.client.get(url, headers=hub.agent)).json()
    assert conv["status"] == "open" and conv["resolved_at"] is None


async def test_patch_rejects_bad_changes(hub):
    ids = await (await hub.post_message(external_id="m1")).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}"
    for body, status, needle in [({}, 422, "at least one"), ({"status": "done"}, 422, "status"),
                                 ({"assignee_id": 999}, 422, "agent 999"), ({"status": None}, 422, "null")]:
        err = await error_of(await hub.client.patch(url, json=body, headers=hub.agent), status)
        assert needle in err["message"]
    await error_of(await hub.client.patch("/api/v1/conversations/999999", json={"status": "open"}, headers=hub.agent), 404)


async def test_reply_goes_through_the_outbox_and_its_delivery_is_visible(hub):
    ids = await (await hub.post_message(channel="email", external_id="<q1@mail>", subject="Where is it?",
                                        sender={"address": "ana@example.com", "name": "Ana"})).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}"
    resp = await hub.client.post(url + "/replies", json={"text": "It ships today."}, headers=hub.agent)
    assert resp.status == 201
    msg = await resp.json()
    assert msg["direction"] == "outbound" and msg["author_agent_id"] == hub.agent_id
    assert msg["delivery"]["state"] in ("queued", "sending", "sent")
    for _ in range(100):  # the in-process worker delivers it through the log channel
        conv = await (await hub.client.get(url, headers=hub.agent)).json()
        if conv["messages"][-1]["delivery"]["state"] == "sent":
            break
        await asyncio.sleep(0.05)
    out = conv["messages"][-1]
    assert out["delivery"]["state"] == "sent" and out["delivery"]["attempts"] == 1
    assert conv["status"] == "pending" and conv["first_response_at"]
    sent = hub.app[REGISTRY].get("email").sent
    assert [(m.recipient, m.text, m.reply_to) for m in sent] == [("ana@example.com", "It ships today.", ("<q1@mail>",))]
    assert sent[0].subject == f"Re: Where is it? [#{ids['conversation_id']}]"


async def test_notes_are_stored_and_never_sent(hub):
    ids = await (await hub.post_message(external_id="m1")).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}"
    resp = await hub.client.post(url + "/notes", json={"text": "VIP, be quick"}, headers=hub.agent)
    assert resp.status == 201
    note = await resp.json()
    assert note["direction"] == "note" and note["delivery"] is None
    await asyncio.sleep(0.2)
    assert hub.app[REGISTRY].get("api").sent == []


async def test_unknown_ids_are_404(hub):
    for path in ["/api/v1/conversations/424242", "/api/v1/customers/424242"]:
        err = await error_of(await hub.client.get(path, headers=hub.admin), 404)
        assert "424242" in err["message"]
    await error_of(await hub.client.post("/api/v1/conversations/424242/replies", json={"text": "x"}, headers=hub.agent), 404)
    await error_of(await hub.client.get("/api/v1/conversations/abc", headers=hub.agent), 400)
    await error_of(await hub.client.get("/api/v1/nothing-here", headers=hub.agent), 404)


# --- customers ---------------------------------------------------------------------------------


async def test_customer_view_spans_channels_and_merge_needs_admin(hub):
    a = await (await hub.post_message(channel="email", external_id="<e1@x>", sender={"address": "ana@example.com", "name": "Ana"})).json()
    b = await (await hub.post_message(channel="telegram", external_id="t1", sender={"address": "555", "name": "Ana T"})).json()
    assert a["customer_id"] != b["customer_id"]
    merge = f"/api/v1/customers/{a['customer_id']}/merge"
    err = await error_of(await hub.client.post(merge, json={"customer_id": b["customer_id"]}, headers=hub.agent), 403)
    assert "admin" in err["message"]
    resp = await hub.client.post(merge, json={"customer_id": b["customer_id"]}, headers=hub.admin)
    assert resp.status == 200
    merged = await resp.json()
    assert {(i["kind"], i["address"]) for i in merged["identities"]} == {("email", "ana@example.com"), ("telegram", "555")}
    assert {c["channel"] for c in merged["conversations"]} == {"email", "telegram"}
    old = await (await hub.client.get(f"/api/v1/customers/{b['customer_id']}", headers=hub.agent)).json()
    assert old["merged_into"] == a["customer_id"] and old["identities"] == []
    # The next Telegram message lands on the merged customer.
    c = await (await hub.post_message(channel="telegram", external_id="t2", sender={"address": "555"})).json()
    assert c["customer_id"] == a["customer_id"]
    await error_of(await hub.client.post(merge, json={"customer_id": a["customer_id"]}, headers=hub.admin), 409)
    await error_of(await hub.client.post(merge, json={"customer_id": b["customer_id"]}, headers=hub.admin), 409)


# --- auth --------------------------------------------------------------------------------------


async def test_roles_are_enforced(hub):
    await error_of(await hub.client.get("/api/v1/conversations"), 401)
    await error_of(await hub.client.get("/api/v1/conversations", headers=hub.integration), 403)
    await error_of(await hub.client.get("/api/v1/conversations", headers=hub.backoffice), 403)
    await error_of(await hub.client.get("/api/v1/conversations", headers={"Authorization": "Basic abc"}), 401)
    assert (await hub.client.get("/api/v1/conversations", headers=hub.agent)).status == 200


async def test_login_cookie_session_needs_csrf_for_writes(hub):
    ids = await (await hub.post_message(external_id="m1")).json()
    err = await error_of(await hub.client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "wrong"}), 401)
    assert "wrong email or password" in err["message"]
    resp = await hub.client.post("/api/v1/auth/login", json={"email": "Agent@Example.com", "password": "agent password"})
    assert resp.status == 200
    login = await resp.json()
    cookie = resp.cookies["servicehub_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # Reads work with the cookie alone; writes need the CSRF token too.
    assert (await hub.client.get("/api/v1/auth/me")).status == 200
    url = f"/api/v1/conversations/{ids['conversation_id']}/notes"
    err = await error_of(await hub.client.post(url, json={"text": "x"}), 403)
    assert "CSRF" in err["message"]
    assert (await hub.client.post(url, json={"text": "x"}, headers={"X-CSRF-Token": login["csrf_token"]})).status == 201
    assert (await hub.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": login["csrf_token"]})).status == 204
    hub.client.session.cookie_jar.clear()
    await error_of(await hub.client.get("/api/v1/auth/me", headers=bearer(login["token"])), 401)


async def test_login_is_rate_limited(settings):
    settings = settings.model_copy(update={"login_rate_per_minute": 3})
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        statuses = [(await client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "y"})).status for _ in range(5)]
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
        resp = await client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "y"})
        assert int(resp.headers["Retry-After"]) >= 1
    finally:
        await client.close()


# --- operations --------------------------------------------------------------------------------


async def test_health_metrics_and_openapi(hub):
    assert await (await hub.client.get("/healthz")).json() == {"status": "ok", "database": "ok"}
    await hub.post_message(external_id="m1")
    await hub.post_message(external_id="m1")
    metrics = await (await hub.client.get("/metrics")).text()
    assert 'servicehub_messages_ingested_total{channel="api"} 1.0' in metrics
    assert 'servicehub_messages_duplicate_total{channel="api"} 1.0' in metrics
    assert "servicehub_http_request_seconds_bucket" in metrics
    spec = await (await hub.client.get("/api/v1/openapi.json")).json()
    routes = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    registered = {
        (r.resource.canonical, r.method.lower())
        for r in hub.app.router.routes()
        if r.method not in ("HEAD", "*") and r.resource.canonical != "/"
    }
    assert registered <= routes, registered - routes


async def test_replies_to_form_and_call_conversations_go_by_email(hub):
    form = await (await hub.post_message(channel="webform", external_id="f1",
                                         sender={"address": "dana@example.com", "name": "Dana"})).json()
    resp = await hub.client.post(f"/api/v1/conversations/{form['conversation_id']}/replies", json={"text": "Thanks Dana"},
                                 headers=hub.agent)
    assert resp.status == 201
    assert (await resp.json())["channel"] == "email"
    for _ in range(100):
        if hub.app[REGISTRY].get("email").sent:
            break
        await asyncio.sleep(0.05)
    [sent] = hub.app[REGISTRY].get("email").sent
    assert (sent.recipient, sent.conversation_id) == ("dana@example.com", form["conversation_id"])
    with hub.app[ENGINE].connect() as conn:  # nothing queued on the form's channel: it has no way back
        assert conn.execute(select(func.count()).select_from(Outbox.__table__).where(Outbox.__table__.c.channel == "webform")).scalar() == 0
    # A caller known only by phone cannot be answered in writing: a clear 422, nothing queued.
    call = await (await hub.post_message(channel="api", external_id="c1", sender={"address": "+4930901820"})).json()
    from sqlalchemy import text

    from hub.store.db import write_tx
    with write_tx(hub.app[ENGINE]) as conn:
        conn.execute(text("UPDATE conversation SET channel = 'voice' WHERE id = :i"), {"i": call["conversation_id"]})
        conn.execute(text("UPDATE message SET channel = 'voice' WHERE conversation_id = :i"), {"i": call["conversation_id"]})
    err = await error_of(await hub.client.post(f"/api/v1/conversations/{call['conversation_id']}/replies",
                                               json={"text": "hello"}, headers=hub.agent), 422)
    assert "no email address" in err["message"]


async def test_a_reply_carries_attachments_to_the_channel(hub):
    import base64

    ids = await (await hub.post_message(channel="email", external_id="<att@x>", sender={"address": "ana@example.com"})).json()
    url = f"/api/v1/conversations/{ids['conversation_id']}/replies"
    pdf = b"%PDF-1.4 the invoice"
    resp = await hub.client.post(url, headers=hub.agent, json={
        "text": "Your invoice is attached.",
        "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf",
                         "data_base64": base64.b64encode(pdf).decode()}],
    })
    assert resp.status == 201, await resp.text()
    [att] = (await resp.json())["attachments"]
    assert (att["filename"], att["size"]) == ("invoice.pdf", len(pdf))
    for _ in range(100):
        if hub.app[REGISTRY].get("email").sent:
            break
        await asyncio.sleep(0.05)
    [sent] = hub.app[REGISTRY].get("email").sent
    assert [(a.filename, a.content_type, a.data) for a in sent.attachments] == [("invoice.pdf", "application/pdf", pdf)]
    err = await error_of(await hub.client.post(url, headers=hub.agent, json={
        "text": "x", "attachments": [{"filename": "a.txt", "data_base64": "not base64!"}]}), 422)
    assert "base64" in err["message"]


# --- one customer, several conversations ----------------------------------------------------------


async def test_merge_move_and_undo_through_the_api(hub):
    a = await (await hub.post_message(external_id="c1", channel="email", subject="Parcel", text="Where is my parcel?")).json()
    b = await (await hub.post_message(external_id="c2", channel="email", subject="Invoice", text="Send the invoice")).json()
    other = await (await hub.post_message(external_id="c3", sender={"address": "ben@example.com"}, text="hi")).json()
    assert a["conversation_id"] != b["conversation_id"]
    cid_a, cid_b = a["conversation_id"], b["conversation_id"]

    resp = await hub.client.post(f"/api/v1/conversations/{cid_a}/merge", json={"source_id": cid_b}, headers=hub.agent)
    assert resp.status == 200, await resp.text()
    merged = await resp.json()
    assert merged["message_ids"] == [b["message_id"]] and (merged["source_id"], merged["target_id"]) == (cid_b, cid_a)
    resp = await hub.client.post(f"/api/v1/events/{merged['event_id']}/undo", headers=hub.agent)
    assert resp.status == 200 and (await resp.json())["message_ids"] == [b["message_id"]]
    await error_of(await hub.client.post(f"/api/v1/events/{merged['event_id']}/undo", headers=hub.agent), 409)

    resp = await hub.client.post(f"/api/v1/messages/{b['message_id']}/move", json={"conversation_id": cid_a}, headers=hub.agent)
    assert resp.status == 200 and (await resp.json())["target_id"] == cid_a
    # never into another customer's conversation; a guessed id is not found; no token, no access
    await error_of(await hub.client.post(f"/api/v1/messages/{b['message_id']}/move",
                                         json={"conversation_id": other["conversation_id"]}, headers=hub.agent), 422)
    await error_of(await hub.client.post("/api/v1/events/999999/undo", headers=hub.agent), 404)
    await error_of(await hub.client.post(f"/api/v1/conversations/{cid_a}/merge", json={"source_id": cid_b}), 401)
    await error_of(await hub.client.post(f"/api/v1/conversations/{cid_a}/merge", json={"source_id": cid_b},
                                         headers=hub.integration), 403)
