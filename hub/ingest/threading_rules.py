"""Which conversation a new inbound message belongs to (DESIGN.md, "Threading").

In order: an explicit conversation reference (a plus address support+c123@, a form link); a
message it replies to (email In-Reply-To/References, a quoted Telegram message); a subject token
like [#123]; the channel thread (a Telegram chat) of the same customer. A resolved conversation
found this way is reopened within the reopen window; a closed one, or one resolved longer ago, is
left alone and the message starts a new conversation.

Nobody joins a stranger's conversation. Conversation numbers are sequential and anyone can name
one, and a mail may list any ids it likes in References, so:
- our own Message-IDs are signed (hub/contract/signing.py): one that does not verify is ignored; one of the
  older unsigned form (computable by anyone who knows the numbers and the customer's address)
  counts only as the exact id of a message stored, like any customer's id, under the rule below;
- a message of the conversation's own customer joins as before; a message of anybody else joins
  through a header only when its sender was a recipient (To/Cc) of the message it names (a
  colleague on Cc answering too), and through a reference or subject token only when its sender
  was a recipient of a message of that conversation; otherwise it starts its own conversation;
- a bounce or auto-reply from another address (a mailer daemon) joins through a verified signed id
  of a mail we sent alone: anybody can make mail look like a bounce.

Continuity: when none of the rules above found anything, a customer's message on another channel
continues their matter. It joins the customer's conversation when exactly one of theirs is open,
pending or resolved with activity within the continuity window, and nothing in the message points
elsewhere: no thread hint that led nowhere (a reply to a mail we do not hold, a number that is not
theirs), no order or reference number the matter never mentioned, no new email thread (call,
form) where the matter already has one on that channel (a customer who starts a new email thread
while an email matter is open means a new matter; a chat is one running thread and continues), and
no other chat of the matter's own channel (another bot or brand, a group). Otherwise the message starts its own conversation, which the inbox shows next
to the customer's others as related (hub/conversations/continuity.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, func, select

from hub.contract.addresses import normalise_email
from hub.contract.errors import RejectedInput
from hub.contract.messages import InboundMessage
from hub.contract.signing import IdKind, classify
from hub.store.models import Conversation, ConversationStatus, Direction, Message, Outbox

conversation_t = Conversation.__table__
message_t = Message.__table__
outbox_t = Outbox.__table__

# Addresses read from a message's To and Cc each (the email parser keeps up to 100).
MAX_RECIPIENTS = 100
# Messages of a conversation whose recipients a number reference is checked against (newest first).
RECIPIENT_LOOKBACK = 200

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
    """Runs a statement and returns its first row: hub.store.sql.CoreStatements or DriverStatements.
    `conn` is their connection, for the rare look-ups that need whole result sets."""

    conn: object

    def first(self, stmt, params: dict): ...


def _fetch(q: Statements, stmt, params: dict) -> Candidate | None:
    row = q.first(stmt, params)
    return Candidate(*row) if row else None


def _address(value) -> str | None:
    """A listed address as identities hold it, or None when it is none."""
    if not isinstance(value, str) or "@" not in value:
        return None
    try:
        return normalise_email(value)
    except RejectedInput:
        return None


def recipients_of(direction: str, metadata, outbox_payload) -> set[str]:
    """Whom a stored message went to (normalised email addresses): the To and Cc of a mail that
    came in; the recipient of one we sent (in its metadata, or for older rows in its outbox row)."""
    meta = metadata if isinstance(metadata, dict) else {}
    listed: list = []
    for key in ("to", "cc"):
        value = meta.get(key)
        if isinstance(value, list):
            listed.extend(value[:MAX_RECIPIENTS])
    if direction == Direction.outbound and not listed and isinstance(outbox_payload, dict):
        listed.append(outbox_payload.get("recipient"))
    return {a for a in map(_address, listed) if a}


# The messages an email names, with what deciding on them needs; for the rare case where the
# newest one is not simply the sender's own (expanding IN: at most MAX_THREAD_IDS ids).
_NAMED_MESSAGES = (
    select(*_COLS, message_t.c.external_id, message_t.c.direction, message_t.c.metadata, outbox_t.c.payload)
    .join(message_t, message_t.c.conversation_id == conversation_t.c.id)
    .outerjoin(outbox_t, outbox_t.c.message_id == message_t.c.id)
    .where(message_t.c.channel == bindparam("channel"), message_t.c.external_id.in_(bindparam("ids", expanding=True)))
    .order_by(message_t.c.id.desc())
)

_CONVERSATION_RECIPIENTS = (
    select(message_t.c.direction, message_t.c.metadata, outbox_t.c.payload)
    .outerjoin(outbox_t, outbox_t.c.message_id == message_t.c.id)
    .where(message_t.c.conversation_id == bindparam("cid"), message_t.c.direction.in_([Direction.inbound, Direction.outbound]))
    .order_by(message_t.c.id.desc())
    .limit(RECIPIENT_LOOKBACK)
)


@dataclass(frozen=True)
class Sender:
    """Who is asking to join: their customer, their normalised address, whether a machine wrote."""

    customer_id: int
    address: str | None = None
    automated: bool = False


def _usable_ids(ids, key: bytes | None) -> tuple[list[str], set[str]]:
    """The ids worth looking up, and which of them are signed ids of ours that verified. Forged
    ids are dropped here; any other id (a customer's, or ours of the older unsigned form) is only
    as good as the stored message it names and the recipient rule."""
    usable, signed = [], set()
    for external_id in ids:
        kind = classify(key, external_id)
        if kind is IdKind.forged:
            continue
        if kind is IdKind.signed:
            signed.add(external_id)
        usable.append(external_id)
    return usable, signed


def _may_join_by_reply(row, sender: Sender, signed: set[str]) -> bool:
    """Whether `sender` may join the conversation of the stored message `row` they named."""
    if row.customer_id == sender.customer_id:
        return True
    if sender.automated:
        # A mailer daemon is never a recipient: the bounced mail's signed id, on the mail we
        # sent, is its proof.
        return row.external_id in signed and row.direction == Direction.outbound
    return sender.address is not None and sender.address in recipients_of(row.direction, row.metadata, row.payload)


def _by_headers(q: Statements, msg: InboundMessage, sender: Sender, key: bytes | None) -> Candidate | None:
    ids, signed = _usable_ids(msg.thread.in_reply_to, key)
    if not ids:
        return None
    # The common case in one indexed look-up: the newest message named is in the sender's own conversation.
    row = q.first(*_reply_lookup(msg.channel, ids))
    if row is None:
        return None
    cand = Candidate(*row)
    if cand.customer_id == sender.customer_id:
        return cand
    for named in q.conn.execute(_NAMED_MESSAGES, {"channel": msg.channel, "ids": ids}).all():
        if _may_join_by_reply(named, sender, signed):
            return Candidate(named.id, named.customer_id, named.status, named.resolved_at)
    return None


def _may_join_by_number(q: Statements, cand: Candidate | None, sender: Sender) -> Candidate | None:
    """A conversation named by its number (a plus address, a form link, a subject token): its own
    customer, or somebody who was a recipient of one of its messages."""
    if cand is None or cand.customer_id == sender.customer_id:
        return cand
    if sender.automated or sender.address is None:
        return None
    for row in q.conn.execute(_CONVERSATION_RECIPIENTS, {"cid": cand.id}).all():
        if sender.address in recipients_of(row.direction, row.metadata, row.payload):
            return cand
    return None


def _candidates(q: Statements, msg: InboundMessage, sender: Sender, key: bytes | None) -> Iterator[tuple[str, Candidate | None]]:
    """The rules in order, each looked up only when the ones before it found nothing."""
    hints = msg.thread
    if hints.conversation_id is not None:
        yield "reference", _may_join_by_number(q, _fetch(q, _BY_ID, {"cid": hints.conversation_id}), sender)

    if hints.in_reply_to:
        yield "in_reply_to", _by_headers(q, msg, sender, key)

    token = subject_token(msg.subject)
    if token is not None:
        yield "subject_token", _may_join_by_number(q, _fetch(q, _BY_ID, {"cid": token}), sender)

    if hints.thread_key is not None:
        yield "thread", _fetch(
            q, _BY_THREAD, {"channel": msg.channel, "thread_key": hints.thread_key, "customer_id": sender.customer_id}
        )


# Order numbers and other references a customer quotes ("SO-1234", "#10023", "A1001"): a message
# naming one its matter never mentioned is about something else. Letters and digits mixed, or a
# hash and four digits or more; plain numbers (quantities, years) do not count.
REFERENCE = re.compile(r"(?<![\w-])(?:#\d{4,}|[A-Za-z]{1,6}-?\d{3,}(?:-\d+)?)(?![\w-])")
# How much of a message and of its matter is read for references (linear, bounded work).
REFERENCE_SCAN_CHARS = 20_000
MATTER_LOOKBACK = 20
# Two matters open: the message cannot tell which it continues; looking at more says nothing new.
_MATTERS_LOOKED_AT = 2

_RECENT_MATTERS = (
    select(*_COLS, conversation_t.c.subject, conversation_t.c.channel, conversation_t.c.thread_key)
    .where(
        conversation_t.c.customer_id == bindparam("customer_id"),
        conversation_t.c.status.in_([ConversationStatus.open, ConversationStatus.pending, ConversationStatus.snoozed,
                                      ConversationStatus.resolved]),
        conversation_t.c.last_message_at >= bindparam("since"),
    )
    .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
    .limit(_MATTERS_LOOKED_AT)
)
_MATTER_CHANNELS = (
    select(message_t.c.channel).distinct()
    .where(message_t.c.conversation_id == bindparam("cid"), message_t.c.direction == Direction.inbound)
)
# A bounded prefix of each text: a message may hold a megabyte; references sit near the top.
_MATTER_TEXTS = (
    select(message_t.c.subject, func.substr(message_t.c.text, 1, REFERENCE_SCAN_CHARS).label("text"))
    .where(message_t.c.conversation_id == bindparam("cid"), message_t.c.direction == Direction.inbound)
    .order_by(message_t.c.id.desc())
    .limit(MATTER_LOOKBACK)
)


def references_in(*texts: str | None) -> set[str]:
    """The order and reference numbers quoted in `texts`, normalised ("so1234" for "SO-1234")."""
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(m.group(0).lower().replace("-", "").lstrip("#") for m in REFERENCE.finditer(text[:REFERENCE_SCAN_CHARS]))
    return found


def _points_elsewhere(msg: InboundMessage) -> bool:
    """A thread hint that resolved to nothing the sender may join: it names some other thread."""
    hints = msg.thread
    return hints.conversation_id is not None or bool(hints.in_reply_to) or subject_token(msg.subject) is not None


def continue_matter(q: Statements, msg: InboundMessage, customer_id: int, *, now: datetime, window: timedelta) -> ThreadDecision | None:
    """The customer's one matter this message plainly continues, or None (see the module's docstring)."""
    if window <= timedelta(0) or _points_elsewhere(msg):
        return None
    rows = q.conn.execute(_RECENT_MATTERS, {"customer_id": customer_id, "since": now - window}).all()
    if len(rows) != 1:
        return None
    matter = rows[0]
    if msg.thread.thread_key is not None and matter.channel == msg.channel and matter.thread_key != msg.thread.thread_key:
        return None  # another chat on the same channel (another bot or brand, a group): its own thread
    if msg.thread.thread_key is None and msg.channel in set(q.conn.execute(_MATTER_CHANNELS, {"cid": matter.id}).scalars()):
        # Email, calls and forms thread on their own: a new email thread (a new call, a new form)
        # beside the matter's own one on that channel is a new matter. A chat is one running thread.
        return None
    said = references_in(msg.subject, msg.text)
    if said:
        texts = q.conn.execute(_MATTER_TEXTS, {"cid": matter.id}).all()
        known = references_in(matter.subject, *(t.subject for t in texts), *(t.text for t in texts))
        if not said & known and known:
            return None
    reopen = matter.status == ConversationStatus.resolved
    return ThreadDecision(matter.id, reopen=reopen, matched_by="continuity")


def find_conversation(
    q: Statements,
    msg: InboundMessage,
    customer_id: int,
    *,
    now: datetime,
    reopen_window: timedelta,
    automated: bool = False,
    sender_address: str | None = None,
    message_id_key: bytes | None = None,
    continuity_window: timedelta | None = None,
    new_customer: bool = False,
) -> ThreadDecision:
    """automated: an auto-reply, bounce or button press joins the conversation it belongs to
    whatever its status, and never reopens it. sender_address: the sender's normalised address
    (the recipient rule). message_id_key: what our signed Message-IDs verify with; without it only
    the store vouches for ids of ours (legacy ones). continuity_window: a message nothing threads
    continues the customer's one recent matter (continue_matter); None turns that off.
    new_customer: created by this message, so there is no matter to continue."""
    sender = Sender(customer_id, sender_address, automated)
    found = _by_rules(q, msg, sender, now=now, reopen_window=reopen_window, automated=automated, key=message_id_key)
    if found.conversation_id is not None or automated or new_customer or continuity_window is None:
        return found
    if found.matched_by not in ("new", "thread:expired"):
        return found  # it named a thread of theirs that is over: a new matter, not the current one
    return continue_matter(q, msg, customer_id, now=now, window=continuity_window) or found


def _by_rules(q: Statements, msg: InboundMessage, sender: Sender, *, now: datetime, reopen_window: timedelta, automated: bool,
              key: bytes | None) -> ThreadDecision:
    for how, cand in _candidates(q, msg, sender, key):
        if cand is None:
            continue
        if automated:
            return ThreadDecision(cand.id, matched_by=how)
        if cand.status in (ConversationStatus.open, ConversationStatus.pending, ConversationStatus.snoozed):
            return ThreadDecision(cand.id, matched_by=how)  # a snoozed one wakes: the customer wrote
        if cand.status == ConversationStatus.resolved and cand.resolved_at and now - cand.resolved_at <= reopen_window:
            return ThreadDecision(cand.id, reopen=True, matched_by=how)
        # Closed, or resolved too long ago: the customer starts something new. Stop looking, so
        # a weaker rule does not glue the message onto an older conversation either.
        return ThreadDecision(None, matched_by=f"{how}:expired")
    return ThreadDecision(None)
