"""The shapes channels and the hub speak. Channels import hub.contract (this module among it) and nothing else of the hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Sender:
    """Who sent a message, as the channel knows them: an address in the channel's own terms
    (an email address, a Telegram user id, a phone number, a web session's email) and a name."""

    address: str
    name: str | None = None
    kind: str | None = None  # "email" | "telegram" | "phone" | "web"; None: from the channel


@dataclass(frozen=True)
class ThreadHints:
    """What a channel knows about where a message belongs.

    in_reply_to: external ids (email Message-IDs, Telegram message ids) the message answers, most
    specific first. thread_key: a channel-level thread such as a Telegram chat id.
    conversation_id: an explicit reference the customer carried (a subject token, a form link).
    """

    in_reply_to: tuple[str, ...] = ()
    thread_key: str | None = None
    conversation_id: int | None = None


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message. Either its bytes or a blob reference (sha256) is set."""

    filename: str
    content_type: str
    data: bytes | None = None
    blob_sha256: str | None = None
    size: int | None = None
    content_id: str | None = None  # for inline images referenced as cid: in HTML


# Flags a channel sets on mail and messages written by machines: stored and marked, never answered
# automatically, never reopening a conversation or opening a new one in the inbox.
AUTOMATED_FLAGS = frozenset({"auto_reply", "bounce", "bulk", "own_address"})


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, normalised by its channel. Frozen: the hub never edits input.

    kind: "message"; "edit" (the customer changed the message stored under the same external_id:
    the stored text is replaced and the old one kept in its history); "callback" (a button the
    customer pressed; stored as a system event, never reopening anything).
    raw: the bytes as received (an email), kept content-addressed for audit.
    verified_identities: addresses the channel verified to be the sender's own (a Telegram contact
    the user shared of themselves); a customer already known by one of them is merged in.
    link_code: a one-time code the hub issued to a known customer; sent back from this channel, it
    links the sender to that customer.
    """

    channel: str
    external_id: str
    sender: Sender
    text: str
    subject: str | None = None
    html: str | None = None
    sent_at: datetime | None = None
    thread: ThreadHints = field(default_factory=ThreadHints)
    attachments: tuple[Attachment, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "message"
    flags: tuple[str, ...] = ()
    raw: bytes | None = None
    verified_identities: tuple[Sender, ...] = ()
    link_code: str | None = None

    @property
    def automated(self) -> bool:
        return bool(AUTOMATED_FLAGS.intersection(self.flags)) or self.kind == "callback"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to a customer, handed to a channel's send() by the outbox worker."""

    conversation_id: int
    channel: str
    recipient: str
    text: str
    idempotency_key: str
    html: str | None = None
    subject: str | None = None
    reply_to: tuple[str, ...] = ()
    thread_key: str | None = None
    attachments: tuple[Attachment, ...] = ()
    message_id: int | None = None
    # Buttons under the message, (label, callback data) each, on channels that have them (Telegram
    # inline keyboards: a satisfaction survey's 1..5); other channels ignore them.
    buttons: tuple[tuple[str, str], ...] = ()
