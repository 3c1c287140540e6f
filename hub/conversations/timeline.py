"""A conversation's story in one thread: its messages, on every channel the customer used in it,
oldest first, each with its channel, what kind of entry it is (a message from the customer, our
reply, an automatic answer, an internal note, a back-office event, a call), its attachments,
@mentions and, for replies, the delivery state. The customer's other conversations are not
interleaved: they come as a short "related" list (hub/conversations/continuity.py), so two agents
are never invited to answer the same question in two places."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from hub.contract.errors import NotFound
from hub.contract.i18n import N_
from hub.contract.timefmt import iso
from hub.conversations import continuity, mentions
from hub.conversations.queries import attachments_of, messages_with_sender_and_delivery
from hub.outbox import DELIVERY_STATE
from hub.store.db import read_tx
from hub.store.models import Agent, Attachment, Conversation, Direction, Message, OutboxStatus

message_t = Message.__table__
conversation_t = Conversation.__table__
attachment_t = Attachment.__table__
agent_t = Agent.__table__

MAX_ENTRIES = 300
# "[00:03] Agent: ..." / "Customer (Ana): ..." lines of a call transcript stored as text.
_TURN_LINE = re.compile(r"^\s*(?:\[(?P<at>[0-9:.]+)\]\s*)?(?P<role>agent|customer|caller|speaker[^:]{0,20})\b[^:]{0,60}:\s*(?P<text>.*)$",
                        re.IGNORECASE)


def _aware(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def call_turns(text: str, meta: dict) -> list[dict] | None:
    """A call as dialogue turns [{role, speaker, at, text}], from the structured turns the voice
    channel keeps in the metadata, else from "Agent:/Customer:" lines; None when it is no call."""
    turns = meta.get("turns")
    if isinstance(turns, list) and turns:
        out = []
        for t in turns:
            if not isinstance(t, dict):
                continue
            start = t.get("start")
            at = f"{int(start) // 60:02d}:{int(start) % 60:02d}" if isinstance(start, (int, float)) else None
            out.append({"role": str(t.get("role") or "unknown"), "speaker": t.get("speaker"), "at": at,
                        "text": str(t.get("text") or "")})
        return out or None
    lines = [line for line in (text or "").splitlines() if line.strip()]
    matched = [_TURN_LINE.match(line) for line in lines]
    if not lines or sum(1 for m in matched if m) < max(2, len(lines) // 2):
        return None
    out = []
    for line, m in zip(lines, matched):
        if m:
            role = m.group("role").lower()
            out.append({"role": "agent" if role == "agent" else "customer", "speaker": None, "at": m.group("at"),
                        "text": m.group("text")})
        elif out:
            out[-1]["text"] += "\n" + line
    return out


def kind_of(direction: str, meta: dict) -> str:
    if direction == Direction.outbound and meta.get("automatic"):
        return "automatic"
    if direction == Direction.system:
        return "event"
    return {Direction.inbound: "inbound", Direction.outbound: "reply", Direction.note: "note"}.get(direction, direction)


def delivery(status: str | None, attempts: int | None, error: str | None, next_at) -> dict[str, Any] | None:
    if status is None:
        return None
    state = DELIVERY_STATE.get(status, status)
    retrying = status == OutboxStatus.pending and (attempts or 0) > 0
    return {
        "state": "retrying" if retrying else state,
        "attempts": attempts,
        "error": error if status in (OutboxStatus.dead, OutboxStatus.pending) else None,
        "next_attempt_at": iso(next_at) if retrying else None,
        "can_retry": status == OutboxStatus.dead or retrying,
    }


def customer_timeline(engine: Engine, conversation_id: int, *, limit: int = MAX_ENTRIES) -> dict[str, Any]:
    """{"customer_id", "conversation_ids", "entries": [...], "related": [...], "truncated"} of a
    conversation: its own entries, ordered by when they were sent (a late-arriving email lands
    where it belongs), then by id; the customer's other current conversations as `related`."""
    with read_tx(engine) as conn:
        customer_id = conn.execute(
            select(conversation_t.c.customer_id).where(conversation_t.c.id == conversation_id)
        ).scalar()
        if customer_id is None:
            raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
        conv_rows = conn.execute(
            select(conversation_t.c.id, conversation_t.c.subject, conversation_t.c.status, conversation_t.c.channel)
            .where(conversation_t.c.id == conversation_id)
        ).all()
        related = continuity.related(conn, conversation_id, customer_id)
        conv_by_id = {c.id: c for c in conv_rows}
        rows = conn.execute(
            messages_with_sender_and_delivery()
            .where(message_t.c.conversation_id.in_(list(conv_by_id)))
            .order_by(message_t.c.id.desc())
            .limit(limit + 1)
        ).all()
        truncated = len(rows) > limit
        rows = rows[:limit]
        ids = [r.id for r in rows]
        attachments = attachments_of(conn, ids)
        mentioned = mentions.of_messages(conn, ids)
        agent_ids = {r.author_agent_id for r in rows if r.author_agent_id} | {a for v in mentioned.values() for a in v}
        agents = {
            a.id: {"id": a.id, "name": a.name or a.email, "handle": a.email.split("@")[0], "email": a.email}
            for a in conn.execute(select(agent_t.c.id, agent_t.c.name, agent_t.c.email).where(agent_t.c.id.in_(agent_ids)))
        } if agent_ids else {}
    entries = []
    for r in rows:
        meta = r.metadata if isinstance(r.metadata, dict) else {}
        conv = conv_by_id[r.conversation_id]
        kind = kind_of(r.direction, meta)
        entries.append({
            "id": r.id,
            "conversation_id": r.conversation_id,
            "conversation_subject": conv.subject,
            "direction": r.direction,
            "kind": kind,
            "channel": r.channel,
            "sender": {"kind": r.sender_kind, "address": r.sender_address, "name": r.sender_name} if r.identity_id else None,
            "author": agents.get(r.author_agent_id),
            "subject": r.subject,
            "text": r.text,
            "html": r.html,
            "sent_at": _aware(r.sent_at),
            "turns": call_turns(r.text, meta) if r.direction == Direction.inbound and (r.channel == "voice" or meta.get("turns")) else None,
            "call": meta.get("call") if isinstance(meta.get("call"), dict) else None,
            "event": meta if kind == "event" else None,
            "automatic": kind == "automatic",
            "attachments": attachments.get(r.id, []),
            "mentions": [agents[a] for a in mentioned.get(r.id, []) if a in agents],
            "delivery": delivery(r.outbox_status, r.outbox_attempts, r.outbox_error, r.outbox_next),
        })
    entries.sort(key=lambda e: (e["sent_at"], e["id"]))
    return {"customer_id": customer_id, "conversation_ids": sorted(conv_by_id), "entries": entries, "related": related,
            "truncated": truncated}


def attachment(engine: Engine, attachment_id: int) -> dict[str, Any]:
    """An attachment's stored record (for the download route)."""
    with read_tx(engine) as conn:
        row = conn.execute(select(attachment_t).where(attachment_t.c.id == attachment_id)).first()
    if row is None:
        raise NotFound(N_("attachment %(id)s does not exist"), params={"id": attachment_id})
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size, "sha256": row.sha256}
