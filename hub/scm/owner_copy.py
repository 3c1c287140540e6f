"""An order's status sent to the order's own email address, whoever asked.

An answer that goes only to the address the order was placed with reveals nothing to a stranger:
the owner reads it in their own mailbox. So when somebody asks about an order on a channel the
privacy rule cannot vouch for (an unverified email, a Telegram chat not linked to the order's
address, a web form), the status goes by email to the order's address, in a conversation of the
customer that address belongs to, and the asker is told on their channel that it was sent there
(without naming it). Never to a Reply-To, never to an address the asker typed.

One copy per order and address a day: asking again (or a stranger asking a hundred times) does
not fill the owner's mailbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from hub.conversations import queue_outbound, require_conversation
from hub.store.models import Conversation, ConversationStatus, Customer, Identity, IdentityKind, Message, Segment
from hub.store.sql import insert_ignoring_conflict

conversation_t = Conversation.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__
message_t = Message.__table__

RESEND_AFTER = timedelta(days=1)


def subject_for(ref: str) -> str:
    return f"The status of your order {ref}"


def _owner(conn: Connection, address: str, now: datetime) -> int:
    """The customer the order's address belongs to, created (unverified) when the hub never heard of it."""
    found = conn.execute(
        select(identity_t.c.customer_id).where(identity_t.c.kind == IdentityKind.email, identity_t.c.address == address)
    ).scalar()
    if found is not None:
        return found
    customer_id = conn.execute(
        customer_t.insert().values(name=None, segment=Segment.general, created_at=now, updated_at=now).returning(customer_t.c.id)
    ).scalar_one()
    if insert_ignoring_conflict(conn, identity_t, {"customer_id": customer_id, "kind": IdentityKind.email, "address": address,
                                                   "verified": False, "created_at": now}) is None:
        # somebody else created it a moment ago: theirs
        return conn.execute(
            select(identity_t.c.customer_id).where(identity_t.c.kind == IdentityKind.email, identity_t.c.address == address)
        ).scalar_one()
    return customer_id


def send_to_order_address(conn: Connection, ref: str, address: str, text: str, *, now: datetime, metadata: dict) -> int | None:
    """Queue `text` by email to `address` (normalised, the order's own) in a conversation of its
    customer. Returns the outbound message id, or None when a copy went there within RESEND_AFTER."""
    customer_id = _owner(conn, address, now)
    subject = subject_for(ref)
    recent = conn.execute(
        select(conversation_t.c.id).where(conversation_t.c.customer_id == customer_id, conversation_t.c.subject == subject,
                                          conversation_t.c.created_at >= now - RESEND_AFTER).limit(1)
    ).scalar()
    if recent is not None:
        return None
    # Its own conversation: answered, waiting for the owner; a reply threads into it by its headers.
    cid = conn.execute(conversation_t.insert().values(
        customer_id=customer_id, channel="email", subject=subject, status=ConversationStatus.pending, priority="normal",
        last_message_at=now, created_at=now, updated_at=now, first_response_at=now,
    ).returning(conversation_t.c.id)).scalar_one()
    conn.execute(message_t.insert().values(
        conversation_id=cid, direction="system", channel="email", sent_at=now, created_at=now,
        text=f"The status of order {ref} was sent to the address on the order: somebody asked about it where the privacy rule could not tell who.",
        metadata={"event": "order.status_to_owner", "order": ref},
    ))
    return queue_outbound(conn, require_conversation(conn, cid), text, channel="email", to=address,
                          metadata={**metadata, "to_order_address": True})
