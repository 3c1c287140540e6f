"""Lists of conversations: by filters (status, channel, assignee, customer, segment, text) in
order of last activity, by priority, and those whose SLA is due soon. Each page is read through
an index range and continues after a keyset cursor (cursors.py), so a page costs the same at any
depth and however many conversations there are; a text (q=) is searched by search/page.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, tuple_

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.conversations.cursors import decode_cursor, decode_priority_cursor, encode_cursor, encode_priority_cursor
from hub.conversations.queries import conversation_row, conversation_t, customer_t, listed
from hub.conversations.search.page import search_page
from hub.conversations.tags import tagged
from hub.store.db import read_tx
from hub.store.models import ConversationStatus, Priority, Segment

MAX_PAGE = 200
PRIORITY_ORDER = (Priority.urgent, Priority.high, Priority.normal, Priority.low)
SLA_HORIZON = timedelta(hours=4)  # "due soon": overdue, or due within this


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    channel: str | None = None
    assignee: int | None = None  # 0: unassigned
    customer: int | None = None
    segment: str | None = None  # the customer's segment (hub.store.models.Segment)
    q: str | None = None
    limit: int = 50
    cursor: str | None = None
    tag: str | None = None  # folded (hub/conversations/tags.py)


def list_conversations(engine: Engine, f: ConversationFilter) -> dict[str, Any]:
    """Newest activity first, keyset-paginated: a page costs the same at any depth.
    {"items": [conversation_row...], "next_cursor": str | None}."""
    if f.status is not None and f.status not in ConversationStatus.__members__:
        raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "status", "choices": ", ".join(ConversationStatus.__members__)})
    limit = max(1, min(f.limit, MAX_PAGE))
    own: list = []  # conditions on the conversation's own columns
    if f.status:
        own.append(conversation_t.c.status == f.status)
    if f.channel:
        own.append(conversation_t.c.channel == f.channel)
    if f.assignee is not None:
        own.append(conversation_t.c.assignee_id.is_(None) if f.assignee == 0 else conversation_t.c.assignee_id == f.assignee)
    if f.customer is not None:
        own.append(conversation_t.c.customer_id == f.customer)
    if f.tag:
        own.append(tagged(f.tag))
    cursor = decode_cursor(f.cursor) if f.cursor else None
    if cursor:
        own.append(tuple_(conversation_t.c.last_message_at, conversation_t.c.id) < tuple_(*cursor))
    on_customer: list = []
    if f.segment is not None:
        if f.segment not in Segment.__members__:
            raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "segment", "choices": ", ".join(Segment.__members__)})
        on_customer.append(customer_t.c.segment == f.segment)
    stmt = listed().where(*own, *on_customer)
    stmt = stmt.order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc()).limit(limit + 1)
    with read_tx(engine) as conn:
        rows = search_page(conn, stmt, as_phone(f.q), own, on_customer, limit) if f.q else conn.execute(stmt).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].last_message_at, page[-1].id) if len(rows) > limit else None
    return {"items": [conversation_row(r) for r in page], "next_cursor": next_cursor}


_PHONE_LIKE = re.compile(r"\+?[\d\s().-]+")


def as_phone(q: str) -> str:
    """A text typed as a phone number ("+44 20 7946 0958", "(020) 7946-0958") as phones are stored
    (E.164: digits after a +, no separators; a national 0 or an international 00 dropped, as the
    stored number has the country code instead); any other text as it is. Only
    with a space, a + or brackets and six digits or more, so that a date or an order number
    written with hyphens stays a text."""
    digits = "".join(c for c in q if c.isdigit())
    if len(digits) < 6 or not _PHONE_LIKE.fullmatch(q) or not any(c in q for c in " +()"):
        return q
    if q.lstrip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):  # the international prefix
        return "+" + digits[2:]
    # A national trunk prefix (020 7946 0958 is +44 20 7946 0958): the rest is in the stored number.
    return digits[1:] if digits.startswith("0") else digits


def _where(stmt, f: ConversationFilter):
    """The filter's status, channel, assignee, segment and tag (not its customer, text or cursor)."""
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
    if f.tag:
        stmt = stmt.where(tagged(f.tag))
    return stmt


def list_by_priority(engine: Engine, f: ConversationFilter) -> dict[str, Any]:
    """Most urgent first, newest activity first within a priority; as list_conversations answers.
    Reads one index range per priority level, so a page costs the same however many conversations
    there are. The filter's customer and text are not applied (the inbox sorts a search by activity)."""
    start, when, ident = decode_priority_cursor(f.cursor, len(PRIORITY_ORDER)) if f.cursor else (0, None, None)
    rows: list = []
    with read_tx(engine) as conn:
        for level in range(start, len(PRIORITY_ORDER)):
            want = f.limit + 1 - len(rows)
            if want <= 0:
                break
            stmt = _where(listed(), f).where(conversation_t.c.priority == PRIORITY_ORDER[level])
            if level == start and when is not None:
                stmt = stmt.where(tuple_(conversation_t.c.last_message_at, conversation_t.c.id) < tuple_(when, ident))
            stmt = stmt.order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc()).limit(want)
            rows.extend((level, r) for r in conn.execute(stmt).all())
    page = rows[: f.limit]
    next_cursor = None
    if len(rows) > f.limit:
        level, last = page[-1]
        next_cursor = encode_priority_cursor(level, last.last_message_at, last.id)
    return {"items": [conversation_row(r) for _, r in page], "next_cursor": next_cursor}


def list_sla_due(engine: Engine, f: ConversationFilter, now: datetime) -> dict[str, Any]:
    """Conversations whose SLA is overdue or due within SLA_HORIZON, soonest first: one page, no
    cursor (the filter's status, or else open and pending ones)."""
    stmt = _where(listed(), replace(f, status=None)).where(
        conversation_t.c.sla_due_at.is_not(None),
        conversation_t.c.sla_due_at <= now + SLA_HORIZON,
        conversation_t.c.status.in_([f.status] if f.status else [ConversationStatus.open, ConversationStatus.pending]),
    )
    with read_tx(engine) as conn:
        rows = conn.execute(stmt.order_by(conversation_t.c.sla_due_at, conversation_t.c.id).limit(f.limit)).all()
    return {"items": [conversation_row(r) for r in rows], "next_cursor": None}
