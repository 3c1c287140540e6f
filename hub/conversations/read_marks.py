"""Per-agent read marks: when an agent last opened a conversation. A conversation whose last
activity is newer than the agent's mark (or that they never opened) is unread to them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from hub.store.db import read_tx, write_tx
from hub.store.models import ReadMark, utcnow
from hub.store.sql import insert_ignoring_conflict

mark_t = ReadMark.__table__


def mark_read(engine: Engine, agent_id: int, conversation_id: int, *, at: datetime | None = None) -> None:
    at = at or utcnow()
    with write_tx(engine) as conn:
        created = insert_ignoring_conflict(
            conn, mark_t, {"agent_id": agent_id, "conversation_id": conversation_id, "read_at": at}
        )
        if created is None:
            conn.execute(
                update(mark_t)
                .where(mark_t.c.agent_id == agent_id, mark_t.c.conversation_id == conversation_id)
                .values(read_at=at)
            )


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def unread(conn, agent_id: int, last_activity: dict[int, datetime]) -> set[int]:
    """Of the conversations given with their last activity, those unread by the agent."""
    if not last_activity:
        return set()
    marks = {
        r.conversation_id: _aware(r.read_at)
        for r in conn.execute(
            select(mark_t.c.conversation_id, mark_t.c.read_at).where(
                mark_t.c.agent_id == agent_id, mark_t.c.conversation_id.in_(list(last_activity))
            )
        )
    }
    return {cid for cid, when in last_activity.items() if cid not in marks or marks[cid] < _aware(when)}


def unread_for(engine: Engine, agent_id: int, last_activity: dict[int, datetime]) -> set[int]:
    with read_tx(engine) as conn:
        return unread(conn, agent_id, last_activity)
