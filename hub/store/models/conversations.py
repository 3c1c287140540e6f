"""Conversations and what was written in them: messages (inbound, outbound, internal notes, system
lines) with their attachments, and what agents keep around them: read marks, @mentions, macros."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class ConversationStatus(StrEnum):
    open = "open"
    pending = "pending"
    resolved = "resolved"
    closed = "closed"
    # Out of the open views until snoozed_until, when it opens again by itself (hub/conversations/snooze.py).
    snoozed = "snoozed"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"
    note = "note"
    system = "system"


class Conversation(SQLModel, table=True):
    __table_args__ = (
        # The inbox lists by last activity, newest first, filtered by one of these columns.
        Index("ix_conversation_activity", "last_message_at", "id"),
        Index("ix_conversation_status_activity", "status", "last_message_at", "id"),
        Index("ix_conversation_channel_activity", "channel", "last_message_at", "id"),
        Index("ix_conversation_assignee_activity", "assignee_id", "last_message_at", "id"),
        Index("ix_conversation_customer_activity", "customer_id", "last_message_at", "id"),
        Index("ix_conversation_thread", "channel", "thread_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    channel: str = Field(max_length=32)
    # A channel-level thread (a Telegram chat id): where the next message of that thread goes.
    thread_key: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=500)
    status: str = Field(default=ConversationStatus.open, max_length=16)
    priority: str = Field(default=Priority.normal, max_length=16)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id")
    intent: str | None = Field(default=None, max_length=100)
    sla_due_at: datetime | None = None
    # Service levels (hub/sla/timers.py): the running policy and its targets' due times.
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_policy: str | None = Field(default=None, max_length=100)
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    last_message_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Counts the changes of what agents see and decide on (status, priority, assignee, customer,
    # subject, intent): every such write sets version = version + 1 in its own UPDATE, and an
    # agent's change names the version it was made on, so a change made on a stale page is refused
    # instead of overwriting a newer one (hub/conversations/actions.py). Derived columns (SLA due times,
    # last_message_at) do not count: they follow from the others.
    version: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})
    # While status is snoozed: when it opens again (the snooze worker's index, ix_conversation_snoozed).
    snoozed_until: datetime | None = None


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
        Index("ix_message_conversation", "conversation_id", "id"),
        # A customer's messages by identity: erasing them, and the foreign key's check when an
        # identity row is deleted (a merge, an erasure), which PostgreSQL otherwise does by reading
        # the whole message table.
        Index("ix_message_identity", "identity_id"),
        # What the routing worker has still to look at: small, however large the store grows.
        Index(
            "ix_message_unrouted",
            "id",
            sqlite_where=text("routed_at IS NULL AND direction = 'inbound'"),
            postgresql_where=text("routed_at IS NULL AND direction = 'inbound'"),
        ),
    )

    id: int | None = Field(default=None, sa_column_kwargs={"autoincrement": True}, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    direction: str = Field(max_length=16)
    channel: str = Field(max_length=32)
    # Unique per channel for what came in (dedupe) and what went out (threading on replies).
    external_id: str | None = Field(default=None, max_length=500)
    identity_id: int | None = Field(default=None, foreign_key="identity.id")
    author_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    subject: str | None = Field(default=None, max_length=500)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # sanitised
    sent_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False, default=dict))
    # When routing (intent, SCM facts, automatic answer) was done with an inbound message; NULL:
    # still to do. Ingest leaves it NULL and never waits for routing (hub/scm/autoanswer.py).
    routed_at: datetime | None = None


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=300)
    content_type: str = Field(max_length=200)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The blob lives under data_dir/blobs/<sha[:2]>/<sha>: identical files are stored once.
    sha256: str = Field(max_length=64, index=True)
    content_id: str | None = Field(default=None, max_length=300)


class ReadMark(SQLModel, table=True):
    """When an agent last looked at a conversation: newer activity shows as unread to them."""

    __tablename__ = "read_mark"
    __table_args__ = (UniqueConstraint("agent_id", "conversation_id", name="uq_read_mark_agent_conversation"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    read_at: datetime = Field(default_factory=utcnow)


class Macro(SQLModel, table=True):
    """A canned response admins manage; placeholders like {{customer.name}} are filled in when an
    agent inserts it (hub/conversations/macros.py)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ConversationTag(SQLModel, table=True):
    """A label agents put on a conversation ("refund", "vip"); lists filter by it, reports count it.
    Names are kept folded (hub/conversations/tags.py), so "VIP" and "vip" are one tag."""

    __tablename__ = "conversation_tag"
    __table_args__ = (
        UniqueConstraint("conversation_id", "tag", name="uq_conversation_tag"),
        # A list by tag: the tag's conversations, then the listing's own order on them.
        Index("ix_conversation_tag_tag", "tag", "conversation_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    tag: str = Field(max_length=50)
    created_at: datetime = Field(default_factory=utcnow)


class Mention(SQLModel, table=True):
    """An agent @mentioned in an internal note."""

    __table_args__ = (
        UniqueConstraint("message_id", "agent_id", name="uq_mention_message_agent"),
        Index("ix_mention_agent", "agent_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id")
    agent_id: int = Field(foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)


# The inbox sorts by priority (one index range per level, see hub/conversations/listing.py) and lists what
# is due soonest under its SLA.
Index("ix_conversation_priority_activity", Conversation.__table__.c.priority,
      Conversation.__table__.c.last_message_at, Conversation.__table__.c.id)
Index("ix_conversation_sla_due", Conversation.__table__.c.sla_due_at)
# What the snooze worker looks for: the snoozed conversations whose time has come.
Index("ix_conversation_snoozed", Conversation.__table__.c.snoozed_until)
# What the SLA worker rereads each pass: conversations changed since its watermark.
Index("ix_conversation_updated", Conversation.__table__.c.updated_at)
# Reports: a range of days is found by creation time instead of scanning every row; the message
# index holds inbound messages only, with their channel, so the volume report reads it alone.
Index("ix_conversation_created", Conversation.__table__.c.created_at, Conversation.__table__.c.channel)
Index(
    "ix_message_inbound_created",
    Message.__table__.c.created_at,
    Message.__table__.c.channel,
    sqlite_where=text("direction = 'inbound'"),
    postgresql_where=text("direction = 'inbound'"),
)
