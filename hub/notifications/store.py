"""Agents' notifications: stored once per agent and event, listed newest first, marked read.

notify() is the one way in, in the caller's transaction (the note that mentions, the worker that
brings a snoozed conversation back): the notification exists exactly when the change does. Its
dedupe_key names the event, so reporting one event twice (two processes, a retried pass) tells
the agent once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from hub.contract.errors import NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.timefmt import iso
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, Notification, utcnow
from hub.store.sql import insert_ignoring_conflict

notification_t = Notification.__table__
agent_t = Agent.__table__

KINDS = ("mention", "assignment", "snooze_back", "sla_warning")
TEXT_LIMIT = 500


def notify(conn: Connection, agent_id: int, kind: str, text: str, *, dedupe_key: str,
           conversation_id: int | None = None) -> int | None:
    """Tell the agent something, in the caller's transaction; the new notification's id, or None
    when this event (agent_id, dedupe_key) was told already."""
    if kind not in KINDS:
        raise RejectedInput(f"notification kind must be one of: {', '.join(KINDS)}")
    clean = " ".join(text.split())
    if len(clean) > TEXT_LIMIT:
        clean = clean[: TEXT_LIMIT - 1] + "…"
    return insert_ignoring_conflict(conn, notification_t, {
        "agent_id": agent_id, "kind": kind, "conversation_id": conversation_id, "text": clean,
        "dedupe_key": dedupe_key[:200], "created_at": utcnow(),
    })


def notify_snooze_back(conn: Connection, conversation_id: int, assignee_id: int | None, *, until=None) -> int | None:
    """A snoozed conversation came back by itself: its assignee is told (nobody when unassigned).
    Call it in the transaction that reopens the conversation."""
    if assignee_id is None:
        return None
    stamp = iso(until) if until is not None else iso(utcnow())
    return notify(conn, assignee_id, "snooze_back", f"Conversation #{conversation_id} is back from snooze",
                  dedupe_key=f"snooze:{conversation_id}:{stamp}", conversation_id=conversation_id)


def _out(r) -> dict[str, Any]:
    return {"id": r.id, "kind": r.kind, "conversation_id": r.conversation_id, "text": r.text,
            "created_at": iso(r.created_at), "read": r.read_at is not None}


def list_for(engine: Engine, agent_id: int, *, unread_only: bool = False, limit: int = 20,
             before: int | None = None) -> dict[str, Any]:
    """The agent's notifications, newest first, and how many are unread."""
    limit = max(1, min(int(limit), 100))
    with read_tx(engine) as conn:
        q = select(notification_t).where(notification_t.c.agent_id == agent_id)
        if unread_only:
            q = q.where(notification_t.c.read_at.is_(None))
        if before is not None:
            q = q.where(notification_t.c.id < before)
        rows = conn.execute(q.order_by(notification_t.c.id.desc()).limit(limit)).all()
        unread = conn.execute(select(func.count()).select_from(notification_t)
                              .where(notification_t.c.agent_id == agent_id, notification_t.c.read_at.is_(None))).scalar_one()
    return {"items": [_out(r) for r in rows], "unread": unread}


def mark_read(engine: Engine, agent_id: int, ids: list[int] | None = None) -> int:
    """Mark the agent's notifications read: those of `ids` (every one when None). Another agent's
    id is NotFound, as an unknown one: an agent never learns what others are told."""
    now = utcnow()
    with write_tx(engine) as conn:
        q = update(notification_t).where(notification_t.c.agent_id == agent_id, notification_t.c.read_at.is_(None))
        if ids is not None:
            ids = sorted({int(i) for i in ids})
            if not ids:
                return 0
            if len(ids) > 500:
                raise RejectedInput(N_("mark at most 500 notifications at a time"))
            mine = set(conn.execute(select(notification_t.c.id).where(notification_t.c.id.in_(ids),
                                                                      notification_t.c.agent_id == agent_id)).scalars())
            missing = [i for i in ids if i not in mine]
            if missing:
                raise NotFound(N_("you have no notification %(id)s"), params={"id": missing[0]})
            q = q.where(notification_t.c.id.in_(ids))
        return conn.execute(q.values(read_at=now)).rowcount


def newest_id(engine: Engine) -> int:
    with read_tx(engine) as conn:
        return conn.execute(select(func.max(notification_t.c.id))).scalar() or 0


def recipients_since(engine: Engine, after: int) -> tuple[int, set[int]]:
    """The newest notification id, and the agents told something after `after`."""
    with read_tx(engine) as conn:
        rows = conn.execute(select(notification_t.c.id, notification_t.c.agent_id)
                            .where(notification_t.c.id > after).order_by(notification_t.c.id).limit(1000)).all()
    if not rows:
        return after, set()
    return rows[-1].id, {r.agent_id for r in rows}
