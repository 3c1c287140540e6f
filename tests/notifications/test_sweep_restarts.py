"""The notifications sweep across restarts, on SQLite and PostgreSQL: what was recorded while no
sweeper ran (a restart, a CLI process using the API) is told on the next start; the first start
ever tells nothing old; a backlog of thousands of assignments is swept in batches, each told once
even across a restart in the middle; what is no longer true (an assignment since changed, an SLA
warning on a conversation since answered, resolved or re-timed) is not told."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp import web

from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.conversations.actions import update_conversation
from hub.ingest.pipeline import ingest
from hub.notifications import store, sweep
from hub.notifications.routes import Announcer
from hub.store.db import read_tx, write_tx
from hub.store.models import AuditLog, Conversation, Notification, SlaEvent, utcnow
from hub.store.state import load_state, save_state
from hub.web.keys import ENGINE

conversation_t = Conversation.__table__


@pytest.fixture
def team(engine):
    return {
        "mia": create_agent(engine, "mia@example.com", "mia password", name="Mia Chen"),
        "chloe": create_agent(engine, "chloe@example.com", "chloe password", name="Chloé Dubois"),
        "ada": create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada Lovelace"),
    }


def admin(team) -> Principal:
    return Principal("agent", team["ada"], "admin", "ada")


def new_conversation(engine, n: int) -> int:
    return ingest(engine, InboundMessage("email", f"<q{n}@example.com>", Sender(f"c{n}@example.com", f"C{n}"),
                                         f"Question {n}", subject=f"Q{n}")).conversation_id


def warn(engine, cid: int, timer: str, *, due=None) -> int:
    """An SLA warning as the SLA worker records it: about the conversation's present due time."""
    due = due or utcnow() + timedelta(minutes=30)
    column = "first_response_due_at" if timer == "first_response" else "resolution_due_at"
    with write_tx(engine) as conn:
        conn.execute(sa.update(conversation_t).where(conversation_t.c.id == cid).values({column: due}))
        return conn.execute(SlaEvent.__table__.insert().values(conversation_id=cid, timer=timer, stage="warning",
                                                               due_at=due, created_at=utcnow())).inserted_primary_key[0]


def told(engine, agent_id: int) -> list[tuple[str, int]]:
    return sorted((n["kind"], n["conversation_id"]) for n in store.list_for(engine, agent_id, limit=100)["items"])


def announcer(engine) -> Announcer:
    """The loop of a process that runs background loops, as `servicehub serve` makes it."""
    app = web.Application()
    app[ENGINE] = engine
    return Announcer(app, sweeps=True)


def test_what_was_recorded_while_no_sweeper_ran_is_told_on_the_next_start(engine, team):
    first, second = new_conversation(engine, 1), new_conversation(engine, 2)
    announcer(engine)._pass(False)  # a hub ran once, then stopped
    # Meanwhile, without a hub running (the API from a CLI process, a deploy's gap):
    update_conversation(engine, first, {"assignee_id": team["mia"]}, admin(team))
    update_conversation(engine, second, {"assignee_id": team["chloe"]}, admin(team))
    warn(engine, second, "first_response")
    assert told(engine, team["mia"]) == [] and told(engine, team["chloe"]) == []
    restarted = announcer(engine)
    restarted._pass(False)
    assert told(engine, team["mia"]) == [("assignment", first)]
    assert told(engine, team["chloe"]) == [("assignment", second), ("sla_warning", second)]
    # The saved marks moved on: another restart (or a second process) tells nothing again.
    again = announcer(engine)
    again._pass(False)
    assert sweep.sweep(engine, sweep.start(engine)) == 0
    assert len(told(engine, team["chloe"])) == 2


def test_the_first_start_ever_tells_nothing_old(engine, team):
    cid = new_conversation(engine, 1)
    update_conversation(engine, cid, {"assignee_id": team["mia"]}, admin(team))
    warn(engine, cid, "first_response")
    assert load_state(engine, *sweep.STATE) is None
    marks = sweep.start(engine)
    assert sweep.sweep(engine, marks) == 0 and told(engine, team["mia"]) == []
    # What follows the first start is told.
    update_conversation(engine, cid, {"assignee_id": team["chloe"]}, admin(team))
    assert sweep.sweep(engine, marks) == 1 and told(engine, team["chloe"]) == [("assignment", cid)]


def test_a_damaged_saved_watermark_is_a_first_start(engine, team):
    cid = new_conversation(engine, 1)
    update_conversation(engine, cid, {"assignee_id": team["mia"]}, admin(team))
    save_state(engine, *sweep.STATE, {"audit": "x' OR 1=1", "sla": None})
    assert sweep.sweep(engine, sweep.start(engine)) == 0 and told(engine, team["mia"]) == []
    assert isinstance(load_state(engine, *sweep.STATE)["audit"], int)


