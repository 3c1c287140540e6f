"""One conversation as agents see it: its row as listings show it, and with its messages (each
with its sender, attachments and, for a reply, the delivery state of its outbox row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from hub.contract.errors import NotFound
from hub.contract.i18n import N_
from hub.contract.timefmt import iso
from hub.outbox import delivery_state
from hub.store.db import read_tx
from hub.store.models import Attachment, Conversation, Customer, Identity, Message, Outbox

conversation_t = Conversation.__table__
customer_t = Customer.__table__
message_t = Message.__table__
identity_t = Identity.__table__
outbox_t = Outbox.__table__
attachment_t = Attachment.__table__

# How the outbox's states read to an agent.
# The columns a listing row is made of (conversation_row): the conversation's and its customer's.
LIST_COLUMNS = (
    conversation_t.c.id,
    conversation_t.c.customer_id,
    conversation_t.c.channel,
    conversation_t.c.subject,
    conversation_t.c.status,
    conversation_t.c.priority,
    conversation_t.c.assignee_id,
    conversation_t.c.intent,
    conversation_t.c.sla_due_at,
    conversation_t.c.first_response_at,
    conversation_t.c.resolved_at,
    conversation_t.c.last_message_at,
    conversation_t.c.created_at,
    conversation_t.c.version,
    conversation_t.c.snoozed_until,
    customer_t.c.name.label("customer_name"),
    customer_t.c.segment.label("customer_segment"),
)


def listed():
    """The select of LIST_COLUMNS every listing starts from (the conversation joined to its customer)."""
    return select(*LIST_COLUMNS).join(customer_t, customer_t.c.id == conversation_t.c.customer_id)


def conversation_row(row) -> dict[str, Any]:
    """A row of LIST_COLUMNS as the API and the inbox show a conversation (without its messages)."""
    return {
        "id": row.id,
        "customer": {"id": row.customer_id, "name": row.customer_name, "segment": row.customer_segment},
        "channel": row.channel,
        "subject": row.subject,
        "status": row.status,
        "priority": row.priority,
        "assignee_id": row.assignee_id,
        "intent": row.intent,
        "sla_due_at": iso(row.sla_due_at),
        "first_response_at": iso(row.first_response_at),
        "resolved_at": iso(row.resolved_at),
        "last_message_at": iso(row.last_message_at),
        "created_at": iso(row.created_at),
        "version": row.version,
        "snoozed_until": iso(row.snoozed_until),
    }


def require_conversation(conn, conversation_id: int):
    """The conversation's row (all its columns) on the caller's connection; NotFound when there is none."""
    row = conn.execute(select(conversation_t).where(conversation_t.c.id == conversation_id)).first()
    if row is None:
        raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
    return row


def conversation_state(conn, conversation_id: int) -> dict[str, Any]:
    """One conversation as the listing shows it (no messages), read on the caller's connection."""
    row = conn.execute(listed().where(conversation_t.c.id == conversation_id)).first()
    if row is None:
        raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
    return conversation_row(row)


def delivery(row) -> dict[str, Any] | None:
    """The delivery of a message as an agent sees it, from the outbox columns of
    messages_with_sender_and_delivery(); None for a message that was never sent (inbound, a note)."""
    return delivery_state(row.outbox_status, attempts=row.outbox_attempts, last_error=row.outbox_error,
                          next_attempt_at=row.outbox_next, sent_at=row.outbox_sent_at)


def messages_with_sender_and_delivery():
    """The select every view of messages starts from: each message with its sender's identity and
    its outbox row (the delivery state of a reply)."""
    return (
        select(
            message_t,
            identity_t.c.kind.label("sender_kind"),
            identity_t.c.address.label("sender_address"),
            identity_t.c.display_name.label("sender_name"),
            outbox_t.c.status.label("outbox_status"),
            outbox_t.c.attempts.label("outbox_attempts"),
            outbox_t.c.last_error.label("outbox_error"),
            outbox_t.c.next_attempt_at.label("outbox_next"),
            outbox_t.c.sent_at.label("outbox_sent_at"),
        )
        .outerjoin(identity_t, identity_t.c.id == message_t.c.identity_id)
        .outerjoin(outbox_t, outbox_t.c.message_id == message_t.c.id)
    )


def attachments_of(conn, message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The attachments of these messages, by message id."""
    found: dict[int, list[dict[str, Any]]] = {}
    if message_ids:
        for att in conn.execute(select(attachment_t).where(attachment_t.c.message_id.in_(message_ids))).all():
            found.setdefault(att.message_id, []).append(
                {"id": att.id, "filename": att.filename, "content_type": att.content_type, "size": att.size, "sha256": att.sha256}
            )
    return found


def get_conversation(engine: Engine, conversation_id: int) -> dict[str, Any]:
    """The conversation as conversation_row() shows it, plus "messages": every message in order,
    each with its sender, attachments and delivery. NotFound when there is none."""
    with read_tx(engine) as conn:
        conv = conn.execute(listed().where(conversation_t.c.id == conversation_id)).first()
        if conv is None:
            raise NotFound(N_("conversation %(id)s does not exist"), params={"id": conversation_id})
        rows = conn.execute(
            messages_with_sender_and_delivery()
            .where(message_t.c.conversation_id == conversation_id)
            .order_by(message_t.c.id)
        ).all()
        attachments = attachments_of(conn, [r.id for r in rows])
    out = conversation_row(conv)
    out["messages"] = [
        {
            "id": r.id,
            "direction": r.direction,
            "channel": r.channel,
            "external_id": r.external_id,
            "sender": {"kind": r.sender_kind, "address": r.sender_address, "name": r.sender_name}
            if r.identity_id
            else None,
            "author_agent_id": r.author_agent_id,
            "subject": r.subject,
            "text": r.text,
            "html": r.html,
            "sent_at": iso(r.sent_at),
            "created_at": iso(r.created_at),
            "attachments": attachments.get(r.id, []),
            "delivery": delivery(r),
            # Sent by the hub on its own (an answer from the back end's facts), not by an agent.
            "automatic": bool((r.metadata or {}).get("automatic")),
        }
        for r in rows
    ]
    return out


def get_message(engine: Engine, message_id: int) -> dict[str, Any]:
    """One message as get_conversation() shows it in its conversation."""
    with read_tx(engine) as conn:
        conversation_id = conn.execute(
            select(message_t.c.conversation_id).where(message_t.c.id == message_id)
        ).scalar_one()
    conv = get_conversation(engine, conversation_id)
    return next(m for m in conv["messages"] if m["id"] == message_id)
