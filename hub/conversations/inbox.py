"""The inbox list as an agent sees it: named views (mine, unassigned, open, SLA due soon, snoozed,
all), filters by channel, status, segment and tag, search, sort by last activity or priority;
each row with its last message, how long the customer has waited for an answer, how many of
their messages this agent has not read, the assignee's name and the tags.

A search (q=) looks through every conversation, whatever the view: the view's own filters (its
status, its assignee) apply only when the agent narrows the search to it (within=view), which
the page offers beside the results. Filters the agent chose themselves (channel, status,
segment, tag) always apply.

The lists themselves are hub/conversations/listing.py's (a search sorts by activity: its `q=`
is hub/conversations/search/'s); this module turns the page's query string into one of them and
adds what the inbox row shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, or_, select

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.contract.i18n import gettext as _
from hub.contract.timefmt import parse_iso
from hub.conversations import read_marks, tags
from hub.conversations.listing import ConversationFilter, list_by_priority, list_conversations, list_sla_due
from hub.conversations.queries import conversation_t, customer_t
from hub.store.db import read_tx
from hub.store.models import Agent, ConversationStatus, Direction, Message, ReadMark, Segment, SlaClock, utcnow
from hub.store.search_text import search_text

agent_t = Agent.__table__
message_t = Message.__table__
clock_t = SlaClock.__table__
mark_t = ReadMark.__table__

VIEWS = {
    "mine": "Mine",
    "unassigned": "Unassigned",
    "open": "All open",
    "sla": "SLA due soon",
    "snoozed": "Snoozed",
    "all": "All",
}
SORTS = {"activity": "Last activity", "priority": "Priority"}
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
    # A search looks through every conversation; "view" narrows it to the view's own filters
    # (the page offers that as a chip: the agent sees which conversations were searched).
    within: str = "all"
    tag: str | None = None

    @property
    def narrowed(self) -> bool:
        """Whether the view's own filters (its status, its assignee) apply: always without a
        search, with one only when the agent asked for it."""
        return not self.q or self.within == "view"


def parse_query(params, known_channels: list[str]) -> InboxQuery:
    """An InboxQuery from a page's query string; unknown values are refused with a clear message."""
    view = params.get("view") or "open"
    if view not in VIEWS:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "view", "choices": ", ".join(VIEWS)})
    sort = params.get("sort") or "activity"
    if sort not in SORTS:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "sort", "choices": ", ".join(SORTS)})
    status = params.get("status") or None
    if status is not None and status not in ConversationStatus.__members__:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "status", "choices": ", ".join(ConversationStatus.__members__)})
    channel = params.get("channel") or None
    if channel is not None and channel not in known_channels:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "channel", "choices": ", ".join(known_channels)})
    q = search_text(params.get("q"))
    segment = params.get("segment") or None
    if segment is not None and segment not in Segment.__members__:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "segment", "choices": ", ".join(Segment.__members__)})
    within = params.get("within") or "all"
    if within not in ("all", "view"):
        raise RejectedInput(N_("within must be all or view"))
    tag = params.get("tag") or None
    if tag is not None:
        tag = tags.tag_name(tag)
    return InboxQuery(view=view, channel=channel, status=status, q=q, segment=segment, sort=sort,
                      cursor=params.get("cursor") or None, within=within, tag=tag)


def _filter(agent_id: int, iq: InboxQuery) -> ConversationFilter:
    status = iq.status
    assignee = None
    if not iq.narrowed:
        pass  # a search: the filters the agent chose apply, the view's do not
    elif iq.view == "mine":
        assignee = agent_id
    elif iq.view == "unassigned":
        assignee = 0
        status = status or ConversationStatus.open
    elif iq.view == "open" or (iq.view == "sla" and iq.q):  # (without a search, list_sla_due picks its statuses)
        status = status or ConversationStatus.open
    elif iq.view == "snoozed":
        status = ConversationStatus.snoozed
    return ConversationFilter(status=status, channel=iq.channel, assignee=assignee, segment=iq.segment, q=iq.q,
                              limit=iq.limit, cursor=iq.cursor, tag=iq.tag)


_IDS = bindparam("ids", expanding=True)
_TALK = [Direction.inbound, Direction.outbound]
# Built once: composing them per request cost more than running them (~7 ms of SQLAlchemy work
# per page against ~3 ms in SQLite), the expanding parameter keeps one compiled form.
_LAST_MESSAGES = select(message_t.c.conversation_id, message_t.c.direction, message_t.c.text).where(
    message_t.c.id.in_(
        select(func.max(message_t.c.id))
        .where(message_t.c.conversation_id.in_(_IDS), message_t.c.direction.in_(_TALK))
        .group_by(message_t.c.conversation_id)
    )
)
_ANSWERED = (
    select(message_t.c.conversation_id, func.max(message_t.c.id).label("last_out"))
    .where(message_t.c.conversation_id.in_(_IDS), message_t.c.direction == Direction.outbound)
    .group_by(message_t.c.conversation_id)
    .subquery()
)
_WAITING_SINCE = (
    select(message_t.c.conversation_id, func.min(message_t.c.created_at).label("since"))
    .outerjoin(_ANSWERED, _ANSWERED.c.conversation_id == message_t.c.conversation_id)
    .where(message_t.c.conversation_id.in_(_IDS), message_t.c.direction == Direction.inbound,
           or_(_ANSWERED.c.last_out.is_(None), message_t.c.id > _ANSWERED.c.last_out))
    .group_by(message_t.c.conversation_id)
)
_MARK = (
    select(mark_t.c.conversation_id, mark_t.c.read_at)
    .where(mark_t.c.agent_id == bindparam("agent_id"), mark_t.c.conversation_id.in_(_IDS))
    .subquery()
)
_UNREAD_COUNTS = (
    select(message_t.c.conversation_id, func.count().label("n"))
    .outerjoin(_MARK, _MARK.c.conversation_id == message_t.c.conversation_id)
    .where(message_t.c.conversation_id.in_(_IDS), message_t.c.direction == Direction.inbound,
           or_(_MARK.c.read_at.is_(None), message_t.c.created_at > _MARK.c.read_at))
    .group_by(message_t.c.conversation_id)
)


