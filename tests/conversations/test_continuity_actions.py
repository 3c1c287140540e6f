"""Moving a message and merging conversations of one customer, with an undo from the timeline, on
SQLite and PostgreSQL; the timeline shows a conversation's own messages and the others as related."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.auth.accounts import create_agent
from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations import continuity, timeline
from hub.ingest.pipeline import ingest
from hub.store.models import Conversation, Message

conv_t, message_t = Conversation.__table__, Message.__table__


def mail(ext, text, sender="ana@example.com", subject="Parcel"):
    return InboundMessage("email", ext, Sender(sender, "Ana"), text, subject=subject, thread=ThreadHints())


@pytest.fixture
def ada(engine):
    return Principal("agent", create_agent(engine, "ada@example.com", "a long password", role="agent", name="Ada"), "agent",
                     "ada@example.com")


def conversation_of(engine, message_id):
    with engine.connect() as conn:
        return conn.execute(select(message_t.c.conversation_id).where(message_t.c.id == message_id)).scalar()


def status(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(conv_t.c.status).where(conv_t.c.id == cid)).scalar()


def test_two_matters_show_as_related_not_interleaved(engine):
    a = ingest(engine, mail("<1@a>", "Where is my parcel?"))
    b = ingest(engine, mail("<2@a>", "Please change my address", subject="Address"))
    tl = timeline.customer_timeline(engine, a.conversation_id)
    assert [e["text"] for e in tl["entries"]] == ["Where is my parcel?"]
    assert [(r["id"], r["subject"], r["channels"]) for r in tl["related"]] == [(b.conversation_id, "Address", ["email"])]


def test_merge_and_undo(engine, ada):
    a = ingest(engine, mail("<1@a>", "Where is my parcel?"))
    b = ingest(engine, mail("<2@a>", "It is the parcel to Lagos", subject="Lagos"))
    done = continuity.merge(engine, b.conversation_id, a.conversation_id, ada)
    assert done["message_ids"] == [b.message_id] and conversation_of(engine, b.message_id) == a.conversation_id
    assert status(engine, b.conversation_id) == "closed"
    tl = timeline.customer_timeline(engine, a.conversation_id)
    assert [e["text"] for e in tl["entries"] if e["kind"] == "inbound"] == ["Where is my parcel?", "It is the parcel to Lagos"]
    [event] = [e for e in tl["entries"] if e["kind"] == "event"]
    assert event["id"] == done["event_id"] and event["event"]["event"] == "conversation.merged"

    undone = continuity.undo(engine, done["event_id"], ada)
    assert undone["message_ids"] == [b.message_id] and conversation_of(engine, b.message_id) == b.conversation_id
    assert status(engine, b.conversation_id) == "open"
    with pytest.raises(Conflict):
        continuity.undo(engine, done["event_id"], ada)  # once


def test_move_one_message_and_undo(engine, ada):
    a = ingest(engine, mail("<1@a>", "Where is my parcel?"))
    b = ingest(engine, mail("<2@a>", "Change my address", subject="Address"))
    # the customer answered in the address thread about the parcel: it belongs with the parcel
    extra = ingest(engine, InboundMessage("email", "<3@a>", Sender("ana@example.com", "Ana"), "and my parcel is SO-1",
                                          subject="Re: Address", thread=ThreadHints(in_reply_to=("<2@a>",))))
    assert extra.conversation_id == b.conversation_id
    moved = continuity.move_message(engine, extra.message_id, a.conversation_id, ada)
    assert conversation_of(engine, extra.message_id) == a.conversation_id
    continuity.undo(engine, moved["event_id"], ada)
    assert conversation_of(engine, extra.message_id) == b.conversation_id


def test_never_across_customers_and_never_events(engine, ada):
    a = ingest(engine, mail("<1@a>", "Where is my parcel?"))
    other = ingest(engine, mail("<1@b>", "Hello", sender="ben@example.com"))
    with pytest.raises(RejectedInput):
        continuity.move_message(engine, a.message_id, other.conversation_id, ada)
    with pytest.raises(RejectedInput):
        continuity.merge(engine, other.conversation_id, a.conversation_id, ada)
    with pytest.raises(RejectedInput):
        continuity.merge(engine, a.conversation_id, a.conversation_id, ada)
    with pytest.raises(NotFound):
        continuity.move_message(engine, 999_999, a.conversation_id, ada)
    with pytest.raises(NotFound):
        continuity.undo(engine, a.message_id, ada)  # not an event
    assert conversation_of(engine, a.message_id) == a.conversation_id
