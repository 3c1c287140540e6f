"""Mentions by name and agents' notifications, on SQLite and PostgreSQL: "@Mia", "@Mia Chen",
"@chloe" (for Chloé) and the email's local part name an agent and notify them; a name nobody (or
two agents) has is shown as not delivered; assignments by someone else, SLA warnings on one's
conversations and snoozed conversations coming back notify once; an agent reads and marks only
their own notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub.auth.accounts import create_agent
from hub.contract.errors import NotFound, RejectedInput
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations import mentions
from hub.conversations.actions import add_note, update_conversation
from hub.ingest.pipeline import ingest
from hub.notifications import store, sweep
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, Mention, SlaEvent, utcnow
from hub.web.inbox.common import highlight_mentions


@pytest.fixture
def team(engine):
    ids = {
        "mia": create_agent(engine, "mia.chen@example.com", "mia password", name="Mia Chen"),
        "chloe": create_agent(engine, "c.dubois@example.com", "chloe password", name="Chloé Dubois"),
        "sam1": create_agent(engine, "sam.one@example.com", "sam password", name="Sam Lee"),
        "sam2": create_agent(engine, "sam.two@example.com", "sam password", name="Sam Park"),
        "ada": create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace"),
    }
    return ids


def who(ids, key, role="agent") -> Principal:
    return Principal("agent", ids[key], role, key)


@pytest.fixture
def conversation(engine):
    return ingest(engine, InboundMessage("email", "<q@example.com>", Sender("ana@example.com", "Ana"), "Hello", subject="Hi"))


def mentioned(engine, message_id: int) -> set[int]:
    t = Mention.__table__
    with read_tx(engine) as conn:
        return set(conn.execute(sa.select(t.c.agent_id).where(t.c.message_id == message_id)).scalars())


def warn(engine, cid: int, timer: str, *, due=None) -> None:
    """An SLA warning as the SLA worker records it: about the conversation's present due time."""
    due = due or utcnow() + timedelta(minutes=30)
    column = "first_response_due_at" if timer == "first_response" else "resolution_due_at"
    with write_tx(engine) as conn:
        conn.execute(sa.update(Conversation.__table__).where(Conversation.__table__.c.id == cid).values({column: due}))
        conn.execute(SlaEvent.__table__.insert().values(conversation_id=cid, timer=timer, stage="warning",
                                                        due_at=due, created_at=utcnow()))


def test_mentions_by_first_name_full_name_folded_and_local_part(engine, team, conversation):
    ada = who(team, "ada", "admin")
    cases = [("@Mia can you look?", {team["mia"]}), ("thanks @mia chen.", {team["mia"]}),
             ("@chloe please", {team["chloe"]}), ("@CHLOÉ DUBOIS, please", {team["chloe"]}),
             ("cc @mia.chen", {team["mia"]}), ("ask @c.dubois@example.com", {team["chloe"]}),
             ("@Sam Park knows", {team["sam2"]}), ("@Sam knows", set()), ("@Nobody here", set()),
             ("mail me at x@mia not a mention", set())]
    for text, expected in cases:
        note = add_note(engine, conversation.conversation_id, ada, text)
        assert mentioned(engine, note["id"]) == expected, text


def test_a_name_nobody_or_two_agents_have_is_shown_as_not_delivered():
    agents = [{"id": 1, "name": "Mia Chen", "email": "mia.chen@example.com"}]
    html = str(highlight_mentions("@Mia and @Nobody and @Sam <b>", agents))
    assert '<mark class="mention">@Mia</mark>' in html
    assert html.count("not delivered") >= 2 and "@Nobody" in html and "&lt;b&gt;" in html


def test_a_mention_notifies_the_agent_once_and_never_the_author(engine, team, conversation):
    mia = who(team, "mia")
    note = add_note(engine, conversation.conversation_id, who(team, "ada", "admin"), "@Mia and again @mia chen")
    mine = store.list_for(engine, team["mia"])
    assert mine["unread"] == 1 and mine["items"][0]["kind"] == "mention"
    assert mine["items"][0]["conversation_id"] == conversation.conversation_id and "Ada Lovelace" in mine["items"][0]["text"]
    mentions.record(engine, note["id"], note["text"])  # recorded again: told once
    assert store.list_for(engine, team["mia"])["unread"] == 1
    add_note(engine, conversation.conversation_id, mia, "note to self @Mia")
    assert store.list_for(engine, team["mia"])["unread"] == 1