def _last_messages(conn, ids: list[int]) -> dict[int, Any]:
    """Each conversation's last message to or from the customer (not notes, not system lines):
    what the row previews. One index range (conversation, id) per conversation."""
    if not ids:
        return {}
    return {r.conversation_id: r for r in conn.execute(_LAST_MESSAGES, {"ids": ids})}


def _waiting_since(conn, ids: list[int]) -> dict[int, datetime]:
    """conversation id -> when the customer's oldest message not yet answered came in (no
    outbound message after it); conversations whose customer waits for nobody are left out."""
    if not ids:
        return {}
    return {r.conversation_id: _aware(r.since) for r in conn.execute(_WAITING_SINCE, {"ids": ids}) if r.since is not None}


def _unread_counts(conn, agent_id: int, ids: list[int]) -> dict[int, int]:
    """conversation id -> how many of the customer's messages came in since the agent last opened it."""
    if not ids:
        return {}
    return {r.conversation_id: r.n for r in conn.execute(_UNREAD_COUNTS, {"ids": ids, "agent_id": agent_id})}


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def list_inbox(engine: Engine, agent_id: int, iq: InboxQuery, *, now: datetime | None = None) -> dict[str, Any]:
    """{"items": [row...], "next_cursor": str | None}; rows as list_conversations gives them, plus
    preview (the last message to or from the customer), last_direction, assignee_name, unread,
    unread_count, waiting_seconds (since the customer's oldest unanswered message, open ones
    only), tags, age_seconds."""
    now = now or utcnow()
    f = _filter(agent_id, iq)
    if iq.view == "sla" and not iq.q:
        page = list_sla_due(engine, f, now)
    elif iq.sort == "priority" and not iq.q:
        page = list_by_priority(engine, f)
    else:
        page = list_conversations(engine, f)
    items, next_cursor = page["items"], page["next_cursor"]
    ids = [c["id"] for c in items]
    with read_tx(engine) as conn:
        last = _last_messages(conn, ids)
        waiting = _waiting_since(conn, [c["id"] for c in items if c["status"] == ConversationStatus.open])
        counts = _unread_counts(conn, agent_id, ids)
        labels = tags.tags_of(conn, ids)
        assignees = {c["assignee_id"] for c in items if c["assignee_id"]}
        names = {
            r.id: r.name or r.email
            for r in conn.execute(select(agent_t.c.id, agent_t.c.name, agent_t.c.email).where(agent_t.c.id.in_(assignees)))
        } if assignees else {}
        activity = {c["id"]: parse_iso(c["last_message_at"]) for c in items}
        unread = read_marks.unread(conn, agent_id, activity)
        customer_ids = {c["customer"]["id"] for c in items}
        segments = dict(conn.execute(
            select(customer_t.c.id, customer_t.c.segment).where(customer_t.c.id.in_(customer_ids))
        ).all()) if customer_ids else {}
        warn_at = _warnings(conn, [c["id"] for c in items if c["sla_due_at"]])
    for c in items:
        msg = last.get(c["id"])
        c["preview"] = (" ".join((msg.text or "").split())[:FIRST_WORDS] if msg is not None else "") or c["subject"] or ""
        c["last_direction"] = msg.direction if msg is not None else None
        c["assignee_name"] = names.get(c["assignee_id"])
        c["unread"] = c["id"] in unread
        c["unread_count"] = counts.get(c["id"], 0)
        since = waiting.get(c["id"])
        c["waiting_since"] = since.isoformat() if since else None
        c["waiting_seconds"] = max(0, int((now - since).total_seconds())) if since else None
        c["waiting_label"] = span(now - since) if since else None
        c["tags"] = labels.get(c["id"], [])
        c["age_seconds"] = max(0, int((now - parse_iso(c["created_at"])).total_seconds()))
        c["sla_overdue"] = bool(c["sla_due_at"]) and parse_iso(c["sla_due_at"]) < now
        c["segment"] = segments.get(c["customer"]["id"])
        c.update(sla_row(c["sla_due_at"] and parse_iso(c["sla_due_at"]), warn_at.get(c["id"]), now))
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


def span(delta: timedelta) -> str:
    """A length of time as a short label: 2d 3h, 4h 05m, 12m."""
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(days)sd %(hours)sh") % {"days": days, "hours": hours}
    if hours:
        return _("%(hours)sh %(minutes)sm") % {"hours": hours, "minutes": f"{minutes:02d}"}
    return _("%(minutes)sm") % {"minutes": minutes}


def sla_row(due: datetime | None, warn_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The SLA timer as a row shows it: sla_state ok / warning / overdue and a short label."""
    if not due:
        return {"sla_state": None, "sla_label": None}
    if due < now:
        return {"sla_state": "overdue", "sla_label": _("overdue %(span)s") % {"span": span(now - due)}}
    state = "warning" if warn_at is not None and warn_at <= now else "ok"
    return {"sla_state": state, "sla_label": _("due in %(span)s") % {"span": span(due - now)}}
