"""One customer, several matters: what a conversation shows of the customer's others, and how agents
put a message where it belongs.

Ingest already joins a message to the customer's one current matter when nothing points elsewhere
(hub/ingest/threading_rules.py, continue_matter). When it could not tell (two matters open, the
window passed), the new conversation sits beside the others as related: the conversation page
shows them as a compact strip, not interleaved. An agent who sees that two conversations are one
matter merges them; a message in the wrong one is moved. Each of these leaves an event in the
timeline that records exactly what moved, so it can be undone from there, once.

Only conversations of one customer are ever combined: a message is never moved to a stranger.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import OperationalError

from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations.versions import bumped
from hub.store.audit import audit
from hub.store.db import write_tx
from hub.store.models import Conversation, ConversationStatus, Direction, Message, ScmFact, utcnow

conversation_t = Conversation.__table__
message_t = Message.__table__
fact_t = ScmFact.__table__

# Conversations of the customer shown as related: the open ones, and any active this recently.
RELATED_WINDOW = timedelta(days=7)
MAX_RELATED = 10
# A merge moves at most this many messages (a conversation larger than that is not one matter).
MAX_MERGE = 5000
MOVED, MERGED = "message.moved", "conversation.merged"


def related(conn: Connection, conversation_id: int, customer_id: int, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The customer's other conversations an agent should know of here: open or pending ones, and
    those active within RELATED_WINDOW, newest activity first, each with the channels it came by."""
    since = (now or utcnow()) - RELATED_WINDOW
    rows = conn.execute(
        select(conversation_t.c.id, conversation_t.c.subject, conversation_t.c.status, conversation_t.c.channel,
               conversation_t.c.assignee_id, conversation_t.c.last_message_at)
        .where(conversation_t.c.customer_id == customer_id, conversation_t.c.id != conversation_id,
               (conversation_t.c.status.in_([ConversationStatus.open, ConversationStatus.pending]))
               | (conversation_t.c.last_message_at >= since))
        .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
        .limit(MAX_RELATED)
    ).all()
    channels: dict[int, set[str]] = {}
    if rows:
        for cid, channel in conn.execute(
            select(message_t.c.conversation_id, message_t.c.channel).distinct()
            .where(message_t.c.conversation_id.in_([r.id for r in rows]), message_t.c.direction == Direction.inbound)
        ):
            channels.setdefault(cid, set()).add(channel)
    return [{"id": r.id, "subject": r.subject, "status": r.status, "assignee_id": r.assignee_id,
             "channels": sorted(channels.get(r.id) or {r.channel}), "last_message_at": r.last_message_at} for r in rows]


def _conversation(conn: Connection, conversation_id: int, *, lock: bool = False):
    stmt = select(conversation_t).where(conversation_t.c.id == conversation_id)
    row = conn.execute(stmt.with_for_update() if lock and conn.dialect.name == "postgresql" else stmt).first()
    if row is None:
        raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
    return row


def _pair(conn: Connection, first_id: int, second_id: int):
    """Both conversations, locked in the order of their ids (as every other writer that locks
    several takes them), so that two writers never wait for each other."""
    rows = {cid: _conversation(conn, cid, lock=True) for cid in sorted({first_id, second_id})}
    return rows[first_id], rows[second_id]


def _same_customer(a, b) -> None:
    if a.id == b.id:
        raise RejectedInput(N_("that is the same conversation"))
    if a.customer_id != b.customer_id:
        # Never: it would show one customer's messages to whoever answers another.
        raise RejectedInput(N_("only conversations of the same customer can be combined; merge the customers first"))


def _event(conn: Connection, conv, text: str, meta: dict, now: datetime) -> int:
    return conn.execute(message_t.insert().values(
        conversation_id=conv.id, direction=Direction.system, channel=conv.channel, text=text, sent_at=now, created_at=now,
        metadata=meta,
    ).returning(message_t.c.id)).scalar_one()


def _touch(conn: Connection, conversation_id: int, now: datetime, **values) -> None:
    latest = conn.execute(
        select(func.max(message_t.c.sent_at)).where(message_t.c.conversation_id == conversation_id,
                                                    message_t.c.direction != Direction.system)
    ).scalar()
    if latest is not None:
        values["last_message_at"] = latest
    conn.execute(update(conversation_t).where(conversation_t.c.id == conversation_id)
                 .values(updated_at=now, version=bumped(), **values))


# PostgreSQL deadlock, serialisation failure: the routing worker writes the same messages and
# conversations (in its own order); the transaction is simply run again.
_RETRYABLE_SQLSTATES = ("40P01", "40001")


def _retried(action):
    @functools.wraps(action)
    def run(*args, **kwargs):
        for attempt in range(3):
            try:
                return action(*args, **kwargs)
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES or attempt == 2:
                    raise
        raise AssertionError("unreachable")
    return run


