"""Privacy requests, on SQLite and PostgreSQL: export everything about a customer, and
erase them leaving no trace of their messages, names or addresses in any table of the store nor
in the search indexes, while the reports' aggregate figures stay the same. Admin only, audited."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent, create_token
from hub.config.settings import ScmSettings
from hub.contract.messages import Attachment, InboundMessage, Sender
from hub.ingest.hub_link import ingest_message
from hub.reports import queries as reports
from hub.store.db import is_sqlite, make_engine, read_tx, write_tx
from hub.store.models import AuditLog, Csat, Escalation, InboundSpool, KbArticle, KbChunk, KbFeedback, ReplyDraft, ScmFact, utcnow
from hub.web.app import create_app
from hub.web.keys import BLOBS
from tests.support.inbox import sign_in
from tests.support.store import every_text_value

NAME = "Wilhelmina Quackenbush"
EMAIL = "wilhelmina.q@example.org"
PHONE = "+4915112345678"
SECRET = "ZORBLATT-7781"
SUBJECT = "Broken Zanzibar kettle"
NEEDLES = ("Wilhelmina", "Quackenbush", EMAIL, PHONE, SECRET, "Zanzibar")
FILE = b"%PDF-1.4 receipt of " + SECRET.encode()


@pytest.fixture
async def hub(settings):
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin", name="Ada Admin")
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Arno Agent")
    tokens = {"integration": create_token(engine, "shop", role="integration")}
    client = TestClient(TestServer(app))
    await client.start_server()
    for role in ("admin", "agent"):
        resp = await client.post("/api/v1/auth/login", json={"email": f"{role}@example.com", "password": f"{role} password"})
        tokens[role] = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    yield client, engine, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    await client.close()
    engine.dispose()


async def seed(client, engine, auth) -> dict:
    """One customer with everything the hub can hold about someone, and a bystander."""
    app = client.server.app
    mail = await ingest_message(app, InboundMessage(
        channel="email", external_id=f"<{SECRET}@example.org>", sender=Sender(EMAIL, NAME, "email"),
        subject=SUBJECT, text=f"My kettle broke, order code {SECRET}. Regards, {NAME}",
        html=f"<p>My kettle broke, <b>{SECRET}</b></p>",
        attachments=(Attachment("receipt.pdf", "application/pdf", data=FILE),),
        metadata={"from": f"{NAME} <{EMAIL}>", "intent": "complaint"},
    ))
    call = await ingest_message(app, InboundMessage(
        channel="voice", external_id="call-1", sender=Sender(PHONE, NAME, "phone"), text=f"Caller {NAME} about {SECRET}"))
    other = await ingest_message(app, InboundMessage(
        channel="email", external_id="<other@example.com>", sender=Sender("bob@example.com", "Bob Bystander", "email"),
        subject="Where is my parcel", text="Parcel SO-1 please"))
    cid, conv = mail.customer_id, mail.conversation_id
    # The phone call came in as a second profile; an admin merged it into the first.
    resp = await client.post(f"/api/v1/customers/{cid}/merge", json={"customer_id": call.customer_id}, headers=auth["admin"])
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/conversations/{conv}/replies", json={"text": f"Dear {NAME}, sorry about {SECRET}"},
                             headers=auth["agent"])
    assert resp.status == 201
    reply_id = (await resp.json())["id"]
    assert (await client.post(f"/api/v1/conversations/{conv}/notes", json={"text": f"{NAME} is upset"},
                              headers=auth["agent"])).status == 201
    assert (await client.post(f"/api/v1/customers/{cid}/link-codes", headers=auth["agent"])).status == 201
    assert (await client.patch(f"/api/v1/conversations/{conv}", json={"status": "resolved"}, headers=auth["agent"])).status == 200
    now = utcnow()
    with write_tx(engine) as conn:
        conn.execute(sa.update(reports.conversation_t).where(reports.conversation_t.c.id == conv).values(intent="complaint"))
        conn.execute(Csat.__table__.insert().values(conversation_id=conv, score=2, comment=f"{SECRET} still broken", created_at=now))
        conn.execute(ScmFact.__table__.insert().values(conversation_id=conv, message_id=mail.message_id, kind="order",
                                                     subject=SECRET, payload={"customer": NAME}, created_at=now))
        conn.execute(ReplyDraft.__table__.insert().values(conversation_id=conv, message_id=mail.message_id,
                                                        text=f"Hello {NAME}", reason="privacy", created_at=now))
        conn.execute(Escalation.__table__.insert().values(conversation_id=conv, reason=f"{NAME} wants a refund",
                                                        target="webhook", created_by="agent:1", created_at=now, updated_at=now))
        art = conn.execute(KbArticle.__table__.insert().values(
            title="Kettle refunds", body=f"As we told {NAME}: refunds take a week", format="text", language="en", tags=[],
            published=False, source_key=f"capture:{reply_id}", captured_from_message_id=reply_id, created_by="agent:2",
            created_at=now, updated_at=now)).inserted_primary_key[0]
        conn.execute(KbChunk.__table__.insert().values(article_id=art, passage_id=f"p{art}", position=0,
                                                     text=f"As we told {NAME}"))
        # An agent's verdict on a suggestion keeps the customer's question it was about.
        faq = conn.execute(KbArticle.__table__.insert().values(
            title="Kettle care", body="Descale monthly.", format="text", language="en", tags=[], published=True,
            created_by="cli", created_at=now, updated_at=now)).inserted_primary_key[0]
        conn.execute(KbFeedback.__table__.insert().values(conversation_id=conv, article_id=faq, verdict="used", created_at=now,
                                                        question=f"My kettle broke, order code {SECRET}",
                                                        question_vector=b"\0" * 8, vector_model="m"))
        sha = app[BLOBS].put(f"From: {NAME} <{EMAIL}>\r\n\r\n{SECRET}".encode())
        conn.execute(InboundSpool.__table__.insert().values(
            channel="email", key="uid-1", payload={"from": EMAIL}, blob_sha256=sha, status="done",
            message_id=mail.message_id, created_at=now, next_attempt_at=now))
    return {"customer": cid, "merged": call.customer_id, "conversation": conv, "call": call.conversation_id,
            "other": other, "raw_sha": sha}


def traces(engine) -> list[tuple[str, str, str]]:
    return [(t, c, needle) for t, c, v in every_text_value(engine) for needle in NEEDLES if needle.lower() in v.lower()]


def figures(engine):
    rng = reports.parse_range((utcnow() - timedelta(days=2)).date().isoformat(), None, "UTC")
    return {name: reports.run(engine, name, rng)["rows"] for name in ("volume", "response_times", "csat", "intents")}


async def test_export_holds_everything_and_erase_leaves_no_trace(hub):
    client, engine, auth = hub
    s = await seed(client, engine, auth)
    cid = s["customer"]
    before = figures(engine)
    assert traces(engine), "the seed should have put the customer in the store"

    resp = await client.get(f"/api/v1/customers/{cid}/export", headers=auth["admin"])
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    export = await resp.json()
    assert export["customer"]["name"] == NAME and [m["id"] for m in export["merged_customers"]] == [s["merged"]]
    assert {(i["kind"], i["address"]) for i in export["identities"]} == {("email", EMAIL), ("phone", PHONE)}
    convs = {c["id"]: c for c in export["conversations"]}
    assert set(convs) == {s["conversation"], s["call"]}
    conv = convs[s["conversation"]]
    texts = [m["text"] for m in conv["messages"]]
    assert any(SECRET in t for t in texts) and any(t == f"{NAME} is upset" for t in texts)
    inbound = next(m for m in conv["messages"] if m["direction"] == "inbound")
    assert SECRET in inbound["html"] and inbound["metadata"]["from"] == f"{NAME} <{EMAIL}>"
    [att] = inbound["attachments"]
    import base64
    assert att["filename"] == "receipt.pdf" and base64.b64decode(att["content_base64"]) == FILE
    assert [c["comment"] for c in conv["csat"]] == [f"{SECRET} still broken"]
    assert conv["scm_facts"][0]["subject"] == SECRET and conv["reply_drafts"][0]["text"] == f"Hello {NAME}"
    assert conv["escalations"][0]["reason"] == f"{NAME} wants a refund"
    assert [n["text"] for n in export["notes"]] == [f"{NAME} is upset"]
    assert export["outbox"] and export["link_codes"] and export["kb_articles_captured"]
    assert SECRET.encode() in base64.b64decode(export["inbound_spool"][0]["raw_base64"])
    assert {"customer.merge", "customer.link_code"} <= {a["action"] for a in export["audit"]}

    # Only admins; a wrong confirmation changes nothing.
    assert (await client.get(f"/api/v1/customers/{cid}/export", headers=auth["agent"])).status == 403
    assert (await client.post(f"/api/v1/customers/{cid}/erase", json={"confirm": cid}, headers=auth["agent"])).status == 403
    assert (await client.post(f"/api/v1/customers/{cid}/erase", json={"confirm": cid}, headers=auth["integration"])).status == 403
    assert (await client.post(f"/api/v1/customers/{cid}/erase", json={"confirm": cid})).status == 401
    resp = await client.post(f"/api/v1/customers/{cid}/erase", json={"confirm": cid + 1}, headers=auth["admin"])
    assert resp.status == 422
    assert (await client.post(f"/api/v1/customers/{s['merged']}/erase", json={"confirm": s["merged"]},
                              headers=auth["admin"])).status == 409
    assert (await client.get("/api/v1/customers/999999/export", headers=auth["admin"])).status == 404
    assert traces(engine)

    resp = await client.post(f"/api/v1/customers/{cid}/erase", json={"confirm": cid, "reason": "request 42"},
                             headers=auth["admin"])
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["erased"]["identities"] == 2 and result["erased"]["attachments"] == 1

    assert traces(engine) == []
    with read_tx(engine) as conn:
        verdict = conn.execute(sa.select(KbFeedback.__table__).where(KbFeedback.__table__.c.conversation_id == s["conversation"])).one()
    assert verdict.verdict == "used" and verdict.question is None and verdict.question_vector is None  # the count stays
    assert not client.server.app[BLOBS].path(s["raw_sha"]).exists()
    assert not client.server.app[BLOBS].path(att["sha256"]).exists()
    for needle in ("Wilhelmina", "Quackenbush", "wilhelmina.q@", "Zanzibar", "15112345"):
        page = await (await client.get("/api/v1/conversations", params={"q": needle}, headers=auth["agent"])).json()
        assert page["items"] == [], needle
    if is_sqlite(engine):
        with engine.connect() as conn:
            for needle in ("Wilhelmina", "Quackenbush", "example.org", "Zanzibar"):
                hits = conn.exec_driver_sql("SELECT rowid FROM search_text WHERE search_text MATCH ?",
                                            (f'"{needle}"',)).all()
                assert hits == [], needle
            assert conn.exec_driver_sql("SELECT count(*) FROM search_pending").scalar() == 0

    # The figures do not move; the bystander is untouched; the profile is a placeholder.
    assert figures(engine) == before
    resp = await client.get(f"/api/v1/customers/{cid}", headers=auth["agent"])
    assert (await resp.json())["name"] == f"erased customer #{cid}"
    page = await (await client.get("/api/v1/conversations", params={"q": "bob@example.com"}, headers=auth["agent"])).json()
    assert [c["id"] for c in page["items"]] == [s["other"].conversation_id]
    with read_tx(engine) as conn:
        actions = [(r.action, r.actor) for r in conn.execute(sa.select(AuditLog.__table__).order_by(AuditLog.__table__.c.id))]
    assert ("customer.export", "agent:1") in actions and ("customer.erase", "agent:1") in actions

    # Exporting the erased customer now shows the anonymised shell.
    export = await (await client.get(f"/api/v1/customers/{cid}/export", headers=auth["admin"])).json()
    assert export["identities"] == [] and all(m["text"] == "" for c in export["conversations"] for m in c["messages"])


async def test_privacy_page_for_admins(hub):
    client, engine, auth = hub
    s = await seed(client, engine, auth)
    cid = s["customer"]
    url = f"/inbox/customers/{cid}/privacy"
    assert (await client.get(url, allow_redirects=False)).status == 303  # no session: sign in first
    await sign_in(client, "agent@example.com", "agent password")
    assert (await client.get(url)).status == 403
    client.session.cookie_jar.clear()
    await sign_in(client, "admin@example.com", "admin password")
    resp = await client.get(url)
    html = await resp.text()
    assert resp.status == 200 and NAME in html and f"/api/v1/customers/{cid}/export" in html
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    # The export link works with the session; a form without the CSRF token or the confirmation does nothing.
    export = await client.get(f"/api/v1/customers/{cid}/export")
    assert export.status == 200 and (await export.json())["customer"]["name"] == NAME
    assert (await client.post(url, data={"confirm": str(cid)})).status == 403
    resp = await client.post(url, data={"_csrf": csrf, "confirm": "yes"})
    assert resp.status == 422 and "confirmation" in await resp.text()
    assert traces(engine)
    resp = await client.post(url, data={"_csrf": csrf, "confirm": str(cid), "reason": "request 7"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{url}?done=erased"
    assert traces(engine) == []
    html = await (await client.get(f"{url}?done=erased")).text()
    assert "was erased" in html and f"erased customer #{cid}" in html
    assert (await client.get("/inbox/customers/999999/privacy")).status == 404


async def test_cli_export_and_erase(hub, settings, tmp_path, monkeypatch):
    client, engine, auth = hub
    s = await seed(client, engine, auth)
    cid = s["customer"]
    from hub.cli import main as cli

    monkeypatch.setenv("SERVICEHUB_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SERVICEHUB_DATABASE_URL", settings.effective_database_url)
    out = tmp_path / "export.json"
    assert await asyncio.to_thread(cli.main, ["customer", "export", str(cid), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["customer"]["name"] == NAME
    assert await asyncio.to_thread(cli.main, ["customer", "erase", str(cid)]) == 2  # no --yes
    assert traces(engine)
    assert await asyncio.to_thread(cli.main, ["customer", "erase", str(cid), "--yes", "--reason", "ticket 7"]) == 0
    assert traces(engine) == []
    assert await asyncio.to_thread(cli.main, ["customer", "erase", "999999", "--yes"]) == 2
