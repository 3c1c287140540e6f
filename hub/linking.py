"""One-time link codes: proof that two identities belong to one customer.

The hub issues a code to a known customer (an agent sends it by email, say, as a Telegram deep
link); whoever sends it back from another channel controls both addresses, so the two identities
are linked (and their customers merged). Codes are stored hashed, expire, and work once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select, update

from hub.db import write_tx
from hub.errors import NotFound
from hub.models import Customer, LinkCode, utcnow

link_t = LinkCode.__table__
customer_t = Customer.__table__


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def issue_code(engine: Engine, customer_id: int, *, ttl: timedelta = timedelta(hours=72)) -> tuple[str, datetime]:
    # Telegram's /start payload allows [A-Za-z0-9_-], at most 64 characters.
    code = secrets.token_urlsafe(18)
    now = utcnow()
    with write_tx(engine) as conn:
        exists = conn.execute(select(customer_t.c.id).where(customer_t.c.id == customer_id)).first()
        if exists is None:
            raise NotFound(f"customer {customer_id} does not exist")
        conn.execute(link_t.insert().values(code_hash=_hash(code), customer_id=customer_id, created_at=now, expires_at=now + ttl))
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


def current_customer(conn: Connection, customer_id: int) -> int:
    """Follow merged_into to the customer that carries the history now."""
    for _ in range(20):
        nxt = conn.execute(select(customer_t.c.merged_into).where(customer_t.c.id == customer_id)).scalar()
        if nxt is None:
            return customer_id
        customer_id = nxt
    return customer_id
