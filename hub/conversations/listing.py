"""The inbox list as an agent sees it: named views (mine, unassigned, open, SLA due soon, all),
filters by channel and status, search, sort by last activity or priority; each row with the
conversation's first words when it has no subject, the assignee's name and whether it is unread
to this agent.

Sorting by activity and searching are hub.conversations.list_conversations' (its `q=` is where
full-text search lives). Sorting by priority reads one index range per priority level (most
urgent first), so a page costs the same however many conversations there are.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, tuple_

from hub.conversations import core as convs
from hub.conversations import read_marks
from hub.store.db import read_tx
from hub.contract.errors import RejectedInput
from hub.store.search_text import search_text
from hub.store.models import Agent, ConversationStatus, Message, Priority, Segment, SlaClock, utcnow

agent_t = Agent.__table__
message_t = Message.__table__
clock_t = SlaClock.__table__
conversation_t = convs.conversation_t
customer_t = convs.customer_t

VIEWS = {
    "mine": "Mine",
    "unassigned": "Unassigned",
    "open": "All open",
    "sla": "SLA due soon",
    "all": "All",
}
SORTS = {"activity": "Last activity", "priority": "Priority"}
PRIORITY_ORDER = (Priority.urgent, Priority.high, Priority.normal, Priority.low)
SLA_HORIZON = timedelta(hours=4)  # "due soon": overdue, or due within this
FIRST_WORDS = 140
PAGE = 50


@dataclass(frozen=True)
class InboxQuery:
    view: str = "open"
    channel: str | None = None
    status: str | None = None
    q: str | None = None
    segment: str | None = None  # the customer's segment (general / potential / key)
    sort: str = "activity"
    cursor: str | None = None
    limit: int = PAGE


def parse_query(params, known_channels: list[str]) -> InboxQuery:
    """An InboxQuery from a page's query string; unknown values are refused with a clear message."""
    view = params.get("view") or "open"
    if view not in VIEWS:
        raise RejectedInput(f"view must be one of: {', '.join(VIEWS)}")
    sort = params.get("sort") or "activity"
    if sort not in SORTS:
        raise RejectedInput(f"sort must be one of: {', '.join(SORTS)}")
    status = params.get("status") or None
    if status is not None and status not in ConversationStatus.__members__:
        raise RejectedInput(f"status must be one of: {', '.join(ConversationStatus.__members__)}")
    channel = params.get("channel") or None
    if channel is not None and channel not in known_channels:
        raise RejectedInput(f"channel must be one of: {', '.join(known_channels)}")
    q = search_text(params.get("q"))
    segment = params.get("segment") or None
    if segment is not None and segment not in Segment.__members__:
        raise RejectedInput(f"segment must be one of: {', '.join(Segment.__members__)}")
    return InboxQuery(view=view, channel=channel, status=status, q=q, segment=segment, sort=sort,
                      cursor=params.get("cursor") or None)


def _filter(agent_id: int, iq: InboxQuery) -> convs.ConversationFilter:
    status = iq.status
    assignee = None
    if iq.view == "mine":
        assignee = agent_id
    elif iq.view == "unassigned":
        assignee = 0
        status = status or ConversationStatus.open
    elif iq.view == "open":
        status = status or ConversationStatus.open
    return convs.ConversationFilter(status=status, channel=iq.channel, assignee=assignee, segment=iq.segment, q=iq.q,
                                    limit=iq.limit, cursor=iq.cursor)


def _where(stmt, f: convs.ConversationFilter):
    if f.status:
        stmt = stmt.where(conversation_t.c.status == f.status)
    if f.channel:
        stmt = stmt.where(conversation_t.c.channel == f.channel)
    if f.assignee is not None:
        stmt = stmt.where(
            conversation_t.c.assignee_id.is_(None) if f.assignee == 0 else conversation_t.c.assignee_id == f.assignee
        )
    if f.segment:
        stmt = stmt.where(customer_t.c.segment == f.segment)
    return stmt


def _base():
    return select(*convs._LIST_COLS).join(customer_t, customer_t.c.id == conversation_t.c.customer_id)


def _encode(level: int, when: datetime, ident: int) -> str:
    return base64.urlsafe_b64encode(f"{level}|{convs.iso(when)}|{ident}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[int, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        level, when, ident = raw.split("|")
        level_i = int(level)
        if not 0 <= level_i < len(PRIORITY_ORDER):
            raise ValueError(level)
        return level_i, datetime.fromisoformat(when.replace("Z", "+00:00")), int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RejectedInput("the cursor is not valid; use the link to the next page") from None


def _by_priority(conn, f: convs.ConversationFilter, cursor: str | None) -> tuple[list, str | None]:
    start, when, ident = _decode(cursor) if cursor else (0, None, None)
    rows: list = []
    for level in range(start, len(PRIORITY_ORDER)):
        want = f.limit + 1 - len(rows)
        if want <= 0:
            break
        stmt = _where(_base(), f).where(conversation_t.c.priority == PRIORITY_ORDER[level])
        if level == start and when is not None:
            stmt = stmt.where(tuple_(conversation_t.c.last_message_at, conversation_t.c.id) < tuple_(when, ident))
        stmt = stmt.order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc()).limit(want)
        rows.extend((level, r) for r in conn.execute(stmt).all())
    page = rows[: f.limit]
    next_cursor = None
    if len(rows) > f.limit:
        level, last = page[-1]
        next_cursor = _encode(level, last.last_message_at, last.id)
    return [r for _, r in page], next_cursor


