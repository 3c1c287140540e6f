"""The customer-interaction store (SQLModel tables). Alembic migrations in hub/migrations follow it.

Times are timezone-aware UTC (sqlmodel's UTCDateTime stores them as UTC and returns them aware,
also on SQLite, which has no time zones).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Segment(StrEnum):
    general = "general"
    potential = "potential"
    key = "key"


class IdentityKind(StrEnum):
    email = "email"
    telegram = "telegram"
    phone = "phone"
    web = "web"


class ConversationStatus(StrEnum):
    open = "open"
    pending = "pending"
    resolved = "resolved"
    closed = "closed"


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


class AgentRole(StrEnum):
    agent = "agent"
    admin = "admin"


class TokenRole(StrEnum):
    integration = "integration"
    backoffice = "backoffice"


class OutboxStatus(StrEnum):
    pending = "pending"  # queued, waiting for its next attempt
    sending = "sending"  # claimed by a worker (lease until locked_until)
    sent = "sent"
    dead = "dead"  # gave up: permanent failure or attempts exhausted


class Customer(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: Optional[str] = Field(default=None, max_length=200)
    segment: str = Field(default=Segment.general, max_length=16)
    merged_into: Optional[int] = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_identity_kind_address"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=16)
    address: str = Field(max_length=320)
    display_name: Optional[str] = Field(default=None, max_length=200)
    verified: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Agent(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: Optional[str] = Field(default=None, max_length=200)
    password_hash: str = Field(max_length=200)
    role: str = Field(default=AgentRole.agent, max_length=16)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


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

    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    channel: str = Field(max_length=32)
    # A channel-level thread (a Telegram chat id): where the next message of that thread goes.
    thread_key: Optional[str] = Field(default=None, max_length=200)
    subject: Optional[str] = Field(default=None, max_length=500)
    status: str = Field(default=ConversationStatus.open, max_length=16)
    priority: str = Field(default=Priority.normal, max_length=16)
    assignee_id: Optional[int] = Field(default=None, foreign_key="agent.id")
    intent: Optional[str] = Field(default=None, max_length=100)
    sla_due_at: Optional[datetime] = None
    first_response_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    last_message_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
        Index("ix_message_conversation", "conversation_id", "id"),
    )

    id: Optional[int] = Field(default=None, sa_column_kwargs={"autoincrement": True}, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    direction: str = Field(max_length=16)
    channel: str = Field(max_length=32)
    # Unique per channel for what came in (dedupe) and what went out (threading on replies).
    external_id: Optional[str] = Field(default=None, max_length=500)
    identity_id: Optional[int] = Field(default=None, foreign_key="identity.id")
    author_agent_id: Optional[int] = Field(default=None, foreign_key="agent.id")
    subject: Optional[str] = Field(default=None, max_length=500)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))  # sanitised
    sent_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False, default=dict))


class Attachment(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=300)
    content_type: str = Field(max_length=200)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The blob lives under data_dir/blobs/<sha[:2]>/<sha>: identical files are stored once.
    sha256: str = Field(max_length=64, index=True)
    content_id: Optional[str] = Field(default=None, max_length=300)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: Optional[datetime] = None
    revoked_at: Optional[datetime] = None


class AgentSession(SQLModel, table=True):
    __tablename__ = "agent_session"

    id: Optional[int] = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Outbox(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # "message" (a reply on a channel), later: escalation, csat...
    channel: Optional[str] = Field(default=None, max_length=32)
    message_id: Optional[int] = Field(default=None, foreign_key="message.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.pending, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    idempotency_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = None


class KbArticle(SQLModel, table=True):
    __tablename__ = "kb_article"

    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    language: str = Field(default="en", max_length=16)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KbChunk(SQLModel, table=True):
    __tablename__ = "kb_chunk"

    id: Optional[int] = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    position: int
    text: str = Field(sa_column=Column(Text, nullable=False))


class Csat(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    score: int
    comment: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: Optional[int] = Field(default=None, primary_key=True)
    actor: str = Field(max_length=200)  # "agent:3", "token:7", "cli"
    action: str = Field(max_length=64)
    target: str = Field(max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SpoolStatus(StrEnum):
    pending = "pending"
    processing = "processing"
    done = "done"
    rejected = "rejected"  # could not be processed: reason in last_error, raw input kept


class InboundSpool(SQLModel, table=True):
    """What a channel received, stored before it acknowledged upstream (an SMTP 250, a webhook's
    200, an IMAP UID marked as fetched) and processed after, with retries. Nothing acknowledged
    is ever lost; what cannot be processed stays here as rejected, with its reason."""

    __tablename__ = "inbound_spool"
    __table_args__ = (
        UniqueConstraint("channel", "key", name="uq_inbound_spool_channel_key"),
        Index("ix_inbound_spool_due", "status", "next_attempt_at", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    key: str = Field(max_length=500)  # the channel's id for the input (update id, UID, queue id)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    blob_sha256: Optional[str] = Field(default=None, max_length=64)  # raw bytes (an email) if any
    status: str = Field(default=SpoolStatus.pending, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: Optional[int] = Field(default=None, foreign_key="message.id")
    created_at: datetime = Field(default_factory=utcnow)
    processed_at: Optional[datetime] = None


class LinkCode(SQLModel, table=True):
    """A one-time code the hub issued to a known customer (in an email, say); a customer who sends
    it from another channel (Telegram /start CODE) proves both identities are theirs."""

    __tablename__ = "link_code"

    id: Optional[int] = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: Optional[datetime] = None
    used_by_identity_id: Optional[int] = Field(default=None, foreign_key="identity.id")


class ChannelState(SQLModel, table=True):
    """Small durable state a channel keeps (an IMAP account's UIDVALIDITY and last UID), so it
    resumes where it stopped after a restart. Correctness never rests on it alone: the spool's
    unique (channel, key) drops whatever is fetched twice."""

    __tablename__ = "channel_state"
    __table_args__ = (UniqueConstraint("channel", "name", name="uq_channel_state_channel_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    name: str = Field(max_length=200)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


# --- knowledge base (issue 6): KbArticle / KbChunk above are extended here, new tables below ---


# --- SCM routing, facts, escalations, demand (issue 7) ---
