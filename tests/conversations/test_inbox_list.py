"""The inbox list's store logic on SQLite and PostgreSQL: search across every conversation with the
view offered as a narrowing, the rows' last message / waiting time / unread count, tags, snooze and
bulk changes."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from hub.auth.accounts import Principal, create_agent
from hub.contract.messages import InboundMessage, Sender
from hub.conversations import inbox as inbox_list
from hub.conversations.actions import update_conversation
from hub.conversations.search.message_index import index_all_messages
from hub.ingest.pipeline import ingest
from hub.store.db import index_search_queue
from hub.store.models import Conversation


def store(engine, n: int, **kw):
    kw.setdefault("channel", "email")
    kw.setdefault("sender", Sender(f"c{n}@example.com", f"Customer {n}"))
    kw.setdefault("text", f"question {n}")
    return ingest(engine, InboundMessage(external_id=f"<m{n}@example.com>", **kw))


@pytest.fixture
def agent(engine):
    agent_id = create_agent(engine, "ana@example.com", "ana password", role="agent", name="Ana")
    return Principal("agent", agent_id, "agent", "ana@example.com")


def _ids(engine, agent, **kw) -> list[int]:
    return [c["id"] for c in inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(**kw))["items"]]


def test_search_in_the_default_view_finds_resolved_conversations_by_every_field(engine, agent):
    call = store(engine, 1, channel="voice", sender=Sender("+44 20 7946 0958", "Chloé Martin", kind="phone"),
                 text="My parcel for order SO-48213 never came to 12 Rue des Lilas")
    mail = store(engine, 2, sender=Sender("chloe.martin@example.com", "Chloé Martin"), subject="Where is my refund",
                 text="still waiting for the refund")
    other = store(engine, 3, text="something unrelated")
    for r in (call, mail):
        update_conversation(engine, r.conversation_id, {"status": "resolved"}, agent)
    index_all_messages(engine)
    index_search_queue(engine)
    for q in ("Chloé", "SO-48213", "Rue des Lilas", "7946", "parcel"):
        found = _ids(engine, agent, view="open", q=q)
        assert call.conversation_id in found, q
        assert other.conversation_id not in found
    assert mail.conversation_id in _ids(engine, agent, view="open", q="refund")
    # The view is offered, not imposed: narrowing to it finds none of the resolved ones.
    assert _ids(engine, agent, view="open", q="Chloé", within="view") == []
    assert _ids(engine, agent, view="open", q="unrelated", within="view") == [other.conversation_id]
