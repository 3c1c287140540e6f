"""The inbox's plain functions on SQLite and PostgreSQL: lock-out, read marks, macros, mentions,
retrying a failed delivery, the list's views and sorts, and the customer's timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from hub.auth import lockout
from hub.auth.accounts import create_agent
from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.messages import Sender
from hub.contract.principal import Principal
from hub.conversations import inbox as inbox_list
from hub.conversations import macros, mentions, read_marks, timeline
from hub.conversations.actions import add_note, update_conversation
from hub.conversations.replies import reply
from hub.outbox.queue import retry_delivery
from hub.store.models import Conversation, Outbox, utcnow
from tests.support.hub import seed_conversation


def test_lockout_locks_after_the_limit_and_unlocks_after_the_time(engine):
    policy = lockout.LockoutPolicy(max_failures=3, window=timedelta(minutes=15), lock_for=timedelta(minutes=10))
    now = utcnow()
    assert not lockout.record_failure(engine, "Ana@Example.com", policy, now=now)
    assert not lockout.record_failure(engine, "ana@example.com", policy, now=now)
    lockout.check(engine, "ana@example.com", now=now)  # not yet
    assert lockout.record_failure(engine, "ana@example.com ", policy, now=now)
    with pytest.raises(lockout.AccountLocked) as exc:
        lockout.check(engine, "ANA@example.com", now=now + timedelta(minutes=1))
    assert "about 9 min," in exc.value.message and exc.value.retry_after == pytest.approx(540)
    assert [a["email"] for a in lockout.locked_accounts(engine, now=now)] == ["ana@example.com"]
    lockout.check(engine, "ana@example.com", now=now + timedelta(minutes=11))  # the lock ran out
    # after it, the count starts again from one
    assert not lockout.record_failure(engine, "ana@example.com", policy, now=now + timedelta(minutes=11))
    # failures spread wider than the window never lock
    for i in range(5):
        assert not lockout.record_failure(engine, "bo@example.com", policy, now=now + timedelta(minutes=20 * i))
    lockout.clear(engine, "ana@example.com")
    assert lockout.locked_accounts(engine, now=now) == []


def test_read_marks_follow_activity(engine, agent):
    r = seed_conversation(engine, 1)
    conv = Conversation.__table__
    with engine.connect() as conn:
        last = conn.execute(conv.select().where(conv.c.id == r.conversation_id)).first().last_message_at
    assert read_marks.unread_for(engine, agent.id, {r.conversation_id: last}) == {r.conversation_id}
    read_marks.mark_read(engine, agent.id, r.conversation_id, at=last)
    read_marks.mark_read(engine, agent.id, r.conversation_id, at=last)  # again: one mark
    assert read_marks.unread_for(engine, agent.id, {r.conversation_id: last}) == set()
    assert read_marks.unread_for(engine, agent.id, {r.conversation_id: last + timedelta(seconds=1)}) == {r.conversation_id}


def test_macros_fill_known_placeholders_only(engine, agent):
    admin = Principal("agent", agent.id, "admin", agent.name)
    macro_id = macros.create_macro(engine, "Greeting", "Hi {{ customer.first_name }}, {{agent.name}} (#{{conversation.id}}) {{secret}}", admin)
    with pytest.raises(Conflict):
        macros.create_macro(engine, "Greeting", "again", admin)
    with pytest.raises(RejectedInput):
        macros.create_macro(engine, " ", "text", admin)
    body = macros.get_macro(engine, macro_id)["body"]
    values = macros.values_for({"id": 7, "customer": {"name": "Ana Silva"}, "subject": None, "channel": "email"}, "Bo", "bo@x")
    assert macros.render(body, values) == "Hi Ana, Bo (#7) {{secret}}"
    macros.update_macro(engine, macro_id, "Greeting", "Hello {{customer.name}}", admin)
    assert macros.render(macros.list_macros(engine)[0]["body"], {"customer.name": None}) == "Hello "
    macros.delete_macro(engine, macro_id, admin)
    with pytest.raises(NotFound):
        macros.get_macro(engine, macro_id)


def test_mentions_name_agents_by_handle_or_email(engine, agent):
    bo = create_agent(engine, "bo@example.com", "bo password", role="agent")
    r = seed_conversation(engine, 1)
    note = add_note(engine, r.conversation_id, agent, "@bo and @ana@example.com, see mail x@bo.com and @nobody")
    with engine.connect() as conn:  # stored with the note itself (the API's notes and the inbox's)
        assert sorted(mentions.of_messages(conn, [note["id"]])[note["id"]]) == sorted([bo, agent.id])
    found = mentions.record(engine, note["id"], note["text"])  # again: nothing changes
    assert found == {"bo": bo, "ana@example.com": agent.id}
    with engine.connect() as conn:
        assert sorted(mentions.of_messages(conn, [note["id"]])[note["id"]]) == sorted([bo, agent.id])
    assert [m["message_id"] for m in mentions.mentioning(engine, bo)] == [note["id"]]


def test_retry_delivery_requeues_failed_replies_only(engine, agent):
    r = seed_conversation(engine, 1)
    msg = reply(engine, r.conversation_id, agent, "answer")
    outbox_t = Outbox.__table__
    with pytest.raises(Conflict):
        retry_delivery(engine, msg["id"])  # queued, never failed
    with engine.begin() as conn:
        conn.execute(update(outbox_t).where(outbox_t.c.message_id == msg["id"])
                     .values(status="dead", attempts=8, last_error="550 no such user"))
    assert retry_delivery(engine, msg["id"]) == "pending"
    with engine.connect() as conn:
        row = conn.execute(outbox_t.select().where(outbox_t.c.message_id == msg["id"])).first()
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, "550 no such user")
    with pytest.raises(NotFound):
        retry_delivery(engine, r.message_id)  # an inbound message has no delivery


def test_inbox_sorts_by_priority_across_pages_and_lists_sla_due(engine, agent):
    results = [seed_conversation(engine, n) for n in range(7)]
    prios = ["low", "urgent", "normal", "high", "urgent", "low", "normal"]
    for r, p in zip(results, prios):
        update_conversation(engine, r.conversation_id, {"priority": p}, agent)
    seen, cursor = [], None
    while True:
        page = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all", sort="priority", limit=3, cursor=cursor))
        seen += [c["priority"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["urgent", "urgent", "high", "normal", "normal", "low", "low"]
    now = utcnow()
    conv = Conversation.__table__
    with engine.begin() as conn:
        conn.execute(update(conv).where(conv.c.id == results[0].conversation_id).values(sla_due_at=now + timedelta(hours=1)))
        conn.execute(update(conv).where(conv.c.id == results[1].conversation_id).values(sla_due_at=now - timedelta(hours=1)))
        conn.execute(update(conv).where(conv.c.id == results[2].conversation_id).values(sla_due_at=now + timedelta(days=2)))
    sla = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="sla"), now=now)["items"]
    assert [c["id"] for c in sla] == [results[1].conversation_id, results[0].conversation_id]
    assert sla[0]["sla_overdue"] and not sla[1]["sla_overdue"]
    with pytest.raises(RejectedInput):
        inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all", sort="priority", cursor="garbage"))


def test_timeline_reads_calls_as_dialogue_and_marks_automatic_and_events(engine, agent):
    r = seed_conversation(engine, 1, channel="voice", sender=Sender("+15550001", "Ana", "phone"),
                          text="[00:01] Agent: Hello.\n[00:03] Customer: My order is late.\nstill talking",
                          metadata={"turns": [{"role": "agent", "speaker": "Yuri", "start": 1.0, "text": "Hello."},
                                              {"role": "customer", "speaker": None, "start": 63.5, "text": "My order is late."}]})
    tl = timeline.customer_timeline(engine, r.conversation_id)
    turns = tl["entries"][0]["turns"]
    assert turns == [{"role": "agent", "speaker": "Yuri", "at": "00:01", "text": "Hello."},
                     {"role": "customer", "speaker": None, "at": "01:03", "text": "My order is late."}]
    # without structured turns, the "Agent:/Customer:" lines make the dialogue
    assert timeline.call_turns("[00:01] Agent: Hello.\n[00:03] Customer: Late.\nstill", {}) == [
        {"role": "agent", "speaker": None, "at": "00:01", "text": "Hello."},
        {"role": "customer", "speaker": None, "at": "00:03", "text": "Late.\nstill"},
    ]
    assert timeline.call_turns("Just a plain message.", {}) is None
    assert timeline.kind_of("outbound", {"automatic": True}) == "automatic"
    assert timeline.kind_of("system", {"escalation_id": 3}) == "event"
    assert timeline.kind_of("note", {}) == "note"
    with pytest.raises(NotFound):
        timeline.customer_timeline(engine, 999_999)


def test_known_orders_of_a_customer_from_the_facts(engine):
    from hub.scm.customer_orders import known_orders
    from hub.store.models import ScmFact

    r = seed_conversation(engine, 1, text="Where is order A1?")
    fact_t = ScmFact.__table__
    with engine.begin() as conn:
        for payload in ({"ref": "A1", "state": "processing"}, {"ref": "A1", "state": "shipped", "late": True,
                                                                  "expected_date": "2026-12-01"}):
            conn.execute(fact_t.insert().values(conversation_id=r.conversation_id, message_id=r.message_id, kind="order",
                                                subject="A1", payload=payload, disclosed=False, created_at=utcnow()))
    [order] = known_orders(engine, r.customer_id)
    assert (order["ref"], order["state"], order["late"], order["expected_date"]) == ("A1", "shipped", True, "2026-12-01")
    assert known_orders(engine, r.customer_id + 1000) == []
