"""Teams, availability and automatic assignment on a real store (SQLite and PostgreSQL): by load,
round robin, key customers to a named team, unavailable agents skipped, a person's choice kept,
never assigned twice, and reassignment on a breach."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from hub.assignment import rules as assignment
from hub.auth.accounts import create_agent
from hub.config.settings import SlaSettings
from hub.contract.errors import Conflict, NotFound, PermissionDenied
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.ingest.pipeline import ingest
from hub.sla import timers as sla
from hub.store.models import Conversation, Customer

conv_t, customer_t = Conversation.__table__, Customer.__table__
T0 = datetime(2026, 6, 9, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def rules(**kw) -> sla.Rules:
    return sla.build_rules(SlaSettings(**kw))


def new_conversation(engine, n: int, address: str | None = None) -> int:
    address = address or f"c{n}@example.com"
    result = ingest(engine, InboundMessage(channel="email", external_id=f"<m{n}-{address}>", sender=Sender(address, None),
                                           text=f"question {n}", subject=f"question {n}"))
    return result.conversation_id


def assignee(engine, cid):
    with engine.connect() as conn:
        return conn.execute(select(conv_t.c.assignee_id).where(conv_t.c.id == cid)).scalar()


@pytest.fixture
def staff(engine):
    ids = {name: create_agent(engine, f"{name}@example.com", "a long password", role=role, name=name.title())
           for name, role in [("admin", "admin"), ("bo", "agent"), ("cy", "agent")]}
    who = {name: Principal("agent", aid, "admin" if name == "admin" else "agent", name) for name, aid in ids.items()}
    return ids, who


def test_by_load_skips_unavailable_agents_and_keeps_a_persons_choice(engine, staff):
    ids, who = staff
    assignment.set_availability(engine, ids["admin"], False, who["admin"])
    first = [new_conversation(engine, n) for n in range(3)]
    sla.run_pass(engine, rules(assignment="load"), now=T0)
    got = [assignee(engine, cid) for cid in first]
    assert set(got) == {ids["bo"], ids["cy"]} and ids["admin"] not in got
    # bo now has the larger load; a new conversation goes to whoever has fewer.
    counts = {aid: got.count(aid) for aid in set(got)}
    lighter = min(counts, key=counts.get)
    cid = new_conversation(engine, 10)
    sla.run_pass(engine, rules(assignment="load"), now=T0)
    assert assignee(engine, cid) == lighter
    # Taken by hand before the worker looked: kept.
    cid = new_conversation(engine, 11)
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == cid).values(assignee_id=ids["admin"]))
    sla.run_pass(engine, rules(assignment="load"), now=T0)
    assert assignee(engine, cid) == ids["admin"]


def test_round_robin_and_off(engine, staff):
    ids, _ = staff
    cids = [new_conversation(engine, n) for n in range(6)]
    sla.run_pass(engine, rules(assignment="round_robin"), now=T0)
    got = [assignee(engine, cid) for cid in cids]
    assert sorted(got) == sorted([ids["admin"], ids["bo"], ids["cy"]] * 2)
    cid = new_conversation(engine, 7)
    sla.run_pass(engine, rules(assignment="off"), now=T0)
    assert assignee(engine, cid) is None


def test_key_customers_go_to_their_team_or_wait(engine, staff):
    ids, who = staff
    team = assignment.create_team(engine, "Key accounts", who["admin"])
    with pytest.raises(Conflict):
        assignment.create_team(engine, "Key accounts", who["admin"])
    assignment.add_member(engine, team["id"], ids["cy"], who["admin"])
    assignment.add_member(engine, team["id"], ids["cy"], who["admin"])  # twice: no change
    assert assignment.list_teams(engine)[0]["members"][0]["id"] == ids["cy"]
    assert assignment.teams_of_agents(engine) == {ids["cy"]: ["Key accounts"]}

    cid = new_conversation(engine, 1, "vip@example.com")
    with engine.begin() as conn:
        conn.execute(update(customer_t).values(segment="key"))
    assignment.set_availability(engine, ids["cy"], False, who["cy"])
    r = rules(assignment="load", key_customer_team="Key accounts")
    sla.run_pass(engine, r, now=T0)
    assert assignee(engine, cid) is None  # the team's only member is away: it waits
    assignment.set_availability(engine, ids["cy"], True, who["admin"])
    sla.run_pass(engine, r, now=T0)
    assert assignee(engine, cid) == ids["cy"]

    assignment.remove_member(engine, team["id"], ids["cy"], who["admin"])
    with pytest.raises(NotFound):
        assignment.remove_member(engine, team["id"], ids["cy"], who["admin"])


def test_availability_is_yours_or_an_admins_to_set(engine, staff):
    ids, who = staff
    assert assignment.is_available(engine, ids["bo"]) is True
    with pytest.raises(PermissionDenied):
        assignment.set_availability(engine, ids["cy"], False, who["bo"])
    assignment.set_availability(engine, ids["bo"], False, who["bo"])
    assert assignment.is_available(engine, ids["bo"]) is False
    assert assignment.availability_of(engine) == {ids["bo"]: False}


def test_two_workers_never_assign_one_conversation_twice(engine, staff):
    ids, _ = staff
    cid = new_conversation(engine, 1)
    r = rules(assignment="load")
    sla.recompute_changed(engine, r, since=T0 - timedelta(days=365), now=T0)
    with engine.begin() as conn:
        conv = conn.execute(select(conv_t).where(conv_t.c.id == cid)).one()
        assert assignment.assign(conn, conv, ids["bo"], now=T0, reason="test") is True
        # The second process read the same unassigned row; its conditional update finds it taken.
        assert assignment.assign(conn, conv, ids["cy"], now=T0, reason="test") is False
    assert sla.assign_new(engine, r, now=T0) == 0
    assert assignee(engine, cid) == ids["bo"]


def test_a_breach_reassigns_to_another_available_agent(engine, staff):
    ids, who = staff
    cid = new_conversation(engine, 1)
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == cid).values(created_at=T0, assignee_id=ids["bo"]))
    assignment.set_availability(engine, ids["admin"], False, who["admin"])
    r = rules(assignment="load", reassign_on_breach=True)
    sla.run_pass(engine, r, now=T0)
    sla.run_pass(engine, r, now=T0 + timedelta(days=2))  # well past the first-response target
    assert assignee(engine, cid) == ids["cy"]


def test_a_customers_new_matter_goes_to_the_agent_who_has_their_open_one(engine, staff):
    ids, who = staff
    assignment.set_availability(engine, ids["admin"], False, who["admin"])
    first = new_conversation(engine, 1, "ana@example.com")
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id == first).values(assignee_id=ids["bo"]))
    # bo carries more load than cy; Ana's second matter (a new email thread) still goes to bo
    others = [new_conversation(engine, n) for n in range(2, 4)]
    with engine.begin() as conn:
        conn.execute(update(conv_t).where(conv_t.c.id.in_(others)).values(assignee_id=ids["bo"]))
    second = new_conversation(engine, 5, "ana@example.com")
    assert second != first
    sla.run_pass(engine, rules(assignment="load"), now=T0)
    assert assignee(engine, second) == ids["bo"]
    # an unavailable holder is no reason to wait: load decides
    assignment.set_availability(engine, ids["bo"], False, who["admin"])
    third = new_conversation(engine, 6, "ana@example.com")
    sla.run_pass(engine, rules(assignment="load"), now=T0)
    assert assignee(engine, third) == ids["cy"]
