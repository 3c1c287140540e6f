"""One-time link codes: proof that two identities belong to one customer.

The hub issues a code to a known customer (an agent sends it by email, say, as a Telegram deep
link); whoever sends it back from another channel controls both addresses, so the two identities
are linked (and their customers merged). Codes are stored hashed, expire, and work once.

A code that reached the wrong person links a stranger to the customer, who would then be answered
about the customer's orders on the linked channel. So issuing a code is audit-logged and listed on
the customer (who issued it, when, whether and by which identity it was used), and an agent can
remove an identity a code linked: it leaves with the conversations only it wrote in, to a profile
of its own, unverified (unlink_identity).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, select, update

from hub.contract.errors import Conflict, NotFound
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.store.audit import audit
from hub.store.db import write_tx
from hub.store.models import Conversation, Customer, Direction, Identity, LinkCode, Message, Segment, utcnow

link_t = LinkCode.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__
conversation_t = Conversation.__table__
message_t = Message.__table__


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def issue_code(engine: Engine, customer_id: int, *, actor: str = "cli",
               ttl: timedelta = timedelta(hours=72)) -> tuple[str, datetime]:
    """A new code for the customer, and when it expires; audit-logged (customer.link_code) with
    the actor, who is also kept on the code."""
    # Telegram's /start payload allows [A-Za-z0-9_-], at most 64 characters.
    code = secrets.token_urlsafe(18)
    now = utcnow()
    with write_tx(engine) as conn:
        exists_ = conn.execute(select(customer_t.c.id).where(customer_t.c.id == customer_id)).first()
        if exists_ is None:
            raise NotFound(N_("customer %(id)s does not exist"), params={"id": customer_id})
        code_id = conn.execute(link_t.insert().values(
            code_hash=_hash(code), customer_id=customer_id, created_at=now, expires_at=now + ttl, created_by=actor[:64],
        ).returning(link_t.c.id)).scalar_one()
        audit(conn, actor, "customer.link_code", f"customer:{customer_id}", link_code=code_id, expires_at=(now + ttl).isoformat())
    return code, now + ttl


def redeem(conn: Connection, code: str) -> int | None:
    """The customer the code was issued to, marking it used; None if unknown, used or expired."""
    now = utcnow()
    row = conn.execute(
        select(link_t.c.id, link_t.c.customer_id).where(
            link_t.c.code_hash == _hash(code), link_t.c.used_at.is_(None), link_t.c.expires_at > now
        )
    ).first()
    if row is None:
        return None
    done = conn.execute(update(link_t).where(link_t.c.id == row.id, link_t.c.used_at.is_(None)).values(used_at=now)).rowcount
    return row.customer_id if done else None


def record_redeemer(conn: Connection, code: str, identity_id: int) -> None:
    """Which identity used the code (redeem() ran in the same transaction): what the customer's
    page shows, and what lets an agent remove that identity again."""
    conn.execute(update(link_t).where(link_t.c.code_hash == _hash(code), link_t.c.used_by_identity_id.is_(None))
                 .values(used_by_identity_id=identity_id))


def current_customer(conn: Connection, customer_id: int) -> int:
    """Follow merged_into to the customer that carries the history now."""
    for _ in range(20):
        nxt = conn.execute(select(customer_t.c.merged_into).where(customer_t.c.id == customer_id)).scalar()
        if nxt is None:
            return customer_id
        customer_id = nxt
    return customer_id


def _profiles(conn: Connection, customer_id: int) -> list[int]:
    """The customer and the profiles merged into it (codes issued to those count as theirs)."""
    ids, frontier = [customer_id], [customer_id]
    while frontier and len(ids) < 1000:
        frontier = [i for i in conn.execute(select(customer_t.c.id).where(customer_t.c.merged_into.in_(frontier))).scalars()
                    if i not in ids]
        ids.extend(frontier)
    return ids


def link_codes(conn: Connection, customer_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """The codes issued to the customer, newest first: who issued them, when they expire(d), and
    the identity that used each (with whether it is still on this customer)."""
    now = utcnow()
    rows = conn.execute(
        select(link_t.c.id, link_t.c.created_at, link_t.c.created_by, link_t.c.expires_at, link_t.c.used_at,
               link_t.c.used_by_identity_id, identity_t.c.kind, identity_t.c.address, identity_t.c.customer_id.label("holder"))
        .select_from(link_t.outerjoin(identity_t, identity_t.c.id == link_t.c.used_by_identity_id))
        .where(link_t.c.customer_id.in_(_profiles(conn, customer_id)))
        .order_by(link_t.c.created_at.desc(), link_t.c.id.desc()).limit(limit)
    ).all()
    out = []
    for r in rows:
        expires = r.expires_at if r.expires_at.tzinfo is not None else r.expires_at.replace(tzinfo=now.tzinfo)
        used_by = None
        if r.used_by_identity_id is not None and r.kind is not None:
            used_by = {"identity_id": r.used_by_identity_id, "kind": r.kind, "address": r.address,
                       "removed": r.holder != customer_id}
        out.append({"id": r.id, "created_at": r.created_at, "created_by": r.created_by, "expires_at": r.expires_at,
                    "used_at": r.used_at, "used_by": used_by,
                    "status": "used" if r.used_at is not None else "expired" if expires <= now else "open"})
    return out


def linked_by_code(conn: Connection, identity_ids: list[int]) -> set[int]:
    """Those of the identities that a link code attached."""
    if not identity_ids:
        return set()
    return set(conn.execute(select(link_t.c.used_by_identity_id).where(link_t.c.used_by_identity_id.in_(identity_ids))).scalars())


def unlink_identity(engine: Engine, customer_id: int, identity_id: int, who: Principal) -> dict[str, Any]:
    """Take an identity a link code attached off the customer: it goes to a new profile of its
    own, unverified, with the conversations in which only it wrote; conversations the customer
    wrote in stay. Audit-logged (identity.unlink). Returns the new profile's id and what moved."""
    with write_tx(engine) as conn:
        row = conn.execute(select(identity_t.c.customer_id, identity_t.c.kind, identity_t.c.display_name)
                           .where(identity_t.c.id == identity_id)).first()
        if row is None or row.customer_id != customer_id:
            raise NotFound(N_("customer %(id)s has no identity %(identity)s"), params={"id": customer_id, "identity": identity_id})
        if identity_id not in linked_by_code(conn, [identity_id]):
            raise Conflict(N_("this identity was not linked by a code; to separate two people merged by mistake, "
                              "an admin can export the customer and erase it, or correct it in the store"))
        others = [i for i in conn.execute(select(identity_t.c.id).where(identity_t.c.customer_id == customer_id)).scalars()
                  if i != identity_id]
        if not others:
            raise Conflict(N_("this is the customer's only identity: there is nothing to separate it from"))
        now = utcnow()
        new_id = conn.execute(customer_t.insert().values(
            name=row.display_name, segment=Segment.general, created_at=now, updated_at=now).returning(customer_t.c.id)).scalar_one()
        # Their own conversations: inbound from this identity, from no other.
        inbound = message_t.c.direction == Direction.inbound
        own = and_(
            conversation_t.c.customer_id == customer_id,
            exists().where(message_t.c.conversation_id == conversation_t.c.id, inbound, message_t.c.identity_id == identity_id),
            ~exists().where(message_t.c.conversation_id == conversation_t.c.id, inbound,
                            (message_t.c.identity_id != identity_id) | message_t.c.identity_id.is_(None)),
        )
        moved = list(conn.execute(select(conversation_t.c.id).where(own)).scalars())
        if moved:
            conn.execute(update(conversation_t).where(conversation_t.c.id.in_(moved)).values(customer_id=new_id))
        conn.execute(update(identity_t).where(identity_t.c.id == identity_id).values(customer_id=new_id, verified=False))
        conn.execute(update(customer_t).where(customer_t.c.id == customer_id).values(updated_at=now))
        # No address in the audit detail: the audit log outlives an erasure of the new profile.
        audit(conn, who.actor, "identity.unlink", f"customer:{customer_id}", identity=identity_id, kind=row.kind,
              new_customer=new_id, conversations_moved=len(moved))
    return {"customer_id": customer_id, "identity_id": identity_id, "new_customer_id": new_id, "conversations_moved": moved}
