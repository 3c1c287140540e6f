"""Link codes, on SQLite and PostgreSQL: issuing one is audit-logged and listed on the customer (API
and inbox), and an identity a code attached can be taken off again by an agent, with the
conversations only it wrote in, so a code that reached the wrong person can be undone."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent, create_token
from hub.config.settings import ScmSettings
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.ingest.hub_link import ingest_message
from hub.store.db import make_engine, read_tx
from hub.store.models import AuditLog, Identity
from hub.web.app import create_app

STRANGER = "777000111"


def tg(ext: str, text: str, **kw) -> InboundMessage:
    return InboundMessage("telegram", ext, Sender(STRANGER, "Mallory"), text, thread=ThreadHints(thread_key=STRANGER), **kw)


@pytest.fixture
async def hub(settings):
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    engine = make_engine(settings.effective_database_url)
    agent_id = create_agent(engine, "agent@example.com", "agent password", role="agent")
    integration = {"Authorization": f"Bearer {create_token(engine, 'shop', role='integration')}"}
    client = TestClient(TestServer(app))
    await client.start_server()
    resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    body = await resp.json()
    agent = {"Authorization": f"Bearer {body['token']}"}
    client.session.cookie_jar.clear()
    yield client, engine, agent, integration, agent_id, body["csrf_token"]
    await client.close()
    engine.dispose()


def audit(engine, action: str) -> list:
    with read_tx(engine) as conn:
        t = AuditLog.__table__
        return conn.execute(sa.select(t).where(t.c.action == action).order_by(t.c.id)).all()


async def test_a_code_is_audited_listed_and_its_identity_can_be_taken_off(hub):
    client, engine, agent, integration, agent_id, _ = hub
    app = client.server.app
    ana = await ingest_message(app, InboundMessage("email", "<1@example.com>", Sender("ana@example.com", "Ana"), "Where is SO-1?"))
    # Mallory wrote on Telegram before, then got hold of Ana's code.
    before = await ingest_message(app, tg("tg-1", "hello, any news on my parcel?"))
    resp = await client.post(f"/api/v1/customers/{ana.customer_id}/link-codes", headers=agent)
    assert resp.status == 201
    code = (await resp.json())["code"]
    [entry] = audit(engine, "customer.link_code")
    assert (entry.actor, entry.target) == (f"agent:{agent_id}", f"customer:{ana.customer_id}")
    assert code not in str(entry.detail)  # the code itself is nowhere but in the answer
    profile = await (await client.get(f"/api/v1/customers/{ana.customer_id}", headers=agent)).json()
    [listed] = profile["link_codes"]
    assert (listed["status"], listed["created_by"], listed["used_by"]) == ("open", f"agent:{agent_id}", None)
    assert entry.detail["link_code"] == listed["id"]

    linked = await ingest_message(app, tg("tg-2", f"/start {code}", link_code=code))
    assert linked.customer_id == ana.customer_id
    profile = await (await client.get(f"/api/v1/customers/{ana.customer_id}", headers=agent)).json()
    tg_ident = next(i for i in profile["identities"] if i["kind"] == "telegram")
    assert tg_ident["linked_by_code"] and tg_ident["verified"]
    assert not next(i for i in profile["identities"] if i["kind"] == "email")["linked_by_code"]
    [listed] = profile["link_codes"]
    assert listed["status"] == "used" and listed["used_by"] == {
        "identity_id": tg_ident["id"], "kind": "telegram", "address": STRANGER, "removed": False}
    assert {c["id"] for c in profile["conversations"]} == {ana.conversation_id, before.conversation_id, linked.conversation_id}

    # Only agents, only identities a code attached, only of this customer.
    path = f"/api/v1/customers/{ana.customer_id}/identities/{tg_ident['id']}"
    assert (await client.delete(path, headers=integration)).status == 403
    assert (await client.delete(path)).status == 401
    email_ident = next(i for i in profile["identities"] if i["kind"] == "email")
    resp = await client.delete(f"/api/v1/customers/{ana.customer_id}/identities/{email_ident['id']}", headers=agent)
    assert resp.status == 409 and "not linked by a code" in (await resp.json())["error"]["message"]
    assert (await client.delete(f"/api/v1/customers/{before.customer_id}/identities/{tg_ident['id']}", headers=agent)).status == 404
    assert (await client.delete(f"/api/v1/customers/{ana.customer_id}/identities/999999", headers=agent)).status == 404

    resp = await client.delete(path, headers=agent)
    assert resp.status == 200, await resp.text()
    profile = await resp.json()
    assert [i["kind"] for i in profile["identities"]] == ["email"]
    assert [c["id"] for c in profile["conversations"]] == [ana.conversation_id]  # Mallory's chats left with Mallory
    assert profile["link_codes"][0]["used_by"]["removed"] is True
    [entry] = audit(engine, "identity.unlink")
    assert entry.actor == f"agent:{agent_id}" and entry.detail["identity"] == tg_ident["id"]
    assert STRANGER not in str(entry.detail)
    with read_tx(engine) as conn:
        ident = conn.execute(sa.select(Identity.__table__).where(Identity.__table__.c.id == tg_ident["id"])).one()
    assert ident.customer_id == entry.detail["new_customer"] and not ident.verified

    # What Mallory writes next is theirs, not Ana's.
    after = await ingest_message(app, tg("tg-3", "and what about order SO-1?"))
    assert after.customer_id == ident.customer_id != ana.customer_id
    assert after.conversation_id != ana.conversation_id


async def test_the_inbox_lists_codes_issues_one_and_takes_an_identity_off(hub):
    client, engine, agent, _, agent_id, csrf = hub
    app = client.server.app
    ana = await ingest_message(app, InboundMessage("email", "<1@example.com>", Sender("ana@example.com", "Ana"), "Hi"))
    cookies = {"servicehub_session": agent["Authorization"].split()[1]}
    page = await (await client.get(f"/inbox/customers/{ana.customer_id}", cookies=cookies)).text()
    assert "Issue a link code" in page
    # Without the form's token nothing is issued.
    resp = await client.post(f"/inbox/customers/{ana.customer_id}/link-codes", data={}, cookies=cookies)
    assert resp.status == 403 and audit(engine, "customer.link_code") == []
    resp = await client.post(f"/inbox/customers/{ana.customer_id}/link-codes", data={"_csrf": csrf}, cookies=cookies)
    assert resp.status == 201
    code = re.search(r"<code>([A-Za-z0-9_-]{20,})</code>", await resp.text()).group(1)
    [entry] = audit(engine, "customer.link_code")
    assert entry.actor == f"agent:{agent_id}"

    await ingest_message(app, tg("tg-1", f"/start {code}", link_code=code))
    page = await (await client.get(f"/inbox/customers/{ana.customer_id}", cookies=cookies)).text()
    assert "linked by code" in page and f"by agent:{agent_id}" in page and STRANGER in page
    action = re.search(r'action="(/inbox/customers/\d+/identities/\d+/unlink)"', page).group(1)
    assert (await client.post(action, data={}, cookies=cookies, allow_redirects=False)).status == 403
    resp = await client.post(action, data={"_csrf": csrf}, cookies=cookies, allow_redirects=False)
    assert resp.status == 303
    page = await (await client.get(f"/inbox/customers/{ana.customer_id}", cookies=cookies)).text()
    assert "linked by code" not in page and "(removed)" in page
    assert len(audit(engine, "identity.unlink")) == 1
