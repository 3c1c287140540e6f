"""The customer directory: every customer (merged profiles left out), newest first, or those whose
name or an address holds a text, a page at a time, each with their addresses, how many
conversations they have and when they were last in touch.

A page continues after the last customer id it showed (a keyset: a page costs the same at any
depth). A text is matched as the inbox search matches a customer's name and addresses
(hub/conversations/search), folded the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.contract.timefmt import iso
from hub.conversations import as_phone, customers_holding
from hub.store.db import read_tx
from hub.store.models import Conversation, Customer, Identity

customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__

MAX_PAGE = 200


def list_customers(engine: Engine, q: str | None = None, *, after: str | None = None, limit: int = 50) -> dict[str, Any]:
    """{"items": [{id, name, segment, created_at, addresses: [{kind, address, verified}], conversations,
    last_contact_at}], "next_cursor": str | None}; `after` is a page's next_cursor."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = select(customer_t.c.id, customer_t.c.name, customer_t.c.segment, customer_t.c.created_at).where(
        customer_t.c.merged_into.is_(None))
    if after:
        if not (after.isascii() and after.isdigit()) or len(after) > 18:
            raise RejectedInput(N_("the cursor is not valid; use the next_cursor of a previous page"))
        stmt = stmt.where(customer_t.c.id < int(after))
    with read_tx(engine) as conn:
        if q:
            stmt = stmt.where(*customers_holding(conn, as_phone(q)))
        rows = conn.execute(stmt.order_by(customer_t.c.id.desc()).limit(limit + 1)).all()
        page = rows[:limit]
        ids = [r.id for r in page]
        addresses: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        activity: dict[int, tuple[int, Any]] = {}
        if ids:
            for a in conn.execute(select(identity_t.c.customer_id, identity_t.c.kind, identity_t.c.address, identity_t.c.verified)
                                  .where(identity_t.c.customer_id.in_(ids)).order_by(identity_t.c.id)):
                addresses[a.customer_id].append({"kind": a.kind, "address": a.address, "verified": a.verified})
            activity = {r.customer_id: (r.n, r.last) for r in conn.execute(
                select(conversation_t.c.customer_id, func.count().label("n"), func.max(conversation_t.c.last_message_at).label("last"))
                .where(conversation_t.c.customer_id.in_(ids)).group_by(conversation_t.c.customer_id))}
    items = []
    for r in page:
        n, last = activity.get(r.id, (0, None))
        items.append({"id": r.id, "name": r.name, "segment": r.segment, "created_at": iso(r.created_at),
                      "addresses": addresses[r.id], "conversations": n, "last_contact_at": iso(last) if last else None})
    return {"items": items, "next_cursor": str(page[-1].id) if len(rows) > limit else None}
