"""Who works on what: teams, agent availability, and automatic assignment of new conversations.

Automatic assignment (run by the SLA worker, hub/sla/timers.py) first gives a customer's new
conversation to the agent who holds another open one of theirs (sticky_agent: the customer does not
explain themselves to a second person), else picks among active, available agents, by current load (open + pending conversations assigned) or round robin (the agent who got one
longest ago). A key customer's conversation goes to SlaSettings.key_customer_team's agents only;
with none of them available it waits, unassigned and visible in the inbox. The assignment itself is
a conditional UPDATE ... WHERE assignee_id IS NULL, so two hub processes never assign one
conversation twice and an agent who took it by hand in the meantime keeps it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from hub.contract.errors import Conflict, NotFound, PermissionDenied, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations import bumped
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, AgentAvailability, Conversation, ConversationStatus, Direction, Message, Team, TeamMember, utcnow
from hub.store.sql import insert_ignoring_conflict

agent_t = Agent.__table__
availability_t = AgentAvailability.__table__
conversation_t = Conversation.__table__
message_t = Message.__table__
team_t = Team.__table__
member_t = TeamMember.__table__

MODES = ("off", "round_robin", "load")


# --- teams ------------------------------------------------------------------------------------------


def list_teams(engine: Engine) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        teams = conn.execute(select(team_t).order_by(team_t.c.name)).all()
        members = conn.execute(
            select(member_t.c.team_id, agent_t.c.id, agent_t.c.email, agent_t.c.name)
            .join(agent_t, agent_t.c.id == member_t.c.agent_id)
            .order_by(agent_t.c.email)
        ).all()
    by_team: dict[int, list[dict]] = {}
    for m in members:
        by_team.setdefault(m.team_id, []).append({"id": m.id, "email": m.email, "name": m.name})
    return [{"id": t.id, "name": t.name, "members": by_team.get(t.id, [])} for t in teams]


def teams_of_agents(engine: Engine) -> dict[int, list[str]]:
    """agent id -> names of their teams (the admin page shows them)."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(member_t.c.agent_id, team_t.c.name).join(team_t, team_t.c.id == member_t.c.team_id).order_by(team_t.c.name)
        ).all()
    out: dict[int, list[str]] = {}
    for row in rows:
        out.setdefault(row.agent_id, []).append(row.name)
    return out


def create_team(engine: Engine, name: str, who: Principal) -> dict[str, Any]:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise RejectedInput(N_("a team needs a name of 1 to 100 characters"))
    with write_tx(engine) as conn:
        team_id = insert_ignoring_conflict(conn, team_t, {"name": name, "created_at": utcnow()})
        if team_id is None:
            raise Conflict(N_("a team named %(name)s exists"), params={"name": repr(name)})
        audit(conn, who.actor, "team.create", f"team:{team_id}", name=name)
    return {"id": team_id, "name": name, "members": []}


def _require_team(conn: Connection, team_id: int):
    row = conn.execute(select(team_t).where(team_t.c.id == team_id)).first()
    if row is None:
        raise NotFound(N_("team %(id)s does not exist"), params={"id": team_id})
    return row


def _require_agent(conn: Connection, agent_id: int):
    row = conn.execute(select(agent_t).where(agent_t.c.id == agent_id)).first()
    if row is None:
        raise NotFound(N_("agent %(id)s does not exist"), params={"id": agent_id})
    return row


def add_member(engine: Engine, team_id: int, agent_id: int, who: Principal) -> None:
    with write_tx(engine) as conn:
        _require_team(conn, team_id)
        _require_agent(conn, agent_id)
        if insert_ignoring_conflict(conn, member_t, {"team_id": team_id, "agent_id": agent_id, "created_at": utcnow()}):
            audit(conn, who.actor, "team.add_member", f"team:{team_id}", agent=agent_id)


def remove_member(engine: Engine, team_id: int, agent_id: int, who: Principal) -> None:
    with write_tx(engine) as conn:
        _require_team(conn, team_id)
        gone = conn.execute(
            delete(member_t).where(member_t.c.team_id == team_id, member_t.c.agent_id == agent_id)
        ).rowcount
        if not gone:
            raise NotFound(N_("agent %(id)s is not in team %(team)s"), params={"id": agent_id, "team": team_id})
        audit(conn, who.actor, "team.remove_member", f"team:{team_id}", agent=agent_id)


# --- availability -----------------------------------------------------------------------------------


def is_available(engine: Engine, agent_id: int) -> bool:
    with read_tx(engine) as conn:
        value = conn.execute(select(availability_t.c.available).where(availability_t.c.agent_id == agent_id)).scalar()
    return True if value is None else bool(value)


def availability_of(engine: Engine) -> dict[int, bool]:
    """agent id -> available, for agents who ever set it (the others are available)."""
    with read_tx(engine) as conn:
        return {r.agent_id: bool(r.available) for r in conn.execute(select(availability_t.c.agent_id, availability_t.c.available))}


