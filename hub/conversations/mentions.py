"""@mentions in internal notes: "@ana" or "@ana@example.com" names an agent by the local part of
their email (or their whole email); mentioned agents are stored with the note so their inbox can
show it, and the note's text highlights them."""

from __future__ import annotations

import re

from sqlalchemy import Engine, select

from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, Mention, Message, utcnow
from hub.store.sql import insert_ignoring_conflict

agent_t = Agent.__table__
mention_t = Mention.__table__
message_t = Message.__table__

# After a space or the start, "@" then an email or a local part; not inside an email address.
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9.-]+\.[A-Za-z]{2,})?)")


def handles(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1).rstrip(".").lower() for m in MENTION.finditer(text or "")))


def resolve(conn, names: list[str]) -> dict[str, int]:
    """handle -> agent id, for the handles that name an active agent."""
    if not names:
        return {}
    rows = conn.execute(select(agent_t.c.id, agent_t.c.email).where(agent_t.c.active.is_(True))).all()
    by_handle: dict[str, int] = {}
    for r in rows:
        email = r.email.lower()
        by_handle.setdefault(email, r.id)
        by_handle.setdefault(email.split("@")[0], r.id)
    return {h: by_handle[h] for h in names if h in by_handle}


def record_in(conn, message_id: int, text: str) -> dict[str, int]:
    """Store who a note mentions, in the caller's transaction (the note's own, so a note is never
    stored without its mentions); returns handle -> agent id."""
    found = resolve(conn, handles(text))
    for agent_id in set(found.values()):
        insert_ignoring_conflict(conn, mention_t, {"message_id": message_id, "agent_id": agent_id, "created_at": utcnow()})
    return found


def record(engine: Engine, message_id: int, text: str) -> dict[str, int]:
    """record_in, in a transaction of its own (an existing note; recording twice changes nothing)."""
    with write_tx(engine) as conn:
        return record_in(conn, message_id, text)


def of_messages(conn, message_ids: list[int]) -> dict[int, list[int]]:
    """message id -> ids of the agents it mentions."""
    if not message_ids:
        return {}
    out: dict[int, list[int]] = {}
    for r in conn.execute(select(mention_t.c.message_id, mention_t.c.agent_id).where(mention_t.c.message_id.in_(message_ids))):
        out.setdefault(r.message_id, []).append(r.agent_id)
    return out


def mentioning(engine: Engine, agent_id: int, *, limit: int = 50) -> list[dict]:
    """The notes that mention an agent, newest first."""
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(message_t.c.id, message_t.c.conversation_id, message_t.c.text, message_t.c.created_at)
            .join(mention_t, mention_t.c.message_id == message_t.c.id)
            .where(mention_t.c.agent_id == agent_id)
            .order_by(mention_t.c.id.desc())
            .limit(limit)
        ).all()
    return [{"message_id": r.id, "conversation_id": r.conversation_id, "text": r.text, "created_at": r.created_at} for r in rows]
