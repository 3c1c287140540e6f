"""One customer across channels: their identities and conversations, and merging two profiles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from hub.contract.errors import Conflict, NotFound
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.contract.timefmt import iso
from hub.conversations import bumped
from hub.customers.linking import link_codes, linked_by_code
from hub.segments import value_in_tx
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, Customer, Identity, utcnow

customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__


def get_customer(engine: Engine, customer_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        row = conn.execute(select(customer_t).where(customer_t.c.id == customer_id)).first()
        if row is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        identities = conn.execute(
            select(identity_t).where(identity_t.c.customer_id == customer_id).order_by(identity_t.c.id)
        ).all()
        conversations = conn.execute(
            select(conversation_t)
            .where(conversation_t.c.customer_id == customer_id)
            .order_by(conversation_t.c.last_message_at.desc(), conversation_t.c.id.desc())
            .limit(500)
        ).all()
        value = value_in_tx(conn, customer_id)
        codes = link_codes(conn, customer_id)
        by_code = linked_by_code(conn, [i.id for i in identities])
    return {
        "id": row.id,
        "name": row.name,
        "segment": row.segment,
        "segment_locked": bool(row.segment_locked),
        "value": value,  # order value, orders and contacts over the segment window (hub/segments/value.py)
        "merged_into": row.merged_into,
        "created_at": iso(row.created_at),
        "identities": [
            {"id": i.id, "kind": i.kind, "address": i.address, "display_name": i.display_name, "verified": i.verified,
             "linked_by_code": i.id in by_code}
            for i in identities
        ],
        # Codes issued to link another channel: who issued them, and who used them.
        "link_codes": [{**c, "created_at": iso(c["created_at"]), "expires_at": iso(c["expires_at"]), "used_at": iso(c["used_at"])}
                       for c in codes],
        "conversations": [
            {
                "id": c.id,
                "channel": c.channel,
                "subject": c.subject,
                "status": c.status,
                "last_message_at": iso(c.last_message_at),
            }
            for c in conversations
        ],
    }


def merge_in_tx(conn, target_id: int, source_id: int, actor: str, reason: str) -> None:
    """Move the source's identities and conversations to the target, in the caller's transaction;
    the source stays as a tombstone pointing at the target (merged_into) so old links resolve."""
    if target_id == source_id:
        raise Conflict(N_("a customer cannot be merged into itself"))
    rows = {
        r.id: r
        for r in conn.execute(
            select(customer_t.c.id, customer_t.c.merged_into).where(customer_t.c.id.in_([target_id, source_id]))
        )
    }
    for cid in (target_id, source_id):
        if cid not in rows:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": cid})
        if rows[cid].merged_into is not None:
            raise Conflict(N_("customer %(id)s was already merged into customer %(into)s"), params={"id": cid, "into": rows[cid].merged_into})
    conn.execute(update(identity_t).where(identity_t.c.customer_id == source_id).values(customer_id=target_id))
    conn.execute(update(conversation_t).where(conversation_t.c.customer_id == source_id)
                 .values(customer_id=target_id, version=bumped()))
    now = utcnow()
    conn.execute(update(customer_t).where(customer_t.c.id == source_id).values(merged_into=target_id, updated_at=now))
    conn.execute(update(customer_t).where(customer_t.c.id == target_id).values(updated_at=now))
    audit(conn, actor, "customer.merge", f"customer:{target_id}", source=source_id, reason=reason)


def merge_customers(engine: Engine, target_id: int, source_id: int, actor: Principal) -> dict[str, Any]:
    """An admin's explicit merge of two profiles of one person."""
    with write_tx(engine) as conn:
        merge_in_tx(conn, target_id, source_id, actor.actor, "admin")
    return get_customer(engine, target_id)
