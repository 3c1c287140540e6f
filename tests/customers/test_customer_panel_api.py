"""The customer panel through its doors, on SQLite and PostgreSQL: the REST API (bearer or session
with the CSRF header) and the inbox's form (post and redirect without JavaScript; the panel's HTML
for the page's script), an address of another customer answered with a merge review's link, and
the notifications API refusing another agent's notification."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent
from hub.config.settings import ScmSettings
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from hub.web.app import create_app
from tests.support.inbox import sign_in_for_forms


@pytest.fixture
async def hub(settings):
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Mia Chen")
    create_agent(engine, "other@example.com", "other password", role="agent", name="Bo Diddley")
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    client = TestClient(TestServer(app))
    await client.start_server()
    tokens = {}
    for email, password in (("agent@example.com", "agent password"), ("other@example.com", "other password")):
        body = await (await client.post("/api/v1/auth/login", json={"email": email, "password": password})).json()
        tokens[email] = {"Authorization": f"Bearer {body['token']}"}
    client.session.cookie_jar.clear()
    call = ingest(engine, InboundMessage("voice", "call-1", Sender("+44 20 7946 0958", "Chloé Martin"), "Customer: hi", subject="Call"))
    mail = ingest(engine, InboundMessage("email", "<m1@example.com>", Sender("ana@example.com", "Ana Silva"), "Hello", subject="Hi"))
    yield client, engine, tokens, call, mail
    await client.close()
    engine.dispose()


async def test_the_rest_api_edits_the_customer(hub):
    client, _, tokens, call, mail = hub
    me = tokens["agent@example.com"]
    cid = call.customer_id
    resp = await client.patch(f"/api/v1/customers/{cid}", json={"name": "Chloé Martin-Roy"}, headers=me)
    assert resp.status == 200 and (await resp.json())["name"] == "Chloé Martin-Roy"
    resp = await client.post(f"/api/v1/customers/{cid}/addresses", json={"kind": "email", "address": "Chloe@Example.com"}, headers=me)
    assert resp.status == 201
    for path, body in (("notes", {"text": "Calls in the morning"}), ("attributes", {"key": "plan", "value": "gold"}),
                       ("tags", {"tag": "Wholesale"})):
        assert (await client.post(f"/api/v1/customers/{cid}/{path}", json=body, headers=me)).status in (200, 201)
    panel = await (await client.get(f"/api/v1/customers/{cid}/panel", headers=me)).json()
    assert panel["tags"] == ["wholesale"] and panel["attributes"][0]["value"] == "gold"
    assert panel["notes"][0]["author"] == "Mia Chen" and panel["notes"][0]["text"] == "Calls in the morning"
    profile = await (await client.get(f"/api/v1/customers/{cid}", headers=me)).json()
    assert {"kind": "email", "address": "chloe@example.com", "verified": False}.items() <= profile["identities"][-1].items()
    # Another customer's address: 409 with who has it and the merge review's link.
    resp = await client.post(f"/api/v1/customers/{cid}/addresses", json={"kind": "email", "address": "ANA@example.com"}, headers=me)
    body = await resp.json()
    assert resp.status == 409 and body["error"]["code"] == "address_taken"
    assert body["error"]["detail"]["merge_review"] == f"/inbox/customers/{cid}/merge?other={mail.customer_id}"
    assert (await client.delete(f"/api/v1/customers/{cid}/tags/wholesale", headers=me)).status == 200
    assert (await client.delete(f"/api/v1/customers/{cid}/attributes/plan", headers=me)).status == 200
    assert (await client.delete(f"/api/v1/customers/{cid}/tags/nope", headers=me)).status == 404
    resp = await client.post(f"/api/v1/customers/{cid}/notes", json={"text": "bad \u0000 byte"}, headers=me)
    assert resp.status == 400
    resp = await client.post(f"/api/v1/customers/{cid}/notes", json={"text": "x" * 20_000}, headers=me)
    assert resp.status == 422
    assert (await client.post(f"/api/v1/customers/{cid}/notes", json={"text": "no auth"})).status == 401


async def test_the_inbox_form_works_without_and_with_the_script(hub):
    client, _, _, call, mail = hub
    csrf = await sign_in_for_forms(client, "agent@example.com", "agent password", page=f"/inbox/customers/{call.customer_id}")
    edit = f"/inbox/customers/{call.customer_id}/edit"
    # Without JavaScript: post, redirect back to the page, the change shown.
    resp = await client.post(edit, data={"_csrf": csrf, "action": "tag", "tag": "vip"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith(f"/inbox/customers/{call.customer_id}")
    resp = await client.post(edit, data={"_csrf": csrf, "action": "note", "text": "first note",
                                         "conversation": str(call.conversation_id)}, allow_redirects=False)
    assert resp.headers["Location"].startswith(f"/inbox/c/{call.conversation_id}")
    html = await (await client.get(f"/inbox/c/{call.conversation_id}")).text()
    assert "vip" in html and "first note" in html and 'data-customer-panel' in html
    # The page's script gets the panel's HTML back.
    resp = await client.post(edit, data={"_csrf": csrf, "action": "attribute", "key": "plan", "value": "gold"}, headers={"X-Panel": "1"})
    fragment = await resp.text()
    assert resp.status == 200 and fragment.lstrip().startswith(("{#", "<section")) and "gold" in fragment and "<html" not in fragment
    # An address of another customer: the page offers the merge review (no script), JSON for the script.
    resp = await client.post(edit, data={"_csrf": csrf, "action": "add_address", "kind": "email", "address": "ana@example.com"})
    page = await resp.text()
    assert resp.status == 409 and f"/inbox/customers/{call.customer_id}/merge?other={mail.customer_id}" in page
    resp = await client.post(edit, data={"_csrf": csrf, "action": "add_address", "kind": "email", "address": "ana@example.com"},
                             headers={"X-Panel": "1"})
    assert resp.status == 409 and (await resp.json())["error"]["detail"]["customer_id"] == mail.customer_id
    # No CSRF token, an unknown action: refused, nothing changed.
    assert (await client.post(edit, data={"action": "tag", "tag": "forged"}, allow_redirects=False)).status == 403
    assert (await client.post(edit, data={"_csrf": csrf, "action": "drop_table"}, headers={"X-Panel": "1"})).status == 422
    assert "forged" not in await (await client.get(f"/inbox/customers/{call.customer_id}")).text()


async def test_notifications_api_and_autocomplete(hub):
    client, engine, tokens, call, _ = hub
    me, other = tokens["agent@example.com"], tokens["other@example.com"]
    resp = await client.post(f"/api/v1/conversations/{call.conversation_id}/notes", json={"text": "@Bo please call back"}, headers=me)
    assert resp.status in (200, 201), await resp.text()
    theirs = await (await client.get("/api/v1/notifications", headers=other)).json()
    assert theirs["unread"] == 1 and theirs["items"][0]["kind"] == "mention"
    assert (await (await client.get("/api/v1/notifications", headers=me)).json()) == {"items": [], "unread": 0}
    resp = await client.post("/api/v1/notifications/read", json={"ids": [theirs["items"][0]["id"]]}, headers=me)
    assert resp.status == 404  # not mine: as if it did not exist
    assert (await (await client.get("/api/v1/notifications?unread=true", headers=other)).json())["unread"] == 1
    # Without JavaScript: the bell is a link to the list, and each entry marks itself read on the way.
    csrf = await sign_in_for_forms(client, "other@example.com", "other password", page="/inbox/notifications/all")
    page = await (await client.get("/inbox/notifications/all")).text()
    assert "Mia Chen mentioned you" in page and "1 unread" in page
    resp = await client.post("/inbox/notifications/read", data={"_csrf": csrf, "id": str(theirs["items"][0]["id"]),
                                                                "go": str(call.conversation_id)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/inbox/c/{call.conversation_id}"
    assert (await (await client.get("/api/v1/notifications", headers=other)).json())["unread"] == 0
    await sign_in_for_forms(client, "agent@example.com", "agent password")
    people = await (await client.get("/inbox/people?q=b")).json()
    assert [p["name"] for p in people["people"]] == ["Bo Diddley"]
    assert (await (await client.get("/inbox/notifications")).json())["unread"] == 0
