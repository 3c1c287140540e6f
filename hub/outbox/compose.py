"""The one way a message to a customer is queued: compose_message() stores the outbound message (what the
agents see in the conversation) and its outbox row (what the worker hands the channel), in the
caller's transaction, with one set of payload keys whoever sends: agents' replies, automatic
answers, satisfaction surveys, web-form confirmations, link codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from hub.contract.messages import OutboundMessage
from hub.outbox.queue import enqueue
from hub.store.db import write_tx
from hub.store.models import Attachment, Direction, Message, Outbox, utcnow
from hub.store.sanitize import sanitize_html

message_t = Message.__table__
outbox_t = Outbox.__table__
attachment_t = Attachment.__table__

# Every outbox row of kind "message" carries exactly these; the worker reads them
# (hub/outbox/worker.py) and tolerates rows from before that lack the optional ones.
PAYLOAD_KEYS = ("conversation_id", "channel", "recipient", "text", "html", "subject", "reply_to", "thread_key", "attachments", "buttons")


@dataclass(frozen=True)
class Queued:
    """What compose_message() did: the outbound message's id, whom it goes to, and whether it was queued
    now (False: the same idempotency key was queued before, and that earlier message stands)."""

    message_id: int | None
    recipient: str
    created: bool


def payload(
    *, conversation_id: int, channel: str, recipient: str, text: str, html: str | None = None, subject: str | None = None,
    reply_to: Iterable[str] = (), thread_key: str | None = None, attachments: Iterable[dict] = (),
    buttons: Iterable[tuple[str, str]] = (),
) -> dict:
    """An outbox payload of kind "message" (JSON): the keys of PAYLOAD_KEYS, all of them."""
    return {
        "conversation_id": conversation_id,
        "channel": channel,
        "recipient": recipient,
        "text": text,
        "html": html,
        "subject": subject,
        "reply_to": list(reply_to),
        "thread_key": thread_key,
        # Stored blobs ({filename, content_type, size, sha256}): the worker loads their bytes.
        "attachments": [dict(a) for a in attachments],
        "buttons": [[str(label), str(data)] for label, data in buttons],
    }


def compose_message(
    conn: Connection,
    *,
    conversation_id: int,
    channel: str,
    recipient: str,
    text: str,
    html: str | None = None,
    subject: str | None = None,
    reply_to: Iterable[str] = (),
    thread_key: str | None = None,
    attachments: Iterable[dict] = (),
    buttons: Iterable[tuple[str, str]] = (),
    author_agent_id: int | None = None,
    metadata: dict | None = None,
    shown_text: str | None = None,
    idempotency_key: str | None = None,
) -> Queued:
    """Store an outbound message and queue its delivery, in the caller's transaction.

    shown_text: what the conversation shows instead of `text` when the sent text must not be kept
    (a survey's links answer in the customer's name); the message then keeps no HTML either.
    idempotency_key: for a sender that may run twice for the same cause (a form posted twice):
    the second call adds nothing and returns the first one's message. Without it, the key is the
    new message's own id."""
    clean_html = sanitize_html(html)
    attachments = [dict(a) for a in attachments]
    body = payload(
        conversation_id=conversation_id, channel=channel, recipient=recipient, text=text, html=clean_html, subject=subject,
        reply_to=reply_to, thread_key=thread_key, attachments=attachments, buttons=buttons,
    )
    outbox_id = None
    if idempotency_key is not None:
        # The outbox row first: its unique key settles a race between two senders of the same
        # cause, and the loser adds nothing.
        outbox_id = enqueue(conn, kind="message", channel=channel, payload=body, idempotency_key=idempotency_key)
        if outbox_id is None:
            earlier = conn.execute(
                select(outbox_t.c.payload, outbox_t.c.message_id).where(outbox_t.c.idempotency_key == idempotency_key)
            ).one()
            return Queued(earlier.message_id, (earlier.payload or {}).get("recipient", recipient), False)
    now = utcnow()
    message_id = conn.execute(
        message_t.insert()
        .values(
            conversation_id=conversation_id,
            direction=Direction.outbound,
            channel=channel,
            author_agent_id=author_agent_id,
            subject=subject,
            text=text if shown_text is None else shown_text,
            html=clean_html if shown_text is None else None,
            sent_at=now,
            created_at=now,
            # Whom it went to: who may later thread into the conversation by naming it (hub/ingest/threading_rules.py).
            metadata={**(metadata or {}), "to": [recipient]},
        )
        .returning(message_t.c.id)
    ).scalar_one()
    if attachments:
        conn.execute(attachment_t.insert(), [dict(a, message_id=message_id) for a in attachments])
    if outbox_id is None:
        enqueue(conn, kind="message", channel=channel, message_id=message_id, payload=body, idempotency_key=f"message:{message_id}")
    else:
        conn.execute(update(outbox_t).where(outbox_t.c.id == outbox_id).values(message_id=message_id))
    return Queued(message_id, recipient, True)


def queue_message(engine: Engine, message: OutboundMessage, *, metadata: dict | None = None) -> str:
    """compose_message() in a transaction of its own, for a message a channel asks the hub to send (a web
    form's confirmation): returns the address it goes to (the earlier one's when its idempotency
    key was queued before)."""
    with write_tx(engine) as conn:
        return compose_message(
            conn, conversation_id=message.conversation_id, channel=message.channel, recipient=message.recipient,
            text=message.text, html=message.html, subject=message.subject, reply_to=message.reply_to,
            thread_key=message.thread_key, buttons=message.buttons, metadata=metadata,
            idempotency_key=message.idempotency_key,
        ).recipient
