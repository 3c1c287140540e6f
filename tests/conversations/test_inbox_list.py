"""The inbox list's store logic on SQLite and PostgreSQL: search across every conversation with the
view offered as a narrowing, the rows' last message / waiting time / unread count, tags, snooze and
bulk changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.contract import clock
from hub.contract.errors import NotFound, RejectedInput
from hub.contract.messages import Sender, ThreadHints
from hub.conversations import bulk, read_marks, snooze, tags
from hub.conversations import inbox as inbox_list
from hub.conversations.actions import add_note, update_conversation
from hub.conversations.listing import as_phone
from hub.conversations.replies import reply
from hub.conversations.search.message_index import index_all_messages
from hub.store.db import index_search_queue
from hub.store.models import CsatSurvey, utcnow
from tests.support.hub import seed_conversation


def surveys(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(CsatSurvey.__table__)).scalar()


def _ids(engine, agent, **kw) -> list[int]:
    return [c["id"] for c in inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(**kw))["items"]]


def test_search_in_the_default_view_finds_resolved_conversations_by_every_field(engine, agent):
    call = seed_conversation(engine, 1, channel="voice", sender=Sender("+44 20 7946 0958", "Chloé Martin", kind="phone"),
                             text="My parcel for order SO-48213 never came to 12 Rue des Lilas")
    mail = seed_conversation(engine, 2, sender=Sender("chloe.martin@example.com", "Chloé Martin"), subject="Where is my refund",
                             text="still waiting for the refund")
    other = seed_conversation(engine, 3, text="something unrelated")
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


def test_rows_show_the_last_message_the_wait_for_an_answer_and_unread_messages(engine, agent):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with clock.use(clock.FixedClock(t0)):
        r = seed_conversation(engine, 1, subject="Order question", text="first words")
    with clock.use(clock.FixedClock(t0 + timedelta(minutes=10))):
        reply(engine, r.conversation_id, agent, "we are on it")
    with clock.use(clock.FixedClock(t0 + timedelta(minutes=20))):
        seed_conversation(engine, 2, sender=Sender("c1@example.com", "Customer 1"), text="any news?", thread=ThreadHints(in_reply_to=("<m1@example.com>",)))
    with clock.use(clock.FixedClock(t0 + timedelta(minutes=30))):
        seed_conversation(engine, 3, sender=Sender("c1@example.com", "Customer 1"), text="hello??", thread=ThreadHints(in_reply_to=("<m1@example.com>",)))
        add_note(engine, r.conversation_id, agent, "a note is not the last message")
    now = t0 + timedelta(hours=1)
    row = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all"), now=now)["items"][0]
    assert row["id"] == r.conversation_id
    assert row["preview"] == "hello??" and row["last_direction"] == "inbound"
    # waiting since the first message after the reply, not since the conversation began
    assert row["waiting_seconds"] == 40 * 60 and row["waiting_label"] == "40m"
    assert row["unread_count"] == 3 and row["unread"]
    read_marks.mark_read(engine, agent.id, r.conversation_id, at=t0 + timedelta(minutes=25))
    row = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all"), now=now)["items"][0]
    assert row["unread_count"] == 1
    with clock.use(clock.FixedClock(now)):
        reply(engine, r.conversation_id, agent, "here it is")
    row = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all"), now=now)["items"][0]
    assert row["waiting_seconds"] is None and row["preview"] == "here it is" and row["last_direction"] == "outbound"


def test_tags_are_folded_filtered_by_and_counted(engine, agent):
    a, b, c = (seed_conversation(engine, n).conversation_id for n in range(3))
    assert tags.add_tag(engine, a, "  Refund  Request ", agent) == ["refund request"]
    tags.add_tag(engine, a, "REFUND request", agent)  # the same tag: no change
    tags.add_tag(engine, a, "VIP", agent)
    tags.add_tag(engine, b, "vip", agent)
    assert tags.conversation_tags(engine, a) == ["refund request", "vip"]
    assert _ids(engine, agent, view="all", tag="vip") == [b, a]
    assert _ids(engine, agent, view="all", tag="vip", sort="priority") == [b, a]
    assert _ids(engine, agent, view="all", tag="refund request") == [a]
    assert inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="all"))["items"][-1]["tags"] == ["refund request", "vip"]
    assert tags.remove_tag(engine, a, "Vip", agent) == ["refund request"]
    assert tags.remove_tag(engine, a, "never there", agent) == ["refund request"]
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    assert tags.count_by_tag(engine, start, end) == [{"tag": "refund request", "conversations": 1}, {"tag": "vip", "conversations": 1}]
    assert tags.count_by_tag(engine, end, end + timedelta(days=1)) == []
    assert c not in _ids(engine, agent, view="all", tag="vip")


@pytest.mark.parametrize("bad", ["", "   ", "a" * 51, "x" * 10_000, "bad\x00tag", "tab\x07bell", "\ud800"])
def test_hostile_tag_names_are_refused_and_nothing_is_stored(engine, agent, bad):
    cid = seed_conversation(engine, 1).conversation_id
    with pytest.raises(RejectedInput):
        tags.add_tag(engine, cid, bad, agent)
    assert tags.conversation_tags(engine, cid) == []
    with pytest.raises(NotFound):
        tags.add_tag(engine, 999_999, "fine", agent)


def test_a_conversation_takes_a_bounded_number_of_tags(engine, agent):
    cid = seed_conversation(engine, 1).conversation_id
    for i in range(tags.MAX_TAGS):
        tags.add_tag(engine, cid, f"t{i}", agent)
    with pytest.raises(RejectedInput):
        tags.add_tag(engine, cid, "one more", agent)


def test_snoozed_conversations_leave_the_open_views_and_come_back_at_the_top(engine, agent):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with clock.use(clock.FixedClock(t0)):
        old = seed_conversation(engine, 1).conversation_id
        update_conversation(engine, old, {"assignee_id": agent.id}, agent)
    with clock.use(clock.FixedClock(t0 + timedelta(minutes=5))):
        newer = seed_conversation(engine, 2).conversation_id
    with clock.use(clock.FixedClock(t0 + timedelta(minutes=10))):
        conv = snooze.snooze(engine, old, t0 + timedelta(hours=2), agent)
        assert conv["status"] == "snoozed" and conv["snoozed_until"].startswith("2026-03-02T11:00")
        with pytest.raises(RejectedInput):
            snooze.snooze(engine, newer, t0, agent)  # in the past
        with pytest.raises(RejectedInput):
            snooze.snooze(engine, newer, t0 + timedelta(days=400), agent)
        with pytest.raises(RejectedInput):
            update_conversation(engine, newer, {"status": "snoozed"}, agent)  # a snooze needs its time
    assert _ids(engine, agent, view="open") == [newer]
    assert _ids(engine, agent, view="mine") == [old]
    assert _ids(engine, agent, view="snoozed") == [old]
    assert snooze.wake_due(engine, now=t0 + timedelta(hours=1)) == []
    back = t0 + timedelta(hours=2, seconds=5)
    assert snooze.wake_due(engine, now=back) == [{"conversation_id": old, "assignee_id": agent.id}]
    assert snooze.wake_due(engine, now=back) == []  # once
    assert _ids(engine, agent, view="open") == [old, newer]  # at the top
    assert _ids(engine, agent, view="snoozed") == []


def test_a_customer_writing_wakes_a_snoozed_conversation(engine, agent):
    cid = seed_conversation(engine, 1).conversation_id
    snooze.snooze(engine, cid, utcnow() + timedelta(days=1), agent)
    again = seed_conversation(engine, 2, sender=Sender("c1@example.com", "Customer 1"), text="hello?", thread=ThreadHints(in_reply_to=("<m1@example.com>",)))
    assert again.conversation_id == cid
    state = inbox_list.list_inbox(engine, agent.id, inbox_list.InboxQuery(view="open"))["items"][0]
    assert state["id"] == cid and state["status"] == "open" and state["snoozed_until"] is None


def test_snooze_presets_count_from_now():
    monday = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # a Monday
    assert snooze.preset_time("later_today", monday) == monday + timedelta(hours=3)
    assert snooze.preset_time("tomorrow", monday) == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert snooze.preset_time("next_week", monday) == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    with pytest.raises(RejectedInput):
        snooze.preset_time("someday", monday)
    with pytest.raises(RejectedInput):
        snooze.snooze_until("2026-03-03T09:00:00", None, monday)  # no zone: refused, not guessed
    assert snooze.snooze_until("2026-03-03T09:00:00+01:00", None, monday) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def test_bulk_changes_each_conversation_on_its_own_and_reports_guessed_ids(engine, agent):
    a, b = seed_conversation(engine, 1).conversation_id, seed_conversation(engine, 2).conversation_id
    done = bulk.apply(engine, [a, 999_999, b, a], bulk.BulkChange("assign", assignee_id=agent.id), agent)
    assert done["done"] == 2
    assert [(r["id"], r["ok"]) for r in done["results"]] == [(a, True), (999_999, False), (b, True)]
    assert done["results"][1]["error"]["code"] == "not_found"
    assert set(_ids(engine, agent, view="mine")) == {a, b}
    bulk.apply(engine, [a, b], bulk.BulkChange("tag", tag="Late delivery"), agent)
    assert _ids(engine, agent, view="all", tag="late delivery") == [b, a]
    bulk.apply(engine, [a], bulk.BulkChange("snooze", until=utcnow() + timedelta(hours=1)), agent)
    reply(engine, b, agent, "It is on its way.")
    done = bulk.apply(engine, [b], bulk.BulkChange("resolve"), agent)
    assert done["done"] == 1
    assert _ids(engine, agent, view="open") == []
    # Resolving in bulk follows the rule of resolving one: an answered conversation gets its survey.
    assert surveys(engine) == 1
    for bad in (bulk.BulkChange("delete"), bulk.BulkChange("tag", tag="x\x00"), bulk.BulkChange("snooze"),
                bulk.BulkChange("snooze", until=utcnow() - timedelta(hours=1))):
        with pytest.raises(RejectedInput):
            bulk.apply(engine, [a], bad, agent)
    with pytest.raises(RejectedInput):
        bulk.apply(engine, list(range(1, bulk.MAX_BULK + 2)), bulk.BulkChange("resolve"), agent)
    assert bulk.apply(engine, [a], bulk.BulkChange("assign", assignee_id=424242), agent)["results"][0]["ok"] is False


def test_a_huge_search_text_is_cut_and_costs_what_a_short_one_does(engine, agent):
    seed_conversation(engine, 1, text="hello there")
    params = {"q": "hello zebra " * 100_000}  # every word must be in one message: none is
    iq = inbox_list.parse_query(params, ["email"])
    assert len(iq.q) <= 200
    assert _ids(engine, agent, view="open", q=iq.q) == []
    with pytest.raises(RejectedInput):
        inbox_list.parse_query({"q": "hi", "within": "elsewhere"}, ["email"])
    with pytest.raises(RejectedInput):
        inbox_list.parse_query({"tag": "t" * 300}, ["email"])


@pytest.mark.parametrize("typed,searched", [
    ("7946 0958", "79460958"), ("+44 20 7946 0958", "+442079460958"), ("(020) 7946-0958", "2079460958"),
    ("0044 20 7946 0958", "+442079460958"), ("2026-11-24", "2026-11-24"), ("SO-48213", "SO-48213"), ("12 Rue", "12 Rue"),
])
def test_a_phone_number_is_searched_as_phones_are_stored(typed, searched):
    assert as_phone(typed) == searched


def test_a_phone_number_typed_with_spaces_finds_the_call(engine, agent):
    call = seed_conversation(engine, 1, channel="voice", sender=Sender("+44 20 7946 0958", "Chloé Martin", kind="phone"), text="hello")
    index_search_queue(engine)
    for typed in ("7946 0958", "+44 20 7946 0958", "(020) 7946-0958"):
        assert _ids(engine, agent, view="open", q=typed) == [call.conversation_id], typed


def test_the_tags_report_counts_conversations_per_tag_in_the_range(engine, agent):
    from hub.reports import queries as reports

    a, b = seed_conversation(engine, 1).conversation_id, seed_conversation(engine, 2).conversation_id
    tags.add_tag(engine, a, "refund", agent)
    tags.add_tag(engine, b, "refund", agent)
    tags.add_tag(engine, b, "vip", agent)
    today = clock.today().isoformat()
    got = reports.run(engine, "tags", reports.parse_range(today, today, "UTC"))
    assert got["rows"] == [{"tag": "refund", "conversations": 2, "share_pct": 100.0}, {"tag": "vip", "conversations": 1, "share_pct": 50.0}]
    assert got["tagged"] == 2
    assert "<svg" in reports.to_svg(got)
    earlier = (clock.today() - timedelta(days=3)).isoformat()
    assert reports.run(engine, "tags", reports.parse_range(earlier, earlier, "UTC"))["rows"] == []
