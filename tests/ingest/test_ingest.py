"""The one ingest path, on SQLite and PostgreSQL: identities, customers, threading, dedupe,
sanitising, attachments, and safety under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from hub.contract.errors import RejectedInput
from hub.contract.messages import Attachment, InboundMessage, Sender, ThreadHints
from hub.ingest.pipeline import IngestPolicy, ingest, ingest_many
from hub.store.blobs import BlobStore
from hub.store.models import Conversation, Customer, Identity, Message, utcnow


def email(ext, sender="ana@example.com", text_="hello", subject="Order", reply_to=(), name="Ana"):
    return InboundMessage("email", ext, Sender(sender, name), text_, subject=subject, thread=ThreadHints(in_reply_to=reply_to))


def tg(ext, user="4242", chat=None, text_="hi"):
    return InboundMessage("telegram", ext, Sender(user, "Ben"), text_, thread=ThreadHints(thread_key=chat or user))


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


def set_status(engine, conversation_id, status, resolved_ago=None):
    values = {"status": status}
    if resolved_ago is not None:
        values["resolved_at"] = utcnow() - resolved_ago
    with engine.begin() as conn:
        conn.execute(update(Conversation.__table__).where(Conversation.__table__.c.id == conversation_id).values(**values))


def test_new_sender_gets_customer_identity_and_conversation(engine):
    r = ingest(engine, email("<1@x>", sender="Ana@Example.com"))
    assert r.created
    with engine.connect() as conn:
        ident = conn.execute(select(Identity.__table__)).one()
        conv = conn.execute(select(Conversation.__table__)).one()
        msg = conn.execute(select(Message.__table__)).one()
    assert (ident.kind, ident.address, ident.customer_id) == ("email", "ana@example.com", r.customer_id)
    assert (conv.customer_id, conv.channel, conv.status, conv.subject) == (r.customer_id, "email", "open", "Order")
    assert (msg.direction, msg.text, msg.identity_id) == ("inbound", "hello", ident.id)


def test_same_address_in_other_spelling_is_the_same_customer(engine):
    a = ingest(engine, email("<1@x>", sender="Ana@Example.com"))
    b = ingest(engine, email("<2@x>", sender="  ana@EXAMPLE.com ", subject="Other thing"))
    assert a.customer_id == b.customer_id
    assert count(engine, Customer) == 1


def test_same_display_name_never_merges_customers(engine):
    a = ingest(engine, email("<1@x>", sender="ana@example.com", name="Ana Silva"))
    b = ingest(engine, email("<2@x>", sender="ana.silva@other.example", name="Ana Silva"))
    assert a.customer_id != b.customer_id


def test_replay_is_idempotent_and_returns_the_same_ids(engine):
    first = ingest(engine, email("<1@x>"))
    for _ in range(3):
        again = ingest(engine, email("<1@x>", text_="changed text is ignored"))
        assert again == type(first)(first.customer_id, first.conversation_id, first.message_id, False)
    assert count(engine, Message) == 1
    with engine.connect() as conn:
        assert conn.execute(select(Message.__table__.c.text)).scalar_one() == "hello"


def test_same_external_id_on_another_channel_is_another_message(engine):
    ingest(engine, InboundMessage("api", "42", Sender("a@example.com"), "x"))
    r = ingest(engine, InboundMessage("webform", "42", Sender("a@example.com"), "y"))
    assert r.created
    assert count(engine, Message) == 2


def test_email_reply_threads_by_in_reply_to(engine):
    a = ingest(engine, email("<1@x>"))
    b = ingest(engine, email("<2@x>", subject="Re: Order", reply_to=("<1@x>",)))
    assert b.conversation_id == a.conversation_id


def test_reply_from_a_colleague_on_cc_threads_into_the_conversation(engine):
    cc = InboundMessage("email", "<1@x>", Sender("ana@example.com", "Ana"), "hello", subject="Order",
                        metadata={"to": ["support@shop.example"], "cc": ["Boss@Example.com"]})
    a = ingest(engine, cc)
    b = ingest(engine, email("<2@x>", sender="boss@example.com", reply_to=("<1@x>",)))
    assert b.conversation_id == a.conversation_id
    assert b.customer_id != a.customer_id
    # Somebody who was not on the mail does not join by naming it.
    c = ingest(engine, email("<3@x>", sender="eve@example.com", reply_to=("<1@x>",)))
    assert c.conversation_id not in (a.conversation_id,)


def test_subject_token_threads_only_for_the_same_customer(engine):
    a = ingest(engine, email("<1@x>"))
    same = ingest(engine, email("<2@x>", subject=f"Re: Order [#{a.conversation_id}]"))
    assert same.conversation_id == a.conversation_id
    # Somebody else quoting the token (ids are guessable) must not land in Ana's conversation.
    other = ingest(engine, email("<3@x>", sender="mallory@example.com", subject=f"Re: Order [#{a.conversation_id}]"))
    assert other.conversation_id != a.conversation_id


def test_re_subject_without_headers_does_not_glue_messages(engine):
    a = ingest(engine, email("<1@x>", subject="Order"))
    b = ingest(engine, email("<2@x>", sender="bob@example.com", subject="Re: Order"))
    c = ingest(engine, email("<3@x>", subject="Re: Order"))  # same customer, no headers: new too
    assert len({a.conversation_id, b.conversation_id, c.conversation_id}) == 3


def test_explicit_reference_to_another_customers_conversation_is_ignored(engine):
    a = ingest(engine, email("<1@x>"))
    r = ingest(
        engine,
        InboundMessage("webform", "f1", Sender("eve@example.com"), "x", thread=ThreadHints(conversation_id=a.conversation_id)),
    )
    assert r.conversation_id != a.conversation_id


def test_telegram_chat_continues_its_open_conversation(engine):
    a = ingest(engine, tg("1"))
    b = ingest(engine, tg("2"))
    assert a.conversation_id == b.conversation_id


def test_calls_and_forms_start_their_own_conversation_unless_they_name_one(engine):
    a = ingest(engine, InboundMessage("voice", "call-1", Sender("+4930901820"), "call one"))
    b = ingest(engine, InboundMessage("voice", "call-2", Sender("+49 30 901820"), "call two"))
    assert a.customer_id == b.customer_id and a.conversation_id != b.conversation_id
    c = ingest(
        engine,
        InboundMessage("voice", "call-3", Sender("+4930901820"), "about call one", thread=ThreadHints(conversation_id=a.conversation_id)),
    )
    assert c.conversation_id == a.conversation_id


def test_resolved_conversation_reopens_within_the_window(engine):
    a = ingest(engine, tg("1"))
    set_status(engine, a.conversation_id, "resolved", resolved_ago=timedelta(days=1))
    b = ingest(engine, tg("2"), policy=IngestPolicy(reopen_window=timedelta(days=7)))
    assert b.conversation_id == a.conversation_id
    with engine.connect() as conn:
        row = conn.execute(select(Conversation.__table__).where(Conversation.__table__.c.id == a.conversation_id)).one()
    assert row.status == "open" and row.resolved_at is None


def test_resolved_conversation_past_the_window_starts_a_new_one(engine):
    a = ingest(engine, email("<1@x>"))
    set_status(engine, a.conversation_id, "resolved", resolved_ago=timedelta(days=30))
    b = ingest(engine, email("<2@x>", reply_to=("<1@x>",)), policy=IngestPolicy(reopen_window=timedelta(days=7)))
    assert b.conversation_id != a.conversation_id
    with engine.connect() as conn:
        old = conn.execute(select(Conversation.__table__.c.status).where(Conversation.__table__.c.id == a.conversation_id)).scalar_one()
    assert old == "resolved"


def test_closed_conversation_never_reopens(engine):
    a = ingest(engine, tg("1"))
    set_status(engine, a.conversation_id, "closed")
    b = ingest(engine, tg("2"))
    assert b.conversation_id != a.conversation_id


def test_pending_conversation_goes_back_to_open_when_the_customer_writes(engine):
    a = ingest(engine, tg("1"))
    set_status(engine, a.conversation_id, "pending")
    ingest(engine, tg("2"))
    with engine.connect() as conn:
        assert conn.execute(select(Conversation.__table__.c.status)).scalar_one() == "open"


def test_html_is_sanitised_before_storage(engine):
    html = '<p onclick="steal()">Hi<script>alert(1)</script><a href="javascript:x()">link</a><img src="cid:logo"></p>'
    ingest(engine, InboundMessage("email", "<h@x>", Sender("a@example.com"), "Hi", html=html))
    with engine.connect() as conn:
        stored = conn.execute(select(Message.__table__.c.html)).scalar_one()
    assert "script" not in stored and "onclick" not in stored and "javascript:" not in stored
    assert "Hi" in stored and 'src="cid:logo"' in stored


def test_attachments_are_stored_once_by_content(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    data = b"%PDF-1.4 invoice"
    att = Attachment("invoice.pdf", "application/pdf", data=data)
    ingest(engine, InboundMessage("email", "<a1@x>", Sender("a@example.com"), "see attached", attachments=(att,)), blobs=blobs)
    ingest(engine, InboundMessage("email", "<a2@x>", Sender("a@example.com"), "again", attachments=(att,)), blobs=blobs)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == data
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT filename, size, sha256 FROM attachment")).all()
    assert [(r.filename, r.size) for r in rows] == [("invoice.pdf", len(data))] * 2
    assert rows[0].sha256 == files[0].name


def test_oversized_attachment_is_rejected_and_nothing_is_stored(engine, tmp_path):
    big = Attachment("big.bin", "application/octet-stream", data=b"x" * 2000)
    with pytest.raises(RejectedInput, match="larger than"):
        ingest(
            engine,
            InboundMessage("email", "<big@x>", Sender("a@example.com"), "x", attachments=(big,)),
            policy=IngestPolicy(max_attachment_bytes=1000),
            blobs=BlobStore(tmp_path / "blobs"),
        )
    assert count(engine, Message) == 0


@pytest.mark.parametrize(
    "msg, needle",
    [
        (InboundMessage("email", "", Sender("a@example.com"), "x"), "external_id"),
        (InboundMessage("email", "<e@x>", Sender("not an address"), "x"), "not an email address"),
        (InboundMessage("email", "<e@x>", Sender("a@example.com"), ""), "needs text"),
        (InboundMessage("voice", "c", Sender("12"), "x"), "phone"),
        (InboundMessage("api", "m", Sender("a@example.com"), "x", metadata={"when": object()}), "JSON"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(engine, msg, needle):
    with pytest.raises(RejectedInput) as err:
        ingest(engine, msg)
    assert needle in err.value.message
    assert count(engine, Message) == 0


def test_one_bad_message_in_a_batch_does_not_spoil_the_others(engine):
    results = ingest_many(
        engine,
        [email("<1@x>"), InboundMessage("email", "<2@x>", Sender("nope"), "x"), email("<3@x>"), email("<1@x>")],
    )
    assert results[0].created and results[2].created
    assert isinstance(results[1], RejectedInput)
    assert results[3].created is False and results[3].message_id == results[0].message_id
    assert count(engine, Message) == 2


def _race(engine, msgs):
    barrier = threading.Barrier(len(msgs))
    results, errors = [None] * len(msgs), []

    def run(i):
        try:
            barrier.wait()
            results[i] = ingest(engine, msgs[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(msgs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_same_external_id_at_the_same_moment_yields_one_message(engine):
    for round_ in range(5):
        results = _race(engine, [email(f"<race-{round_}@x>")] * 8)
        assert sum(r.created for r in results) == 1
        assert len({r.message_id for r in results}) == 1
    assert count(engine, Message) == 5


def test_first_messages_of_a_new_sender_at_once_yield_one_customer(engine):
    for round_ in range(5):
        sender = f"new{round_}@example.com"
        results = _race(engine, [email(f"<n{round_}-{i}@x>", sender=sender) for i in range(8)])
        assert all(r.created for r in results)
        assert len({r.customer_id for r in results}) == 1
    assert count(engine, Customer) == 5
    assert count(engine, Identity) == 5


def test_concurrent_telegram_messages_share_one_conversation(engine):
    results = _race(engine, [tg(f"m{i}", user="777") for i in range(8)])
    assert len({r.conversation_id for r in results}) == 1
