"""Which conversation a new inbound message belongs to (DESIGN.md, "Threading").

In order: an explicit conversation reference of the same customer; a message it replies to
(email In-Reply-To/References, a quoted Telegram message); a subject token like [#123] of the same
customer; the channel thread (a Telegram chat) of the same customer. A resolved conversation found
this way is reopened within the reopen window; a closed one, or one resolved longer ago, is left
alone and the message starts a new conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator, Protocol

from sqlalchemy import bindparam, select

from hub.messages import InboundMessage
from hub.models import Conversation, ConversationStatus, Message

conversation_t = Conversation.__table__
message_t = Message.__table__

SUBJECT_TOKEN = re.compile(r"\[#(\d{1,12})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|rif|tr|回复|回覆|答复|转发)\s*(\[\d+\])?\s*[:：]\s*)+", re.I)

@dataclass(frozen=True)
class Candidate:
    id: int
    customer_id: int
    status: str
    resolved_at: datetime | None


@dataclass(frozen=True)
class ThreadDecision:
    conversation_id: int | None  # None: start a new conversation
    reopen: bool = False
    matched_by: str = "new"


def clean_subject(subject: str | None) -> str | None:
    """'Re: Fwd: Where is my order? [#12]' -> 'Where is my order?'."""
    if not subject:
        return None
    cleaned = SUBJECT_TOKEN.sub("", _REPLY_PREFIX.sub("", subject)).strip()
    return cleaned[:500] or None


def subject_token(subject: str | None) -> int | None:
    if not subject:
        return None
    match = SUBJECT_TOKEN.search(subject)
    return int(match.group(1)) if match else None


_COLS = (conversation_t.c.id, conversation_t.c.customer_id, conversation_t.c.status, conversation_t.c.resolved_at)


# Built once: the ingest hot path then only binds values to cached compiled statements.
_BY_ID = select(*_COLS).where(conversation_t.c.id == bindparam("cid"))


def _by_reply(ids):
    """The conversation of the newest message among `ids` (stored external ids of the channel)."""
    return select(*_COLS).join(message_t, message_t.c.conversation_id == conversation_t.c.id).where(
        message_t.c.channel == bindparam("channel"), message_t.c.external_id.in_(ids)
    ).order_by(message_t.c.id.desc()).limit(1)


# One statement per count of ids up to a handful (a Telegram reply quotes one message; an email
# names its parent and a few ancestors): plain binds, so the ingest hot path can run them on the
# bare driver. Longer reference chains use an expanding IN.
_MAX_FIXED_REPLY_IDS = 8
_BY_REPLY_N = [None] + [_by_reply([bindparam(f"id{i}") for i in range(n)]) for n in range(1, _MAX_FIXED_REPLY_IDS + 1)]
_BY_REPLY_MANY = _by_reply(bindparam("ids", expanding=True))


def _reply_lookup(channel: str, ids: list[str]):
    if len(ids) <= _MAX_FIXED_REPLY_IDS:
        return _BY_REPLY_N[len(ids)], {"channel": channel, **{f"id{i}": v for i, v in enumerate(ids)}}
    return _BY_REPLY_MANY, {"channel": channel, "ids": ids}


_BY_THREAD = (
    select(*_COLS)
    .where(
        conversation_t.c.channel == bindparam("channel"),
        conversation_t.c.thread_key == bindparam("thread_key"),
        conversation_t.c.customer_id == bindparam("customer_id"),
    )
    .order_by(conversation_t.c.id.desc())
    .limit(1)
)


class Statements(Protocol):
    """Runs a statement and returns its first row: hub.sql.CoreStatements or DriverStatements."""

    def first(self, stmt, params: dict): ...


def _fetch(q: Statements, stmt, params: dict) -> Candidate | None:
    row = q.first(stmt, params)
    return Candidate(*row) if row else None


def _candidates(q: Statements, msg: InboundMessage, customer_id: int) -> Iterator[tuple[str, Candidate | None]]:
    """The rules in order, each looked up only when the ones before it found nothing."""
    hints = msg.thread
    if hints.conversation_id is not None:
        cand = _fetch(q, _BY_ID, {"cid": hints.conversation_id})
        # A reference to another customer's conversation is ignored: ids are guessable.
        yield "reference", cand if cand and cand.customer_id == customer_id else None

    if hints.in_reply_to:
        # Whoever holds the id of a message in a conversation received it (a colleague on CC
        # answering too), so this match is not limited to the same customer.
        yield "in_reply_to", _fetch(q, *_reply_lookup(msg.channel, list(hints.in_reply_to)))

    token = subject_token(msg.subject)
    if token is not None:
        cand = _fetch(q, _BY_ID, {"cid": token})
        yield "subject_token", cand if cand and cand.customer_id == customer_id else None

    if hints.thread_key is not None:
        yield "thread", _fetch(
            q, _BY_THREAD, {"channel": msg.channel, "thread_key": hints.thread_key, "customer_id": customer_id}
        )


def find_conversation(
    q: Statements,
    msg: InboundMessage,
    customer_id: int,
    *,
    now: datetime,
    reopen_window: timedelta,
    automated: bool = False,
) -> ThreadDecision:
    """automated: an auto-reply, bounce or button press joins the conversation it belongs to
    whatever its status, and never reopens it."""
    for how, cand in _candidates(q, msg, customer_id):
        if cand is None:
            continue
        if automated:
            return ThreadDecision(cand.id, matched_by=how)
        if cand.status in (ConversationStatus.open, ConversationStatus.pending):
            return ThreadDecision(cand.id, matched_by=how)
        if cand.status == ConversationStatus.resolved and cand.resolved_at and now - cand.resolved_at <= reopen_window:
            return ThreadDecision(cand.id, reopen=True, matched_by=how)
        # Closed, or resolved too long ago: the customer starts something new. Stop looking, so
        # a weaker rule does not glue the message onto an older conversation either.
        return ThreadDecision(None, matched_by=f"{how}:expired")
    return ThreadDecision(None)
