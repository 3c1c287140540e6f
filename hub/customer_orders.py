"""The orders a customer asked about, as the back end last described them (the SCM facts routing
attached to their conversations, issue 7), for the customer panel. The back-end contract has no
"orders of a customer" call, so this is what the hub knows, newest first, one line per order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from hub.conversations import iso
from hub.db import read_tx
from hub.models import Conversation, ScmFact

fact_t = ScmFact.__table__
conversation_t = Conversation.__table__


def known_orders(engine: Engine, customer_id: int, *, limit: int = 10) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        rows = conn.execute(
            select(fact_t.c.subject, fact_t.c.payload, fact_t.c.error, fact_t.c.created_at, fact_t.c.conversation_id)
            .join(conversation_t, conversation_t.c.id == fact_t.c.conversation_id)
            .where(conversation_t.c.customer_id == customer_id, fact_t.c.kind == "order")
            .order_by(fact_t.c.id.desc())
            .limit(200)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.subject in out or len(out) >= limit:
            continue
        payload = r.payload if isinstance(r.payload, dict) else {}
        out[r.subject] = {
            "ref": payload.get("ref") or r.subject,
            "state": payload.get("state") or (r.error and "unknown"),
            "late": bool(payload.get("late")),
            "expected_date": payload.get("expected_date"),
            "conversation_id": r.conversation_id,
            "as_of": iso(r.created_at),
        }
    return list(out.values())
