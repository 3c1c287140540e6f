"""Which other customers may be the same person, for the agent to review a merge (never merged by
itself: a wrong merge shows one customer's history to another).

Suggested when another customer, not merged away:
- has one of this customer's addresses under another kind (an email typed into a web form, a
  phone number kept as a web visitor's address), compared normalised (case; phone numbers in
  E.164, so "+44 20 7946 0958" is "+442079460958");
- holds the email address or phone number of an order this customer asked about (the order's
  owner, as the back end told it), or this customer holds theirs;
- has the same name, folded for case and accents ("Chloe MARTIN" is "Chloé Martin"), and asked
  about the same order.
Each suggestion says why, and links to the merge review.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from hub.contract.addresses import normalise_email, normalise_phone
from hub.contract.errors import RejectedInput
from hub.conversations import fold
from hub.store.db import read_tx
from hub.store.models import Conversation, Customer, Identity, ScmFact

customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__
fact_t = ScmFact.__table__

LIMIT = 10


def _forms(address: str) -> set[str]:
    """The normalised forms an address may be stored under, whatever kind it was filed as."""
    out = {address}
    if "@" in address:
        try:
            out.add(normalise_email(address))
        except RejectedInput:
            pass
    elif any(c.isdigit() for c in address):
        try:
            out.add(normalise_phone(address if address.strip().startswith("+") else "+" + address.strip().lstrip("0")))
        except RejectedInput:
            pass
    return out


def _order_facts(conn: Connection, customer_ids: list[int]) -> list:
    return conn.execute(
        select(fact_t.c.subject, fact_t.c.payload, conversation_t.c.customer_id)
        .join(conversation_t, conversation_t.c.id == fact_t.c.conversation_id)
        .where(conversation_t.c.customer_id.in_(customer_ids), fact_t.c.kind == "order")
        .order_by(fact_t.c.id.desc()).limit(500)
    ).all()


def _owners(payload) -> set[str]:
    out = set()
    if isinstance(payload, dict):
        for key in ("owner_email", "owner_phone"):
            if isinstance(payload.get(key), str) and payload[key].strip():
                out |= _forms(payload[key].strip())
    return out


def suggestions(engine: Engine, customer_id: int) -> list[dict[str, Any]]:
    """Other customers that may be this one: [{"customer_id", "name", "reasons": [...], "merge_review"}]."""
    with read_tx(engine) as conn:
        me = conn.execute(select(customer_t.c.id, customer_t.c.name, customer_t.c.merged_into)
                          .where(customer_t.c.id == customer_id)).first()
        if me is None or me.merged_into is not None:
            return []
        found: dict[int, list[str]] = {}

        def suggest(other: int, reason: str) -> None:
            if other != customer_id and reason not in found.setdefault(other, []):
                found[other].append(reason)

        mine = conn.execute(select(identity_t.c.kind, identity_t.c.address).where(identity_t.c.customer_id == customer_id)).all()
        forms = set().union(*(_forms(i.address) for i in mine)) if mine else set()
        if forms:
            for r in conn.execute(select(identity_t.c.customer_id, identity_t.c.address)
                                  .where(identity_t.c.address.in_(sorted(forms)), identity_t.c.customer_id != customer_id)):
                suggest(r.customer_id, f"also has {r.address}")
        facts = _order_facts(conn, [customer_id])
        owners = set().union(*(_owners(f.payload) for f in facts)) if facts else set()
        if owners:
            for r in conn.execute(select(identity_t.c.customer_id, identity_t.c.address)
                                  .where(identity_t.c.address.in_(sorted(owners)), identity_t.c.customer_id != customer_id)):
                suggest(r.customer_id, f"has {r.address}, the address of an order this customer asked about")
        refs = sorted({f.subject for f in facts})
        if refs:
            theirs = conn.execute(
                select(fact_t.c.subject, fact_t.c.payload, conversation_t.c.customer_id)
                .join(conversation_t, conversation_t.c.id == fact_t.c.conversation_id)
                .where(fact_t.c.kind == "order", fact_t.c.subject.in_(refs), conversation_t.c.customer_id != customer_id)
                .limit(500)).all()
            if forms:
                for f in theirs:
                    if _owners(f.payload) & forms:
                        suggest(f.customer_id, f"asked about order {f.subject}, which is this customer's")
            if me.name and theirs:
                name = fold(me.name)
                ids = sorted({f.customer_id for f in theirs})
                for r in conn.execute(select(customer_t.c.id, customer_t.c.name).where(customer_t.c.id.in_(ids))):
                    if r.name and fold(r.name) == name:
                        shared = sorted({f.subject for f in theirs if f.customer_id == r.id})
                        suggest(r.id, f"same name, asked about the same order ({', '.join(shared[:3])})")
        if not found:
            return []
        rows = conn.execute(select(customer_t.c.id, customer_t.c.name, customer_t.c.merged_into)
                            .where(and_(customer_t.c.id.in_(sorted(found)), customer_t.c.merged_into.is_(None)))).all()
    out = [{"customer_id": r.id, "name": r.name, "reasons": found[r.id],
            "merge_review": f"/inbox/customers/{customer_id}/merge?other={r.id}"} for r in rows]
    return sorted(out, key=lambda s: (-len(s["reasons"]), s["customer_id"]))[:LIMIT]
