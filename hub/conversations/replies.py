"""Answering a customer: where a reply goes (the customer's own address on the conversation's
channel, or another channel they can be reached on) and queuing it through the outbox's compose,
for agents' replies and the hub's own messages in a conversation (automatic answers, link codes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select, update

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_, Word
from hub.contract.principal import Principal
from hub.conversations.queries import get_conversation, require_conversation
from hub.conversations.versions import bumped
from hub.outbox import compose_message
from hub.store.blobs import BlobStore
from hub.store.db import read_tx, write_tx
from hub.store.models import Conversation, ConversationStatus, Customer, Direction, Identity, Message, utcnow

conversation_t = Conversation.__table__
customer_t = Customer.__table__
identity_t = Identity.__table__
message_t = Message.__table__

# Channels a customer cannot be answered on (a form has no way back, a call was a call): replies
# go by email to the customer's address.
ANSWERED_BY_EMAIL = {"webform", "voice"}


# Channels a reply can be sent on to any of the customer's addresses of that kind, whatever channel
# the conversation came by (an agent answering a call's transcript on Telegram, say).
REPLY_CHANNELS = {"email": "email", "telegram": "telegram"}


def _customer_address(conn, conv, kind: str) -> str | None:
    return conn.execute(
        select(identity_t.c.address)
        .where(identity_t.c.customer_id == conv.customer_id, identity_t.c.kind == kind)
        .order_by(identity_t.c.verified.desc(), identity_t.c.id.desc())
        .limit(1)
    ).scalar()


def _latest_channel(conn, conv) -> str:
    """The channel of the customer's latest message in the conversation (a conversation may go on
    across channels): where a reply goes by default."""
    latest = (
        select(message_t.c.channel)
        .join(identity_t, identity_t.c.id == message_t.c.identity_id)
        .where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound,
               identity_t.c.customer_id == conv.customer_id)
        .order_by(message_t.c.id.desc())
        .limit(1)
    )
    return conn.execute(latest).scalar() or conv.channel


def recipient(conn, conv, channel: str | None = None) -> tuple[str, str, list[str]]:
    """(channel, recipient, reply_to) of a reply: by default on the channel of the customer's
    latest message in the conversation, to the address they last wrote from on it, with the
    external ids of the inbound messages on it, that message first, for threading in the customer's
    client. `channel` names another channel to answer on: the customer's address of that kind.

    Never somebody else who wrote into the conversation (a colleague on Cc): a reply, and above all
    an automatic answer with order facts, goes to the customer whose conversation it is, whoever
    wrote last."""
    home = _latest_channel(conn, conv)
    default = "email" if home in ANSWERED_BY_EMAIL else home
    channel = channel or default
    if channel != home and conn.execute(
        select(message_t.c.id).where(message_t.c.conversation_id == conv.id, message_t.c.direction == Direction.inbound,
                                     message_t.c.channel == channel).limit(1)
    ).first():
        home = channel  # the customer wrote on it too: answer in that thread
    if channel != home:
        if channel not in REPLY_CHANNELS:
            raise RejectedInput(N_("a reply cannot be sent on %(channel)s; choose one of: %(choices)s"),
                                params={"channel": repr(channel), "choices": ", ".join(sorted(REPLY_CHANNELS))})
        address = _customer_address(conn, conv, REPLY_CHANNELS[channel])
        if address is None:
            how = (N_("conversation %(id)s came by %(home)s and its customer has no %(channel)s address to answer; call them "
                      "back, or add one to the customer") if home == "voice" else
                   N_("conversation %(id)s came by %(home)s and its customer has no %(channel)s address to answer; add one to "
                      "the customer"))
            raise RejectedInput(how, params={"id": conv.id, "home": Word(home), "channel": Word(channel)})
        return channel, address, []
    inbound = (
        select(message_t.c.external_id, identity_t.c.address)
        .join(identity_t, identity_t.c.id == message_t.c.identity_id)
        .where(
            message_t.c.conversation_id == conv.id,
            message_t.c.direction == Direction.inbound,
            message_t.c.channel == home,
        )
        .order_by(message_t.c.id.desc())
    )
    recent = conn.execute(inbound.limit(10)).all()
    if not recent:
        raise RejectedInput(N_("conversation %(id)s has no inbound message on %(home)s to reply to"), params={"id": conv.id, "home": Word(home)})
    own = conn.execute(inbound.where(identity_t.c.customer_id == conv.customer_id).limit(1)).first()
    if own is not None:
        address, answered = own.address, own.external_id
    else:
        # The customer's own messages came from an address that is no longer theirs (an identity
        # moved to another customer): their address of the channel's kind, if any.
        address = _customer_address(conn, conv, REPLY_CHANNELS.get(home, home))
        if address is None:
            raise RejectedInput(
                N_("conversation %(id)s has no message from its customer's own %(home)s address to answer; "
                   "add one to the customer or answer on another channel"), params={"id": conv.id, "home": Word(home)})
        answered = None
    ids = [answered] if answered else []
    ids += [r.external_id for r in recent if r.external_id and r.external_id != answered]
    return home, address, ids


def reply_recipient(engine: Engine, conversation_id: int, channel: str | None = None, *,
                    said: Callable[[RejectedInput], str] = lambda exc: exc.message) -> dict[str, Any]:
    """Where a reply to the conversation goes, for the agent to see before sending:
    {"channel", "address", "name"}, or {"channel", "error"} when it cannot go anywhere."""
    with read_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        name = conn.execute(select(customer_t.c.name).where(customer_t.c.id == conv.customer_id)).scalar()
        try:
            channel, address, _ = recipient(conn, conv, channel)
        except RejectedInput as exc:
            return {"channel": channel or conv.channel, "address": None, "name": name, "error": said(exc)}
    return {"channel": channel, "address": address, "name": name, "error": None}


def queue_outbound(
    conn, conv, text: str, *, html: str | None = None, author_agent_id: int | None = None, attachments: list[dict] = (),
    metadata: dict | None = None, channel: str | None = None, to: str | None = None,
) -> int:
    """Store an outbound message and its outbox row, in the caller's transaction, on `channel` or
    else the conversation's way back (see recipient()). Returns the message id. Used for agents'
    replies and the hub's own messages.
    attachments: stored blobs ({filename, content_type, size, sha256}); the worker loads them.
    to: this exact address on `channel` and no other (an order's status to the order's own address)."""
    if to is not None:
        if channel is None:
            raise RejectedInput(N_("a message to a given address needs its channel"))
        address, reply_to = to, []
    else:
        channel, address, reply_to = recipient(conn, conv, channel)
    return compose_message(
        conn, conversation_id=conv.id, channel=channel, recipient=address, text=text, html=html,
        subject=f"Re: {conv.subject or 'Your request'} [#{conv.id}]", reply_to=reply_to, thread_key=conv.thread_key,
        attachments=attachments, author_agent_id=author_agent_id, metadata=metadata,
    ).message_id


def reply(
    engine: Engine,
    conversation_id: int,
    actor: Principal,
    text: str,
    html: str | None = None,
    *,
    attachments: list[tuple[str, str, bytes]] = (),
    blobs: BlobStore | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Store an agent's reply and queue its delivery, in one transaction. attachments are
    (filename, content_type, bytes), stored content-addressed in `blobs` first. channel: answer on
    another channel than the conversation's (email or telegram, to the customer's address)."""
    if not text or not text.strip():
        raise RejectedInput(N_("a reply needs text"))
    if attachments and blobs is None:
        raise RejectedInput(N_("this hub has no blob store for attachments"))
    stored = [
        {"filename": name[:300], "content_type": ctype[:200], "size": len(data), "sha256": blobs.put(data)}
        for name, ctype, data in attachments
    ]
    now = utcnow()
    with write_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        message_id = queue_outbound(
            conn, conv, text, html=html, author_agent_id=actor.id if actor.is_agent else None, attachments=stored,
            channel=channel,
        )
        values: dict[str, Any] = {"updated_at": now}
        if conv.first_response_at is None:
            values["first_response_at"] = now
        if conv.status == ConversationStatus.open:
            values["status"] = ConversationStatus.pending  # waiting for the customer now
        if len(values) > 1:
            values["version"] = bumped()
        conn.execute(update(conversation_t).where(conversation_t.c.id == conv.id).values(**values))
    return _message(engine, message_id)


def _message(engine: Engine, message_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        conversation_id = conn.execute(select(message_t.c.conversation_id).where(message_t.c.id == message_id)).scalar_one()
    return next(m for m in get_conversation(engine, conversation_id)["messages"] if m["id"] == message_id)