def _sla_due(conn, f: convs.ConversationFilter, now: datetime) -> list:
    stmt = _where(_base(), replace(f, status=None)).where(
        conversation_t.c.sla_due_at.is_not(None),
        conversation_t.c.sla_due_at <= now + SLA_HORIZON,
        conversation_t.c.status.in_([f.status] if f.status else [ConversationStatus.open, ConversationStatus.pending]),
    )
    return conn.execute(stmt.order_by(conversation_t.c.sla_due_at, conversation_t.c.id).limit(f.limit)).all()


def _first_words(conn, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    first = (
        select(func.min(message_t.c.id))
        .where(message_t.c.conversation_id.in_(ids), message_t.c.direction == "inbound")
        .group_by(message_t.c.conversation_id)
    )
    rows = conn.execute(select(message_t.c.conversation_id, message_t.c.text).where(message_t.c.id.in_(first))).all()
    return {r.conversation_id: " ".join((r.text or "").split())[:FIRST_WORDS] for r in rows}


def list_inbox(engine: Engine, agent_id: int, iq: InboxQuery, *, now: datetime | None = None) -> dict[str, Any]:
    """{"items": [row...], "next_cursor": str | None}; rows as list_conversations gives them, plus
    preview, assignee_name, unread, age_seconds."""
    now = now or utcnow()
    f = _filter(agent_id, iq)
    if iq.view == "sla":
        with read_tx(engine) as conn:
            items, next_cursor = [convs._conversation_dict(r) for r in _sla_due(conn, f, now)], None
    elif iq.sort == "priority" and not iq.q:
        with read_tx(engine) as conn:
            rows, next_cursor = _by_priority(conn, f, iq.cursor)
        items = [convs._conversation_dict(r) for r in rows]
    else:
        page = convs.list_conversations(engine, f)
        items, next_cursor = page["items"], page["next_cursor"]
    ids = [c["id"] for c in items]
    with read_tx(engine) as conn:
        no_subject = [c["id"] for c in items if not c["subject"]]
        preview = _first_words(conn, no_subject)
        assignees = {c["assignee_id"] for c in items if c["assignee_id"]}
        names = {
            r.id: r.name or r.email
            for r in conn.execute(select(agent_t.c.id, agent_t.c.name, agent_t.c.email).where(agent_t.c.id.in_(assignees)))
        } if assignees else {}
        activity = {c["id"]: _parse(c["last_message_at"]) for c in items}
        unread = read_marks.unread(conn, agent_id, activity)
        customer_ids = {c["customer"]["id"] for c in items}
        segments = dict(conn.execute(
            select(customer_t.c.id, customer_t.c.segment).where(customer_t.c.id.in_(customer_ids))
        ).all()) if customer_ids else {}
        warn_at = _warnings(conn, [c["id"] for c in items if c["sla_due_at"]])
    for c in items:
        c["preview"] = c["subject"] or preview.get(c["id"]) or ""
        c["assignee_name"] = names.get(c["assignee_id"])
        c["unread"] = c["id"] in unread
        c["age_seconds"] = max(0, int((now - _parse(c["created_at"])).total_seconds()))
        c["sla_overdue"] = bool(c["sla_due_at"]) and _parse(c["sla_due_at"]) < now
        c["segment"] = segments.get(c["customer"]["id"])
        c.update(sla_row(c["sla_due_at"] and _parse(c["sla_due_at"]), warn_at.get(c["id"]), now))
    return {"items": items, "next_cursor": next_cursor, "ids": ids}


def _warnings(conn, ids: list[int]) -> dict[int, datetime]:
    """conversation id -> when its earliest running timer's warning is due (hub/sla/timers.py's clock)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(clock_t.c.conversation_id, clock_t.c.first_response_warn_at, clock_t.c.resolution_warn_at,
               conversation_t.c.first_response_at)
        .join(conversation_t, conversation_t.c.id == clock_t.c.conversation_id)
        .where(clock_t.c.conversation_id.in_(ids))
    ).all()
    out = {}
    for r in rows:
        points = [p for p in (None if r.first_response_at else r.first_response_warn_at, r.resolution_warn_at) if p]
        if points:
            out[r.conversation_id] = min(points)
    return out


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def sla_row(due: datetime | None, warn_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The SLA timer as a row shows it: sla_state ok / warning / overdue and a short label."""
    if not due:
        return {"sla_state": None, "sla_label": None}
    if due < now:
        return {"sla_state": "overdue", "sla_label": f"overdue {_span(now - due)}"}
    state = "warning" if warn_at is not None and warn_at <= now else "ok"
    return {"sla_state": state, "sla_label": f"due in {_span(due - now)}"}


def _parse(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
