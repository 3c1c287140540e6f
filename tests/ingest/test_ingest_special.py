"""Ingest of what is not a plain new message: edits, machine-written mail, button presses, raw
bytes for audit, identities a channel verified, and one-time link codes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.customers.linking import issue_code
from hub.ingest.pipeline import LINK_INVALID_TEXT, LINKED_TEXT, ingest
from hub.store.blobs import BlobStore
from hub.store.models import Conversation, Customer, Identity, LinkCode, Message, Outbox, utcnow

conv_t, msg_t, ident_t, cust_t = Conversation.__table__, Message.__table__, Identity.__table__, Customer.__table__


def rows(engine, table, *where):
    with engine.connect() as conn:
        return conn.execute(select(table).where(*where).order_by(table.c.id)).all()


def tg(ext, text="hi", user="4242", **kw):
    return InboundMessage("telegram", ext, Sender(user, "Ben"), text, thread=ThreadHints(thread_key=user), **kw)


def test_an_edit_replaces_the_text_and_keeps_the_old_one(engine):
    first = ingest(engine, tg("m1", "I ordered 2 kettles"))
    edit = ingest(engine, tg("m1", "I ordered 3 kettles", kind="edit"))
    assert (edit.message_id, edit.created, edit.edited) == (first.message_id, False, True)
    again = ingest(engine, tg("m1", "I ordered 3 kettles", kind="edit"))  # redelivered edit
    assert again.message_id == first.message_id
    [msg] = rows(engine, msg_t)
    assert msg.text == "I ordered 3 kettles"
    assert [e["text"] for e in msg.metadata["edits"]] == ["I ordered 2 kettles"]


def test_an_edit_of_an_unknown_message_is_stored_as_a_message(engine):
    r = ingest(engine, tg("m9", "edited before we saw it", kind="edit"))
    assert r.created and rows(engine, msg_t)[0].text == "edited before we saw it"


def test_auto_reply_joins_its_conversation_without_reopening_it(engine):
    a = ingest(engine, InboundMessage("email", "<1@x>", Sender("ana@example.com"), "help", subject="Help"))
    with engine.begin() as conn:
        conn.execute(update(conv_t).values(status="resolved", resolved_at=utcnow() - timedelta(hours=1)))
    auto = InboundMessage("email", "<2@x>", Sender("ana@example.com"), "I am out of office", subject="Auto: Help",
                          thread=ThreadHints(in_reply_to=("<1@x>",)), flags=("auto_reply",))
    r = ingest(engine, auto)
    assert r.conversation_id == a.conversation_id
    [conv] = rows(engine, conv_t)
    assert conv.status == "resolved"
    assert rows(engine, msg_t)[-1].metadata["flags"] == ["auto_reply"]


def test_machine_mail_with_nowhere_to_go_does_not_open_conversations(engine):
    for i in range(5):
        ingest(engine, InboundMessage("email", f"<b{i}@x>", Sender("mailer-daemon@example.com"), "Delivery failed", flags=("bounce",)))
    statuses = [c.status for c in rows(engine, conv_t)]
    assert statuses and set(statuses) == {"closed"}


def test_a_button_press_is_a_system_event_that_reopens_nothing(engine):
    a = ingest(engine, tg("m1"))
    with engine.begin() as conn:
        conn.execute(update(conv_t).values(status="resolved", resolved_at=utcnow()))
    r = ingest(engine, tg("cb1", "csat:5", kind="callback"))
    assert r.conversation_id == a.conversation_id
    assert rows(engine, msg_t)[-1].direction == "system"
    assert rows(engine, conv_t)[0].status == "resolved"


def test_raw_bytes_are_kept_for_audit(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    raw = b"From: ana@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    ingest(engine, InboundMessage("email", "<r@x>", Sender("ana@example.com"), "hello", raw=raw), blobs=blobs)
    sha = rows(engine, msg_t)[0].metadata["raw_sha256"]
    assert blobs.get(sha) == raw


def test_a_verified_identity_merges_the_customer_it_belonged_to(engine):
    call = ingest(engine, InboundMessage("voice", "call-1", Sender("+442079460958"), "called about my order"))
    r = ingest(engine, tg("m1", "here is my number", verified_identities=(Sender("+44 20 7946 0958", kind="phone"),)))
    assert r.customer_id != call.customer_id
    phone = rows(engine, ident_t, ident_t.c.kind == "phone")[0]
    assert phone.customer_id == r.customer_id and phone.verified
    old = rows(engine, cust_t, cust_t.c.id == call.customer_id)[0]
    assert old.merged_into == r.customer_id
    assert {c.customer_id for c in rows(engine, conv_t)} == {r.customer_id}


def test_a_new_verified_identity_is_attached(engine):
    r = ingest(engine, tg("m1", verified_identities=(Sender("+4930901820", kind="phone"),)))
    [phone] = rows(engine, ident_t, ident_t.c.kind == "phone")
    assert (phone.customer_id, phone.address, phone.verified) == (r.customer_id, "+4930901820", True)


def test_a_link_code_ties_the_sender_to_the_customer_it_was_issued_to(engine):
    known = ingest(engine, InboundMessage("email", "<1@x>", Sender("ana@example.com"), "hello"))
    code, _ = issue_code(engine, known.customer_id)
    r = ingest(engine, tg("start-1", f"/start {code}", link_code=code))
    assert r.customer_id == known.customer_id
    # It says so: the web app wakes the outbox worker on it (and on nothing else an ingest does).
    assert r.queued_outbound and not known.queued_outbound
    tg_ident = rows(engine, ident_t, ident_t.c.kind == "telegram")[0]
    assert tg_ident.customer_id == known.customer_id and tg_ident.verified
    # The customer hears back, through the outbox, on Telegram.
    [out] = rows(engine, Outbox.__table__)
    assert out.payload["text"] == LINKED_TEXT and out.channel == "telegram" and out.payload["recipient"] == "4242"
    # The code works once.
    other = ingest(engine, tg("start-2", f"/start {code}", user="9999", link_code=code))
    assert other.customer_id != known.customer_id and other.queued_outbound
    assert rows(engine, Outbox.__table__)[-1].payload["text"] == LINK_INVALID_TEXT


def test_a_link_code_merges_an_existing_telegram_customer(engine):
    known = ingest(engine, InboundMessage("email", "<1@x>", Sender("ana@example.com"), "hello"))
    earlier = ingest(engine, tg("m0", "hi from telegram"))
    code, _ = issue_code(engine, known.customer_id)
    ingest(engine, tg("m1", f"/start {code}", link_code=code))
    assert rows(engine, cust_t, cust_t.c.id == earlier.customer_id)[0].merged_into == known.customer_id
    assert {c.customer_id for c in rows(engine, conv_t)} == {known.customer_id}


def test_an_expired_link_code_links_nothing(engine):
    known = ingest(engine, InboundMessage("email", "<1@x>", Sender("ana@example.com"), "hello"))
    code, _ = issue_code(engine, known.customer_id)
    with engine.begin() as conn:
        conn.execute(update(LinkCode.__table__).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = ingest(engine, tg("m1", f"/start {code}", link_code=code))
    assert r.customer_id != known.customer_id
