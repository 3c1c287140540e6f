"""An erased customer leaves no byte behind, on SQLite and PostgreSQL: a customer who wrote by email
(raw mail, an attachment), on Telegram (linked by a code), called twice (the raw transcripts kept
as files) and filled in the web form, and was answered; after the erasure, neither any file in the
data directory (blobs, the SQLite database with its write-ahead log, the outbound log) nor any
table of the store holds their name, addresses, number or words. A raw file another customer's
message also uses stays."""

from __future__ import annotations

import asyncio
import copy
import json
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from channels.telegram import SECRET_HEADER
from hub.auth.accounts import create_agent, create_token
from hub.config.settings import EmailSettings, ScmSettings, SmtpReceiverSettings
from hub.store.db import make_engine, read_tx
from hub.store.models import Message, Outbox, OutboxStatus
from hub.web.app import create_app
from hub.web.keys import BLOBS, REGISTRY
from tests.support.email import smtp_send
from tests.support.fake_telegram import FakeTelegram
from tests.support.store import every_text_value
from tests.support.telegram import UPDATES
from tests.support.transcribe import transcribe_json
from tests.support.waiting import wait_until
from tests.support.webform import token_of

pytestmark = pytest.mark.timeout(120)

SUPPORT = "support@shop.example"
TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "webhook-secret_1"
NAME = "Ottoline Fairweather"
EMAIL = "ottoline.fairweather@example.net"
PHONE = "+447700900461"
TG_USER = 5550001234
TG_USERNAME = "ottofairw"
# What would give them away: their name, addresses and number, and a word of each thing they said.
NEEDLES = ("Ottoline", "Fairweather", EMAIL, "ottoline.fairweather", "447700900461", str(TG_USER), TG_USERNAME,
           "Snorkelwattle", "Marmalisk", "Quokkanaut", "Zephyrbloom", "Brambletwist", "Pumpernickle")
SHARED_WORDS = "Hello, I would like to check on my delivery please."


def mail_with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{NAME} <{EMAIL}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Snorkelwattle kettle leaks"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content(f"Hello, my Snorkelwattle kettle leaks since Monday.\n\nRegards,\n{NAME}\n{PHONE}\n")
    msg.add_attachment(b"%PDF-1.4 receipt Marmalisk-88 for Ottoline Fairweather\n%%EOF\n", maintype="application",
                       subtype="pdf", filename="receipt.pdf")
    return bytes(msg)


def tg_update(update_id: int, text: str) -> dict:
    update = copy.deepcopy(json.loads((UPDATES / "message.json").read_text(encoding="utf-8")))
    body = update["message"]
    update["update_id"] = update_id
    body["message_id"] = update_id
    body["text"] = text
    for who in (body["from"], body["chat"]):
        who.update(id=TG_USER, first_name="Ottoline", last_name="Fairweather", username=TG_USERNAME)
    return update


def call(call_id: str, caller: str, name: str, transcript: dict) -> dict:
    return {"call_id": call_id, "caller": caller, "callee": "+442071234567", "direction": "inbound",
            "started_at": "2026-05-01T10:15:00Z", "customer_name": name, "transcript": transcript}