def seed_backlog(engine, team, count: int) -> list[int]:
    """`count` conversations, each assigned by the admin while no hub ran (rows as the API writes them)."""
    customer_cid = new_conversation(engine, 0)
    now = utcnow()
    with write_tx(engine) as conn:
        customer = conn.execute(sa.select(conversation_t.c.customer_id).where(conversation_t.c.id == customer_cid)).scalar_one()
        agents = [team["mia"], team["chloe"]]
        conn.execute(conversation_t.insert(), [
            {"customer_id": customer, "channel": "email", "subject": f"Backlog {i}", "status": "open", "priority": "normal",
             "assignee_id": agents[i % 2], "last_message_at": now, "created_at": now, "updated_at": now}
            for i in range(count)])
        ids = list(conn.execute(sa.select(conversation_t.c.id).where(conversation_t.c.id != customer_cid)
                                .order_by(conversation_t.c.id)).scalars())
        conn.execute(AuditLog.__table__.insert(), [
            {"actor": f"agent:{team['ada']}", "action": "conversation.update", "target": f"conversation:{cid}",
             "detail": {"assignee_id": agents[i % 2]}, "created_at": now}
            for i, cid in enumerate(ids)])
    return ids


def test_a_backlog_of_thousands_is_swept_in_batches_and_told_once(engine, team):
    sweep.start(engine)  # the hub ran once before its long stop
    ids = seed_backlog(engine, team, 5000)
    marks = sweep.start(engine)
    passes = [sweep.sweep(engine, marks, batch=500, max_batches=1) for _ in range(3)]
    assert passes == [500, 500, 500]
    saved = load_state(engine, *sweep.STATE)
    assert saved["audit"] == marks.audit  # saved as each batch committed
    # A restart in the middle resumes where the last batch ended.
    marks = sweep.start(engine)
    while (n := sweep.sweep(engine, marks, batch=500, max_batches=1)):
        passes.append(n)
    assert passes == [500] * 10
    # A second sweeper starting from the beginning tells nobody twice.
    assert sweep.sweep(engine, sweep.Watermarks(0, 0), batch=500, max_batches=100) == 0
    t = Notification.__table__
    with read_tx(engine) as conn:
        rows = conn.execute(sa.select(t.c.agent_id, t.c.conversation_id, t.c.dedupe_key)).all()
    assert len(rows) == 5000 and len({r.dedupe_key for r in rows}) == 5000
    assert sorted(r.conversation_id for r in rows) == ids
    assert store.list_for(engine, team["mia"])["unread"] == 2500


def test_a_default_pass_takes_a_backlog_in_several_transactions(engine, team):
    sweep.start(engine)
    seed_backlog(engine, team, 1200)
    assert sweep.sweep(engine, sweep.start(engine), batch=500) == 1200


def test_what_is_no_longer_true_is_not_told(engine, team):
    sweep.start(engine)
    reassigned, unassigned, answered, resolved, retimed, waiting = (new_conversation(engine, n) for n in range(1, 7))
    # While no hub ran: an assignment, then another one of the same conversation.
    update_conversation(engine, reassigned, {"assignee_id": team["chloe"]}, admin(team))
    update_conversation(engine, reassigned, {"assignee_id": team["mia"]}, admin(team))
    update_conversation(engine, unassigned, {"assignee_id": team["chloe"]}, admin(team))
    update_conversation(engine, unassigned, {"assignee_id": None}, admin(team))
    for cid in (answered, resolved, retimed, waiting):
        with write_tx(engine) as conn:
            conn.execute(sa.update(conversation_t).where(conversation_t.c.id == cid).values(assignee_id=team["chloe"]))
    warn(engine, answered, "first_response")
    with write_tx(engine) as conn:
        conn.execute(sa.update(conversation_t).where(conversation_t.c.id == answered).values(first_response_at=utcnow()))
    warn(engine, resolved, "resolution")
    update_conversation(engine, resolved, {"status": "resolved"}, admin(team), survey=False)
    first_due = utcnow() + timedelta(minutes=10)
    warn(engine, retimed, "first_response", due=first_due)
    with write_tx(engine) as conn:  # a priority change moved the due time: the old warning no longer stands
        conn.execute(sa.update(conversation_t).where(conversation_t.c.id == retimed)
                     .values(first_response_due_at=first_due + timedelta(hours=4)))
    warn(engine, waiting, "first_response")
    assert sweep.sweep(engine, sweep.start(engine)) == 2
    assert told(engine, team["mia"]) == [("assignment", reassigned)]
    assert told(engine, team["chloe"]) == [("sla_warning", waiting)]


def test_marks_moved_only_over_other_rows_are_saved_seldom(engine, team):
    marks = sweep.start(engine)
    with write_tx(engine) as conn:  # audit rows of no interest to the sweep
        conn.execute(AuditLog.__table__.insert(), [{"actor": "cli", "action": "agent.create", "target": f"agent:{i}",
                                                    "detail": {}, "created_at": utcnow()} for i in range(3)])
    saved = load_state(engine, *sweep.STATE)["audit"]
    assert sweep.sweep(engine, marks) == 0 and marks.audit == saved + 3
    assert load_state(engine, *sweep.STATE)["audit"] == saved  # no write for them each second
    marks.saved_at -= sweep.IDLE_SAVE_SECONDS
    sweep.sweep(engine, marks)
    assert load_state(engine, *sweep.STATE)["audit"] == marks.audit
