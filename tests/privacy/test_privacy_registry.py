"""Privacy is assembled from what each capability registers: no table that can hold something about
a customer is left out, and what an erasure used to miss is erased.

On SQLite and PostgreSQL: a colleague on Cc who wrote into another customer's conversation is
erased there too (text, attachments, raw mail); an erased customer's address leaves the To/Cc of
other customers' messages, with the raw source whose headers name them; their files go, the other
customer's stay."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import SQLModel

from hub.auth.accounts import create_agent
from hub.config.settings import ScmSettings
from hub.contract.messages import Attachment, InboundMessage, Sender, ThreadHints
from hub.conversations.search.message_index import index_all_messages
from hub.ingest.hub_link import ingest_message
from hub.privacy import registry
from hub.privacy.requests import erase_customer, export_customer
from hub.store.db import is_sqlite, make_engine, read_tx, write_tx
from hub.store.models import Identity, InboundSpool, Message, ScmFact, utcnow
from hub.web.app import create_app
from hub.web.keys import BLOBS
from tests.support.store import every_text_value

# The tables everything about a customer hangs from.
ANCHORS = {"customer", "conversation", "message"}
ANCHOR_COLUMNS = {"customer_id", "conversation_id", "message_id"}


def unregistered(metadata: sa.MetaData, registered: set[str]) -> list[str]:
    """Tables that reference a customer, a conversation or a message (a foreign key to one, or a
    column named after one) and have no registered eraser."""
    missing = []
    for table in metadata.sorted_tables:
        refers = any(fk.column.table.name in ANCHORS for fk in table.foreign_keys) or bool(ANCHOR_COLUMNS & set(table.c.keys()))
        if refers and table.name not in registered:
            missing.append(table.name)
    return missing


def test_every_table_about_customers_conversations_or_messages_has_a_registered_eraser():
    parts = registry.parts()
    assert unregistered(SQLModel.metadata, set(parts)) == []
    assert all(callable(p.erase) and callable(p.export) for p in parts.values())
    # The anchors themselves are registered too, and nothing is registered for a table that is not in the store.
    assert ANCHORS <= set(parts) and set(parts) <= set(SQLModel.metadata.tables)


def test_the_check_finds_a_table_nobody_registered():
    meta = sa.MetaData()
    sa.Table("customer", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("loyalty_card", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("holder", sa.ForeignKey("customer.id")))
    sa.Table("chat_rating", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("conversation_id", sa.Integer))
    sa.Table("holiday", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("day", sa.Date))
    assert unregistered(meta, {"customer"}) == ["chat_rating", "loyalty_card"]


# --- the gaps ------------------------------------------------------------------------------------------

SUPPORT = "support@shop.example"
OWNER, OWNER_EMAIL = "Olga Ownership", "olga.ownership@corp.example"
COLLEAGUE, COLLEAGUE_EMAIL = "Casimir Colleaguesson", "Casimir.Colleaguesson@corp.example"
THEIRS = ("Casimir", "Colleaguesson", "casimir.colleaguesson@corp", "GLIMMERWASP-51", "Thistledown")
OWNER_WORDS = "Our Frobnicator order FROB-2210 never arrived"
OWNER_FILE = b"%PDF-1.4 Olga's purchase order FROB-2210"
COLLEAGUE_FILE = b"%PDF-1.4 Casimir's badge GLIMMERWASP-51"


def raw_mail(sender: str, to: str, cc: str | None, msgid: str, subject: str, body: str, in_reply_to: str | None = None) -> bytes:
    head = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {msgid}"]
    head += [f"Cc: {cc}"] if cc else []
    head += [f"In-Reply-To: {in_reply_to}"] if in_reply_to else []
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode()


@pytest.fixture
async def app_and_engine(settings):
    app = create_app(settings.model_copy(update={"scm": ScmSettings(enabled=False, demand_push=False)}))
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "admin@example.com", "admin password", role="admin")
    client = TestClient(TestServer(app))
    await client.start_server()
    yield app, engine
    await client.close()
    engine.dispose()


def searched(engine, word: str) -> list:
    """SQLite: the messages the full-text index finds a word in."""
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT rowid FROM search_message WHERE search_message MATCH ?", (f'"{word}"',)).all()


def traces(engine, needles=THEIRS) -> list[tuple[str, str, str]]:
    return [(t, c, n) for t, c, v in every_text_value(engine) for n in needles if n.lower() in v.lower()]


async def test_a_colleague_on_cc_is_erased_from_the_conversation_they_wrote_into(app_and_engine):
    app, engine = app_and_engine
    blobs = app[BLOBS]
    first_id = "<frob-1@corp.example>"
    first = await ingest_message(app, InboundMessage(
        channel="email", external_id=first_id, sender=Sender(OWNER_EMAIL, OWNER, "email"), subject="Frobnicator order",
        text=OWNER_WORDS, attachments=(Attachment("order.pdf", "application/pdf", data=OWNER_FILE),),
        metadata={"to": [SUPPORT], "cc": [COLLEAGUE_EMAIL], "reply_to": [], "envelope": {"rcpt_tos": [SUPPORT, COLLEAGUE_EMAIL.lower()]}},
        raw=raw_mail(f"{OWNER} <{OWNER_EMAIL}>", SUPPORT, f"{COLLEAGUE} <{COLLEAGUE_EMAIL}>", first_id, "Frobnicator order", OWNER_WORDS),
    ))
    # The colleague answers all: a recipient of the first mail may write into its conversation.
    reply_id = "<frob-2@corp.example>"
    words = "Casimir here: my badge GLIMMERWASP-51 was on the Thistledown delivery"
    reply = await ingest_message(app, InboundMessage(
        channel="email", external_id=reply_id, sender=Sender(COLLEAGUE_EMAIL, COLLEAGUE, "email"), subject="Re: Frobnicator order",
        text=words, attachments=(Attachment("badge.pdf", "application/pdf", data=COLLEAGUE_FILE),),
        thread=ThreadHints(in_reply_to=(first_id,)), metadata={"to": [SUPPORT], "cc": [OWNER_EMAIL]},
        raw=raw_mail(f"{COLLEAGUE} <{COLLEAGUE_EMAIL}>", SUPPORT, OWNER_EMAIL, reply_id, "Re: Frobnicator order", words, first_id),
    ))
    assert reply.conversation_id == first.conversation_id and reply.customer_id != first.customer_id
    with read_tx(engine) as conn:
        msgs = {m.id: m for m in conn.execute(sa.select(Message.__table__))}
    first_raw, reply_raw = msgs[first.message_id].metadata["raw_sha256"], msgs[reply.message_id].metadata["raw_sha256"]
    # The first mail was spooled as received: its raw source names the colleague in its Cc header.
    now = utcnow()
    with write_tx(engine) as conn:
        conn.execute(InboundSpool.__table__.insert().values(channel="email", key="uid-frob-1", payload={"rcpt_tos": [SUPPORT]},
                                                            blob_sha256=first_raw, status="done", message_id=first.message_id,
                                                            created_at=now, next_attempt_at=now))
        # What the back end said about the badge the colleague asked about, in the owner's conversation.
        conn.execute(ScmFact.__table__.insert().values(conversation_id=first.conversation_id, message_id=reply.message_id,
                                                       kind="order", subject="GLIMMERWASP-51", created_at=now))
    assert traces(engine)
    if is_sqlite(engine):
        index_all_messages(engine)
        assert searched(engine, "GLIMMERWASP"), "indexed before the erasure"

    # The colleague's export holds what they wrote in the other customer's conversation.
    export = export_customer(engine, reply.customer_id, blobs=blobs)
    [elsewhere] = export["messages_in_other_conversations"]
    assert elsewhere["id"] == reply.message_id and "GLIMMERWASP-51" in elsewhere["text"]
    assert [a["filename"] for a in elsewhere["attachments"]] == ["badge.pdf"]
    assert export["conversations"] == [] and [f["subject"] for f in export["other"]["scm_fact"]] == ["GLIMMERWASP-51"]

    result = erase_customer(engine, blobs, reply.customer_id, "cli")
    assert result["erased"]["messages_in_other_conversations"] == 1 and result["erased"]["messages_naming_them"] == 1
    assert result["erased"]["attachments"] == 1 and result["erased"]["identities"] == 1

    # Nothing in the store names the colleague; their files are gone, the owner's attachment stays.
    assert traces(engine) == []
    if is_sqlite(engine):
        assert searched(engine, "GLIMMERWASP") == [] and searched(engine, "Thistledown") == []
    with read_tx(engine) as conn:
        msgs = {m.id: m for m in conn.execute(sa.select(Message.__table__))}
        spool = conn.execute(sa.select(InboundSpool.__table__)).all()
    theirs, owners = msgs[reply.message_id], msgs[first.message_id]
    assert (theirs.text, theirs.identity_id, theirs.conversation_id) == ("", None, first.conversation_id)
    assert not blobs.exists(reply_raw) and not blobs.exists(elsewhere["attachments"][0]["sha256"])
    # The owner's message keeps its words and its other recipients, without the colleague's address or the raw source.
    assert owners.text == OWNER_WORDS and owners.identity_id is not None
    assert owners.metadata["to"] == [SUPPORT] and owners.metadata["cc"] == [] and owners.metadata["envelope"]["rcpt_tos"] == [SUPPORT]
    assert "raw_sha256" not in owners.metadata and not blobs.exists(first_raw) and spool == []
    assert traces(engine, (OWNER_WORDS, "Frobnicator")), "the owner's conversation is theirs and stays"
    [owner_export] = export_customer(engine, first.customer_id, blobs=blobs)["conversations"]
    [owner_file] = [a for m in owner_export["messages"] for a in m["attachments"]]
    assert blobs.exists(owner_file["sha256"])


async def test_a_contact_card_or_a_forward_naming_them_in_another_customers_chat_loses_them(app_and_engine):
    """Another customer shares the erased customer's contact card (phone, Telegram id) and forwards
    a message of theirs; those records leave the other customer's metadata. The same digits as a
    message or update id elsewhere are not theirs and stay."""
    app, engine = app_and_engine
    theirs_id, theirs_phone = "7001234567", "+447700900123"
    subject = await ingest_message(app, InboundMessage(
        channel="telegram", external_id="tg-1", sender=Sender(theirs_id, "Casimir Colleaguesson", "telegram"),
        subject=None, text="Hello from Casimir", metadata={"chat_id": int(theirs_id)},
    ))
    with write_tx(engine) as conn:  # their phone, added by an agent
        conn.execute(Identity.__table__.insert().values(customer_id=subject.customer_id, kind="phone", address=theirs_phone,
                                                        created_at=utcnow()))
    card = {"phone_number": theirs_phone[1:], "first_name": "Casimir", "last_name": "Colleaguesson", "user_id": int(theirs_id)}
    shared = await ingest_message(app, InboundMessage(
        channel="telegram", external_id="tg-2", sender=Sender("7009999999", "Olga Ownership", "telegram"), subject=None,
        text="[contact Casimir Colleaguesson]", metadata={"chat_id": 7009999999, "contact": card, "message_id": 11},
    ))
    forwarded = await ingest_message(app, InboundMessage(
        channel="telegram", external_id="tg-3", sender=Sender("7009999999", "Olga Ownership", "telegram"), subject=None,
        text="look what he wrote", metadata={
            "chat_id": 7009999999, "forwarded": True,
            "forward_from": {"id": int(theirs_id), "name": "Casimir Colleaguesson", "username": "thistledown"},
            "forward_origin": {"type": "user", "sender_user": {"id": int(theirs_id), "first_name": "Casimir"}},
        },
    ))
    same_digits = await ingest_message(app, InboundMessage(
        channel="telegram", external_id="tg-4", sender=Sender("7009999999", "Olga Ownership", "telegram"), subject=None,
        text="order 7001234567?", metadata={"chat_id": 7009999999, "update_id": int(theirs_id), "message_id": int(theirs_id),
                                            "order": {"id": int(theirs_id), "total": 12}},
    ))
    assert len({shared.customer_id, forwarded.customer_id, same_digits.customer_id} - {subject.customer_id}) == 1

    result = erase_customer(engine, app[BLOBS], subject.customer_id, "cli")
    assert result["erased"]["messages_naming_them"] == 2
    with read_tx(engine) as conn:
        meta = {m.id: m.metadata for m in conn.execute(sa.select(Message.__table__))}
    assert "contact" not in meta[shared.message_id] and meta[shared.message_id]["message_id"] == 11
    assert "forward_from" not in meta[forwarded.message_id] and "sender_user" not in meta[forwarded.message_id]["forward_origin"]
    assert meta[forwarded.message_id]["forwarded"] is True
    assert meta[same_digits.message_id]["update_id"] == int(theirs_id), "an update id with the same digits is not theirs"
    assert meta[same_digits.message_id]["order"] == {"id": int(theirs_id), "total": 12}, "nor a record that is not about a person"
    # (The other customer's own words, "[contact Casimir Colleaguesson]", are theirs and stay.)
    assert traces(engine, ("thistledown", theirs_phone[1:])) == []