def test_assignments_by_others_and_sla_warnings_notify_the_assignee(engine, team, conversation):
    marks = sweep.start(engine)
    cid = conversation.conversation_id
    update_conversation(engine, cid, {"assignee_id": team["mia"]}, who(team, "mia"))  # her own doing: no news
    update_conversation(engine, cid, {"assignee_id": team["chloe"]}, who(team, "ada", "admin"))
    warn(engine, cid, "first_response")
    assert sweep.sweep(engine, marks) == 2
    assert sweep.sweep(engine, marks) == 0  # nothing new
    assert store.list_for(engine, team["mia"])["items"] == []
    kinds = [n["kind"] for n in store.list_for(engine, team["chloe"])["items"]]
    assert kinds == ["sla_warning", "assignment"]
    # Another process sweeping the same rows from the start tells nobody twice.
    assert sweep.sweep(engine, sweep.Watermarks(0, 0)) == 0


def test_a_snoozed_conversation_back_is_told_once(engine, team, conversation):
    cid = conversation.conversation_id
    until = utcnow()
    with write_tx(engine) as conn:
        assert store.notify_snooze_back(conn, cid, team["mia"], until=until) is not None
        assert store.notify_snooze_back(conn, cid, team["mia"], until=until) is None
        assert store.notify_snooze_back(conn, cid, None, until=until) is None
    assert [n["kind"] for n in store.list_for(engine, team["mia"])["items"]] == ["snooze_back"]


def test_an_agent_marks_only_their_own_notifications(engine, team, conversation):
    add_note(engine, conversation.conversation_id, who(team, "ada", "admin"), "@Mia and @Chloé")
    mia_note = store.list_for(engine, team["mia"])["items"][0]["id"]
    chloe_note = store.list_for(engine, team["chloe"])["items"][0]["id"]
    with pytest.raises(NotFound):
        store.mark_read(engine, team["mia"], [chloe_note])
    with pytest.raises(NotFound):
        store.mark_read(engine, team["mia"], [mia_note, 2_147_483_647])
    assert store.list_for(engine, team["chloe"])["unread"] == 1 and store.list_for(engine, team["mia"])["unread"] == 1
    with pytest.raises(RejectedInput):
        store.mark_read(engine, team["mia"], list(range(1, 600)))
    assert store.mark_read(engine, team["mia"], [mia_note]) == 1
    assert store.list_for(engine, team["mia"]) == {"items": [{**store.list_for(engine, team["mia"])["items"][0], "read": True}],
                                                    "unread": 0}
    assert store.mark_read(engine, team["chloe"]) == 1  # all of hers


def test_a_huge_note_full_of_at_signs_is_parsed(engine, team, conversation):
    text = ("@" + "x" * 30 + " @Mia ") * 3000 + "@\x01\u202e @" + "é" * 5000
    note = add_note(engine, conversation.conversation_id, who(team, "ada", "admin"), text)
    assert mentioned(engine, note["id"]) == {team["mia"]}
    long = store.list_for(engine, team["mia"])["items"][0]["text"]
    assert len(long) <= store.TEXT_LIMIT


def test_the_autocomplete_lists_agents_by_name_prefix(engine, team):
    assert [p["name"] for p in mentions.people(engine, "mi")] == ["Mia Chen"]
    assert [p["insert"] for p in mentions.people(engine, "chlo")] == ["Chloé Dubois"]
    assert [p["name"] for p in mentions.people(engine, "sam")] == ["Sam Lee", "Sam Park"]
    assert [p["name"] for p in mentions.people(engine, "park")] == ["Sam Park"]  # any word of the name
    assert len(mentions.people(engine, "")) == 5 and mentions.people(engine, "zz\x00") == []