@_retried
def move_message(engine: Engine, message_id: int, to_conversation_id: int, who: Principal) -> dict[str, Any]:
    """Move one message (a customer's, a reply or a note) to another conversation of the same
    customer; both timelines say so, and the target's event can undo it."""
    now = utcnow()
    with write_tx(engine) as conn:
        msg = conn.execute(select(message_t.c.id, message_t.c.conversation_id, message_t.c.direction)
                           .where(message_t.c.id == message_id)).first()
        if msg is None:
            raise NotFound(N_("message %(id)s does not exist"), params={"id": message_id})
        if msg.direction == Direction.system:
            raise RejectedInput(N_("events stay where they happened; move the message they are about"))
        source, target = _pair(conn, msg.conversation_id, to_conversation_id)
        _same_customer(source, target)
        conn.execute(update(message_t).where(message_t.c.id == message_id).values(conversation_id=target.id))
        conn.execute(update(fact_t).where(fact_t.c.message_id == message_id).values(conversation_id=target.id))
        meta = {"event": MOVED, "message_ids": [message_id], "from": source.id, "into": target.id, "by": who.actor}
        event_id = _event(conn, target, f"Message moved here from #{source.id} by {who.actor}", meta, now)
        _event(conn, source, f"Message moved to #{target.id} by {who.actor}", {**meta, "event": MOVED + ".away"}, now)
        _touch(conn, source.id, now)
        _touch(conn, target.id, now)
        audit(conn, who.actor, "conversation.move_message", f"conversation:{target.id}", message=message_id, source=source.id)
    return {"event_id": event_id, "message_ids": [message_id], "source_id": source.id, "target_id": target.id}


@_retried
def merge(engine: Engine, source_id: int, into_id: int, who: Principal) -> dict[str, Any]:
    """Merge conversation `source_id` into `into_id` (same customer): its messages and facts move,
    it is closed with a pointer to where they went, and the event in `into_id` can undo it."""
    now = utcnow()
    with write_tx(engine) as conn:
        source, target = _pair(conn, source_id, into_id)
        _same_customer(source, target)
        ids = list(conn.execute(select(message_t.c.id).where(message_t.c.conversation_id == source.id,
                                                             message_t.c.direction != Direction.system)
                                .order_by(message_t.c.id).limit(MAX_MERGE + 1)).scalars())
        if len(ids) > MAX_MERGE:
            raise RejectedInput(N_("conversation %(id)s has more than %(num)s messages; move the ones that belong instead"),
                                params={"id": source.id, "num": MAX_MERGE})
        if ids:
            conn.execute(update(message_t).where(message_t.c.id.in_(ids)).values(conversation_id=target.id))
            conn.execute(update(fact_t).where(fact_t.c.message_id.in_(ids)).values(conversation_id=target.id))
        meta = {"event": MERGED, "message_ids": ids, "from": source.id, "into": target.id, "by": who.actor,
                "source_status": source.status, "source_assignee_id": source.assignee_id}
        event_id = _event(conn, target, f"Conversation #{source.id} merged into this one by {who.actor}", meta, now)
        _event(conn, source, f"Merged into #{target.id} by {who.actor}", {**meta, "event": MERGED + ".away"}, now)
        _touch(conn, source.id, now, status=ConversationStatus.closed)
        _touch(conn, target.id, now)
        audit(conn, who.actor, "conversation.merge", f"conversation:{target.id}", source=source.id, messages=len(ids))
    return {"event_id": event_id, "message_ids": ids, "source_id": source.id, "target_id": target.id}


@_retried
def undo(engine: Engine, event_id: int, who: Principal) -> dict[str, Any]:
    """Undo a move or a merge from its event in the target conversation: the messages it moved
    (those still there) go back, a merged conversation gets its status back. Once."""
    now = utcnow()
    with write_tx(engine) as conn:
        row = conn.execute(select(message_t.c.id, message_t.c.conversation_id, message_t.c.metadata)
                           .where(message_t.c.id == event_id, message_t.c.direction == Direction.system)).first()
        meta = dict(row.metadata or {}) if row is not None else {}
        if row is None or meta.get("event") not in (MOVED, MERGED):
            raise NotFound(N_("event %(id)s is not a move or merge that can be undone"), params={"id": event_id})
        # Read again under the target's lock (SQLite: the write transaction): two agents pressing
        # "undo" at once undo it once.
        target, source = _pair(conn, row.conversation_id, int(meta["from"]))
        fresh = conn.execute(select(message_t.c.metadata).where(message_t.c.id == event_id)).scalar() or {}
        if fresh.get("undone_by"):
            raise Conflict(N_("event %(id)s was undone already"), params={"id": event_id})
        ids = [int(i) for i in meta.get("message_ids") or []]
        back = list(conn.execute(select(message_t.c.id).where(message_t.c.id.in_(ids), message_t.c.conversation_id == target.id))
                    .scalars()) if ids else []
        if back:
            conn.execute(update(message_t).where(message_t.c.id.in_(back)).values(conversation_id=source.id))
            conn.execute(update(fact_t).where(fact_t.c.message_id.in_(back)).values(conversation_id=source.id))
        conn.execute(update(message_t).where(message_t.c.id == event_id).values(metadata={**meta, "undone_by": who.actor,
                                                                                          "undone_at": now.isoformat()}))
        what = "merge" if meta["event"] == MERGED else "move"
        _event(conn, target, f"The {what} from #{source.id} was undone by {who.actor}",
               {"event": f"{meta['event']}.undone", "of": event_id, "message_ids": back}, now)
        _event(conn, source, f"The {what} into #{target.id} was undone by {who.actor}; the messages are back",
               {"event": f"{meta['event']}.undone", "of": event_id, "message_ids": back}, now)
        restore = {"status": meta.get("source_status") or ConversationStatus.open} if meta["event"] == MERGED else {}
        _touch(conn, source.id, now, **restore)
        _touch(conn, target.id, now)
        audit(conn, who.actor, "conversation.undo", f"conversation:{target.id}", event=event_id, messages=len(back))
    return {"event_id": event_id, "message_ids": back, "source_id": source.id, "target_id": target.id}