def files_naming(root: Path, needles=NEEDLES) -> list[tuple[str, str]]:
    """(file, needle) for every file under root whose bytes hold a needle, in any letter case."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        found += [(str(path.relative_to(root)), n) for n in needles if n.lower().encode() in data]
    return found


def store_naming(engine, needles=NEEDLES) -> list[tuple[str, str, str]]:
    return [(t, c, n) for t, c, v in every_text_value(engine) for n in needles if n.lower() in v.lower()]


@pytest.fixture
async def telegram():
    server = FakeTelegram()
    server.add_bot(TOKEN, id=110201543, username="ShopHelpBot")
    await server.start()
    yield server
    await server.close()


async def test_an_erased_customer_leaves_no_byte_in_the_data_dir_or_the_store(settings, telegram, tmp_path):
    settings = settings.model_copy(update={
        "email": EmailSettings(addresses=[SUPPORT], receiver=SmtpReceiverSettings(enabled=True, host="127.0.0.1", port=0)),
        "telegram_token": TOKEN, "telegram_webhook_secret": SECRET, "telegram_api_url": telegram.url,
        "public_url": "https://hub.example", "scm": ScmSettings(enabled=False, demand_push=False),
        "form_min_fill_seconds": 0.0,
    })
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin")
    pbx = {"Authorization": f"Bearer {create_token(engine, 'pbx', role='integration')}"}
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        resp = await client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "admin password"})
        admin = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        client.session.cookie_jar.clear()

        def messages() -> list:
            with read_tx(engine) as conn:
                return conn.execute(sa.select(Message.__table__).order_by(Message.__table__.c.id)).all()

        def inbound(channel: str) -> list:
            return [m for m in messages() if m.channel == channel and m.direction == "inbound"]

        # Email, through the SMTP receiver: raw mail and a PDF attachment.
        await smtp_send(app[REGISTRY].get("email").receiver.port, mail_with_attachment(), sender=EMAIL)
        [mail] = await wait_until(lambda: inbound("email"), what="the mail stored")
        conv_mail = mail.conversation_id
        customer = (await (await client.get(f"/api/v1/conversations/{conv_mail}", headers=admin)).json())["customer"]["id"]

        # Telegram, linked to the same customer by a code.
        code = (await (await client.post(f"/api/v1/customers/{customer}/link-codes", headers=admin)).json())["code"]
        for update_id, text in ((7001, f"/start {code}"), (7002, "My Quokkanaut teapot is chipped too")):
            resp = await client.post("/channels/telegram/webhook", data=json.dumps(tg_update(update_id, text)),
                                     headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})
            assert resp.status == 200
        await wait_until(lambda: len(inbound("telegram")) == 2, what="the Telegram messages stored")

        # Two calls: one about the kettle, one whose transcript document a bystander's call has too.
        ours = transcribe_json([("spk_0", "Thank you for calling."),
                                ("spk_1", f"This is {NAME}, the Zephyrbloom kettle I ordered leaks.")])
        shared = transcribe_json([("spk_0", "Thank you for calling."), ("spk_1", SHARED_WORDS)])
        for body in (call("call-ours", PHONE, NAME, ours), call("call-shared-1", PHONE, NAME, shared),
                     call("call-shared-2", "+442079460958", "Bob Bystander", shared)):
            resp = await client.post("/api/v1/calls", json=body, headers=pbx)
            assert resp.status == 201, await resp.text()
        calls = inbound("voice")
        raw = [c._mapping["metadata"]["raw_sha256"] for c in calls]
        assert raw[1] == raw[2] != raw[0]
        phone_customer = (await (await client.get(f"/api/v1/conversations/{calls[0].conversation_id}", headers=admin)).json())
        resp = await client.post(f"/api/v1/customers/{customer}/merge", json={"customer_id": phone_customer["customer"]["id"]},
                                 headers=admin)
        assert resp.status == 200, await resp.text()

        # The web form, with a file; it sends a confirmation email.
        page = await (await client.get("/forms/contact")).text()
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in {"_token": token_of(page), "name": NAME, "email": EMAIL, "phone": PHONE, "order": "",
                            "subject": "Brambletwist lid", "message": "The Brambletwist lid does not close"}.items():
            form.add_field(name, value)
        form.add_field("attachment", b"Pumpernickle receipt", filename="receipt.txt", content_type="text/plain")
        resp = await client.post("/forms/contact", data=form)
        assert resp.status == 200, await resp.text()
        await wait_until(lambda: inbound("webform"), what="the form stored")

        # The agent answers by email and on Telegram.
        for conv in (conv_mail, inbound("telegram")[-1].conversation_id):
            resp = await client.post(f"/api/v1/conversations/{conv}/replies", headers=admin,
                                     json={"text": f"Dear {NAME}, we will send a new Snorkelwattle lid."})
            assert resp.status == 201, await resp.text()

        def outbox_settled():
            with read_tx(engine) as conn:
                t = Outbox.__table__
                return not conn.execute(sa.select(t.c.id).where(t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending]))).first()

        await wait_until(outbox_settled, what="the outbox delivered")
        assert (settings.data_dir / "outbound.jsonl").exists()
        before_files = {n for _, n in files_naming(tmp_path)}
        assert {"Snorkelwattle", "Marmalisk", "Zephyrbloom", "Pumpernickle", "Fairweather"} <= before_files
        assert store_naming(engine)

        resp = await client.post(f"/api/v1/customers/{customer}/erase", json={"confirm": customer}, headers=admin)
        assert resp.status == 200, await resp.text()

        # While the hub runs on, nothing anywhere names them.
        assert files_naming(tmp_path) == []
        assert store_naming(engine) == []
        # The bystander's call keeps its transcript file (the one the erased customer's call shared).
        assert app[BLOBS].exists(raw[2]) and not app[BLOBS].exists(raw[0])
    finally:
        await asyncio.wait_for(client.close(), 30)
        engine.dispose()
    # And once it stopped (the database closed, its log folded in).
    assert files_naming(tmp_path) == []