def set_availability(engine: Engine, agent_id: int, available: bool, who: Principal) -> dict[str, Any]:
    """An agent sets their own; an admin anyone's."""
    if not (who.is_agent and (who.id == agent_id or who.role == "admin")):
        raise PermissionDenied(N_("only an admin can set another agent's availability"))
    now = utcnow()
    with write_tx(engine) as conn:
        _require_agent(conn, agent_id)
        changed = conn.execute(
            update(availability_t).where(availability_t.c.agent_id == agent_id).values(available=available, updated_at=now)
        ).rowcount
        if not changed:
            insert_ignoring_conflict(conn, availability_t, {"agent_id": agent_id, "available": available, "updated_at": now})
            conn.execute(
                update(availability_t).where(availability_t.c.agent_id == agent_id).values(available=available, updated_at=now)
            )
        audit(conn, who.actor, "agent.availability", f"agent:{agent_id}", available=available)
    return {"agent_id": agent_id, "available": available}


# --- choosing an agent ------------------------------------------------------------------------------


def candidates(conn: Connection, team: str | None = None, *, exclude: int | None = None) -> list[Any]:
    """Active, available agents (optionally of one team) with their load and last assignment."""
    load = (
        select(func.count())
        .where(conversation_t.c.assignee_id == agent_t.c.id,
               conversation_t.c.status.in_([ConversationStatus.open, ConversationStatus.pending]))
        .correlate(agent_t)
        .scalar_subquery()
    )
    query = (
        select(agent_t.c.id, load.label("load"), availability_t.c.last_assigned_at)
        .select_from(agent_t.outerjoin(availability_t, availability_t.c.agent_id == agent_t.c.id))
        .where(agent_t.c.active.is_(True),
               func.coalesce(availability_t.c.available, True).is_(True))
    )
    if team is not None:
        query = query.where(
            agent_t.c.id.in_(
                select(member_t.c.agent_id).join(team_t, team_t.c.id == member_t.c.team_id).where(team_t.c.name == team)
            )
        )
    if exclude is not None:
        query = query.where(agent_t.c.id != exclude)
    return conn.execute(query).all()


def _never(row) -> tuple:
    # NULL last_assigned_at (never had one) sorts first.
    return (row.last_assigned_at is not None, row.last_assigned_at or datetime.min)


def sticky_agent(conn: Connection, customer_id: int, conversation_id: int, team: str | None = None) -> tuple[int, int] | None:
    """(agent id, conversation id) of the active, available agent who holds another open or pending
    conversation of the same customer, the most recently active one: a customer's new matter goes
    to the agent who already knows them, before any load balancing. With `team`, only an agent of
    that team (a key customer's team stays the rule)."""
    holders = (
        select(conversation_t.c.assignee_id, conversation_t.c.id)
        .where(conversation_t.c.customer_id == customer_id, conversation_t.c.id != conversation_id,
               conversation_t.c.assignee_id.is_not(None),
               conversation_t.c.status.in_([ConversationStatus.open, ConversationStatus.pending]))
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
        .limit(5)
    )
    rows = conn.execute(holders).all()
    if not rows:
        return None
    able = {r.id for r in candidates(conn, team)}
    for row in rows:
        if row.assignee_id in able:
            return row.assignee_id, row.id
    return None


def pick_agent(conn: Connection, mode: str, team: str | None = None, *, exclude: int | None = None) -> int | None:
    rows = candidates(conn, team, exclude=exclude)
    if not rows:
        return None
    if mode == "round_robin":
        best = min(rows, key=lambda r: (*_never(r), r.id))
    else:
        best = min(rows, key=lambda r: (r.load, *_never(r), r.id))
    return best.id


def assign(conn: Connection, conv, agent_id: int, *, now: datetime, reason: str, only_if_assignee=None) -> bool:
    """Set the assignee unless someone changed it meanwhile (conditional UPDATE); note it in the
    timeline and the audit log. False: somebody else was first."""
    guard = (conversation_t.c.assignee_id.is_(None) if only_if_assignee is None
             else conversation_t.c.assignee_id == only_if_assignee)
    done = conn.execute(
        update(conversation_t)
        .where(and_(conversation_t.c.id == conv.id, guard))
        .values(assignee_id=agent_id, updated_at=now, version=bumped())
    ).rowcount
    if not done:
        return False
    # Strictly after every earlier assignment, so the round robin has a clear order even when
    # several are made in one pass with the same clock reading.
    latest = conn.execute(select(func.max(availability_t.c.last_assigned_at))).scalar()
    stamp = max(now, latest + timedelta(microseconds=1)) if latest is not None else now
    touched = conn.execute(
        update(availability_t).where(availability_t.c.agent_id == agent_id).values(last_assigned_at=stamp)
    ).rowcount
    if not touched:
        insert_ignoring_conflict(conn, availability_t, {"agent_id": agent_id, "available": True,
                                                         "last_assigned_at": stamp, "updated_at": now})
    name = conn.execute(select(func.coalesce(agent_t.c.name, agent_t.c.email)).where(agent_t.c.id == agent_id)).scalar()
    conn.execute(message_t.insert().values(
        conversation_id=conv.id, direction=Direction.system, channel=conv.channel,
        text=f"Assigned to {name} ({reason})", sent_at=now, created_at=now,
        metadata={"event": "assignment", "agent_id": agent_id, "reason": reason},
    ))
    audit(conn, "sla", "conversation.assign", f"conversation:{conv.id}", assignee_id=agent_id, reason=reason)
    return True
