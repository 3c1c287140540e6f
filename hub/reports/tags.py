"""The tags report: how many of the conversations created in the range carry each tag (tags are
hub/conversations/tags.py's), most first, with each tag's share of the tagged conversations. A
function of its own beside the other reports (hub/reports/queries.py registers it as "tags")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, distinct, func, select

from hub.store.db import read_tx
from hub.store.models import Conversation, ConversationTag

conversation_t = Conversation.__table__
tag_t = ConversationTag.__table__
TOP = 20


def tags_report(engine: Engine, rng, *, limit: int = TOP) -> dict[str, Any]:
    """{"rows": [{"tag", "conversations", "share_pct"}], "tagged": conversations with any tag}."""
    n = func.count().label("n")
    in_range = (conversation_t.c.created_at >= rng.since, conversation_t.c.created_at < rng.until)
    joined = tag_t.join(conversation_t, conversation_t.c.id == tag_t.c.conversation_id)
    with read_tx(engine) as conn:
        found = conn.execute(
            select(tag_t.c.tag, n).select_from(joined).where(*in_range).group_by(tag_t.c.tag).order_by(n.desc(), tag_t.c.tag).limit(limit)
        ).all()
        tagged = conn.execute(select(func.count(distinct(tag_t.c.conversation_id))).select_from(joined).where(*in_range)).scalar() or 0
    rows = [{"tag": r.tag, "conversations": r.n, "share_pct": round(100.0 * r.n / tagged, 1) if tagged else None} for r in found]
    return {**rng.head("tags"), "columns": ["tag", "conversations", "share_pct"], "rows": rows, "tagged": tagged}
