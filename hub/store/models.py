"""The customer-interaction store (SQLModel tables). Alembic migrations in hub/migrations follow it.

Times are timezone-aware UTC (sqlmodel's UTCDateTime stores them as UTC and returns them aware,
also on SQLite, which has no time zones).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from hub.contract import clock


def utcnow() -> datetime:
    return clock.now()


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
    # Set by hand (an admin, the demo's key customer): recomputation leaves the segment alone.
    segment_locked: bool = False
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
    # Service levels (issue 9, hub/sla/timers.py): the running policy and its targets' due times.
    first_response_due_at: Optional[datetime] = None
    resolution_due_at: Optional[datetime] = None
    sla_policy: Optional[str] = Field(default=None, max_length=100)
    first_response_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    last_message_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Counts the changes of what agents see and decide on (status, priority, assignee, customer,
    # subject, intent): every such write sets version = version + 1 in its own UPDATE, and an
    # agent's change names the version it was made on, so a change made on a stale page is refused
    # instead of overwriting a newer one (hub/conversations/core.py). Derived columns (SLA due times,
    # last_message_at) do not count: they follow from the others.
    version: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
        Index("ix_message_conversation", "conversation_id", "id"),
        # What the routing worker has still to look at: small, however large the store grows.
        Index(
            "ix_message_unrouted",
            "id",
            sqlite_where=text("routed_at IS NULL AND direction = 'inbound'"),
            postgresql_where=text("routed_at IS NULL AND direction = 'inbound'"),
        ),
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
    # When routing (intent, SCM facts, automatic answer) was done with an inbound message; NULL:
    # still to do. Ingest leaves it NULL and never waits for routing (hub/scm/autoanswer.py).
    routed_at: Optional[datetime] = None


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
    last_seen_at: Optional[datetime] = None  # null: not used since it was created


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
    """A knowledge-base article. Its passages (kb_chunk) are derived from it on every write; only
    published articles are searched and suggested (drafts wait for an admin)."""

    __tablename__ = "kb_article"
    __table_args__ = (UniqueConstraint("source_key", name="uq_kb_article_source_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    # How the body is written: markdown | html (sanitised) | text.
    format: str = Field(default="markdown", max_length=16)
    language: str = Field(default="en", max_length=16)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published: bool = True
    # Where it came from, so that importing the same file again updates instead of duplicating:
    # "<file path>" or "<file path>#<question>", "demo:<slug>", "capture:<message id>".
    source_key: Optional[str] = Field(default=None, max_length=500)
    # Knowledge capture: the agent's reply the article was drafted from.
    captured_from_message_id: Optional[int] = Field(default=None, foreign_key="message.id")
    created_by: Optional[str] = Field(default=None, max_length=200)  # "agent:3", "cli", "demo"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KbChunk(SQLModel, table=True):
    """A passage of an article: what the index searches. passage_id carries a hash of the
    passage's content, so an edit re-embeds only the passages that changed."""

    __tablename__ = "kb_chunk"

    id: Optional[int] = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    passage_id: str = Field(max_length=64, unique=True)
    position: int
    heading: str = Field(default="", max_length=300)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # The passage's embeddings (knowledge/index.py: its views, float16 bytes) and the model that
    # made them: a rebuilt index, or another hub process, reuses them instead of running the model.
    vector: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    vector_model: Optional[str] = Field(default=None, max_length=200)


class Csat(SQLModel, table=True):
    """A customer's answer to the satisfaction survey: one per conversation (a later answer within
    the survey's validity replaces the score). score 1..5, 5 = very satisfied."""

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True, unique=True)
    score: int
    comment: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    # The channel the answer came by ("web" for the survey page, "telegram" for its buttons), the
    # conversation's assignee when it was resolved (reports by agent), and the latest answer's time.
    channel: Optional[str] = Field(default=None, max_length=32)
    agent_id: Optional[int] = Field(default=None, foreign_key="agent.id")
    answered_at: Optional[datetime] = Field(default=None)


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
        # Each channel's worker claims its own due items (hub/ingest/spool.py).
        Index("ix_inbound_spool_lane", "channel", "status", "next_attempt_at", "id"),
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
    # A time budget an admin gave this item when retrying it; None: the hub's default.
    budget_seconds: Optional[float] = None


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
    created_by: Optional[str] = Field(default=None, max_length=64)  # the actor who issued it


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


class KbFeedbackVerdict(StrEnum):
    shown = "shown"  # suggested to an agent on the conversation (recorded by the hub)
    used = "used"
    not_helpful = "not_helpful"


class KbFeedback(SQLModel, table=True):
    """What became of a suggested article on a conversation: shown, used, not helpful. One row per
    (conversation, article, verdict), so counts read as "in how many conversations"."""

    __tablename__ = "kb_feedback"
    __table_args__ = (
        UniqueConstraint("conversation_id", "article_id", "verdict", name="uq_kb_feedback_conversation_article_verdict"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    passage_id: Optional[str] = Field(default=None, max_length=64)
    verdict: str = Field(max_length=16)
    agent_id: Optional[int] = Field(default=None, foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)
    # For "used" / "not_helpful": the customer's question the verdict was about, and its embedding
    # (float16 bytes) with the model that made it. The suggestions learn from them
    # (knowledge/feedback.py); a privacy erase clears them.
    question: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    question_vector: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    vector_model: Optional[str] = Field(default=None, max_length=200)


# --- SCM routing, facts, escalations, demand (issue 7) ---


class ScmFact(SQLModel, table=True):
    """What the back end said about an order or a product a customer asked about, attached to the
    conversation for the agent. payload: the OrderStatus or the StockLevels as JSON; error: the back
    end's failure code (unknown_order, backend_unavailable...) when it could not say. disclosed:
    the customer was told (an automatic answer); the privacy rule decides, the agent sees all."""

    __tablename__ = "scm_fact"
    __table_args__ = (Index("ix_scm_fact_conversation", "conversation_id", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    message_id: int = Field(foreign_key="message.id", index=True)
    kind: str = Field(max_length=16)  # "order" | "stock"
    subject: str = Field(max_length=300)  # the order reference or the product as asked
    payload: Optional[Any] = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: Optional[str] = Field(default=None, max_length=64)
    error_message: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    disclosed: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ReplyDraft(SQLModel, table=True):
    """A reply the hub composed from the facts but did not send (privacy rule, low confidence,
    channel policy, a failure): the agent reviews it and sends it as an ordinary reply."""

    __tablename__ = "reply_draft"
    __table_args__ = (Index("ix_reply_draft_conversation", "conversation_id", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    message_id: int = Field(foreign_key="message.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    language: str = Field(default="en", max_length=8)
    reason: str = Field(max_length=64)  # why it was not sent automatically
    created_at: datetime = Field(default_factory=utcnow)


class RoutingAttempt(SQLModel, table=True):
    """A routing worker's lease on an inbound message, and its retry schedule while the back end is
    down. Deleted once the message is routed (message.routed_at)."""

    __tablename__ = "routing_attempt"

    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", unique=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class EscalationStatus(StrEnum):
    queued = "queued"  # in the outbox, not yet delivered
    sent = "sent"  # the back office took it
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    resolved = "resolved"
    failed = "failed"  # could not be delivered (refused, or retries exhausted)


class Escalation(SQLModel, table=True):
    """A conversation handed to the back office by an agent or a rule, delivered through the
    outbox (webhook, email or the back end's escalate()); the back office reports progress."""

    __table_args__ = (Index("ix_escalation_conversation", "conversation_id", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=EscalationStatus.queued, max_length=16)
    target: str = Field(max_length=16)  # "webhook" | "email" | "backend"
    external_reference: Optional[str] = Field(default=None, max_length=200)
    external_url: Optional[str] = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=200)  # "agent:3", "rule:late_order_key_customer"
    # A rule escalates a situation once (e.g. "late_order:42:SO-4711"); agents' escalations: NULL.
    dedupe_key: Optional[str] = Field(default=None, max_length=200, unique=True)
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None


class EscalationEvent(SQLModel, table=True):
    """Progress the back office reported (POST /api/v1/escalations/{id}/events), also shown as a
    system message in the conversation. event_key: the back office's id of the event, so a retried
    report is recorded once."""

    __tablename__ = "escalation_event"
    __table_args__ = (UniqueConstraint("escalation_id", "event_key", name="uq_escalation_event_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id", index=True)
    status: Optional[str] = Field(default=None, max_length=16)
    comment: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    external_reference: Optional[str] = Field(default=None, max_length=200)
    event_key: Optional[str] = Field(default=None, max_length=200)
    message_id: Optional[int] = Field(default=None, foreign_key="message.id")
    actor: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class DemandCount(SQLModel, table=True):
    """Stock questions per product and day (UTC): how often asked, how often it was not available.
    pushed_*: what the back end was last told (record_demand), so a changed day is pushed again."""

    __tablename__ = "demand_count"
    __table_args__ = (UniqueConstraint("day", "sku", name="uq_demand_count_day_sku"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    day: date
    sku: str = Field(max_length=100)
    product_name: Optional[str] = Field(default=None, max_length=300)
    asked: int = 0
    unavailable: int = 0
    pushed_asked: int = 0
    pushed_unavailable: int = 0
    pushed_at: Optional[datetime] = None
    updated_at: datetime = Field(default_factory=utcnow)


# --- unified inbox (issue 8) ---


class LoginLock(SQLModel, table=True):
    """Failed sign-ins per account (normalised email), and the lock they led to: after too many
    failures in a row the account refuses sign-in for a while, whatever the client address."""

    __tablename__ = "login_lock"

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    failures: int = 0
    first_failure_at: datetime = Field(default_factory=utcnow)
    locked_until: Optional[datetime] = None
    updated_at: datetime = Field(default_factory=utcnow)


class ReadMark(SQLModel, table=True):
    """When an agent last looked at a conversation: newer activity shows as unread to them."""

    __tablename__ = "read_mark"
    __table_args__ = (UniqueConstraint("agent_id", "conversation_id", name="uq_read_mark_agent_conversation"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    read_at: datetime = Field(default_factory=utcnow)


class Macro(SQLModel, table=True):
    """A canned response admins manage; placeholders like {{customer.name}} are filled in when an
    agent inserts it (hub/conversations/macros.py)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Mention(SQLModel, table=True):
    """An agent @mentioned in an internal note."""

    __table_args__ = (
        UniqueConstraint("message_id", "agent_id", name="uq_mention_message_agent"),
        Index("ix_mention_agent", "agent_id", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id")
    agent_id: int = Field(foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)


# The inbox sorts by priority (one index range per level, see hub/conversations/listing.py) and lists what
# is due soonest under its SLA.
Index("ix_conversation_priority_activity", Conversation.__table__.c.priority,
      Conversation.__table__.c.last_message_at, Conversation.__table__.c.id)
Index("ix_conversation_sla_due", Conversation.__table__.c.sla_due_at)


# --- service levels and assignment (issue 9) ---


# What the SLA worker rereads each pass: conversations and customers changed since its watermark.
Index("ix_conversation_updated", Conversation.__table__.c.updated_at)
Index("ix_customer_updated", Customer.__table__.c.updated_at)


class Team(SQLModel, table=True):
    """A named group of agents: key customers can be routed to one (SlaSettings.key_customer_team)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("team_id", "agent_id", name="uq_team_member"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    agent_id: int = Field(foreign_key="agent.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class AgentAvailability(SQLModel, table=True):
    """Whether an agent takes new conversations (no row: available). last_assigned_at orders the
    round robin: the agent who got one longest ago is next."""

    __tablename__ = "agent_availability"

    id: Optional[int] = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", unique=True)
    available: bool = True
    last_assigned_at: Optional[datetime] = None
    updated_at: datetime = Field(default_factory=utcnow)


class SlaClock(SQLModel, table=True):
    """The SLA worker's state per conversation: when the current cycle (opening or reopening)
    started, the status it last saw, when warnings fall due and when to look again."""

    __tablename__ = "sla_clock"

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    started_at: datetime
    status_seen: str = Field(max_length=16)
    first_response_warn_at: Optional[datetime] = None
    resolution_warn_at: Optional[datetime] = None
    next_check_at: Optional[datetime] = Field(default=None, index=True)
    assign_done: bool = False
    # What the timers were computed from (policy set, priority, segment, status...): unchanged, the
    # worker skips the conversation.
    fingerprint: Optional[str] = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class SlaEvent(SQLModel, table=True):
    """A warning or breach that was acted on: unique, so two workers or a restart act once."""

    __tablename__ = "sla_event"
    __table_args__ = (
        UniqueConstraint("conversation_id", "timer", "stage", "due_at", name="uq_sla_event"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    timer: str = Field(max_length=16)  # "first_response" | "resolution"
    stage: str = Field(max_length=16)  # "warning" | "breach"
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow)



# --- customer value and segments (issue 9) ---


class CustomerValue(SQLModel, table=True):
    """A customer's figures over the segment window, as last computed (hub/segments/value.py).

    source: "scm" (orders from the back end), "contacts" (no back end, or it cannot list a
    customer's orders: contact history only), "stale" (the back end was down: the order figures are
    the previous ones, retried later). due_at: when the background worker recomputes them next."""

    __tablename__ = "customer_value"

    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", unique=True)
    order_value: float = 0.0
    order_count: int = 0
    currency: str = Field(max_length=8)
    contacts: int = 0          # conversations opened in the window
    messages: int = 0          # inbound messages in the window
    window_days: int
    source: str = Field(max_length=16)
    error: Optional[str] = Field(default=None, max_length=500)
    orders_as_of: Optional[datetime] = None   # when the back end last answered for this customer
    computed_at: datetime = Field(default_factory=utcnow)
    due_at: datetime = Field(default_factory=utcnow, index=True)


# --- satisfaction surveys (issue 9) ---


class CsatSurvey(SQLModel, table=True):
    """The survey sent when a conversation was resolved: one per conversation, ever (a re-resolved
    conversation is not surveyed again). The customer answers with the token; only its SHA-256 is
    kept, so the store cannot be used to answer in a customer's name."""

    __tablename__ = "csat_survey"

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=32)  # where it went: "email" or "telegram"
    language: str = Field(max_length=8)
    message_id: Optional[int] = Field(default=None, foreign_key="message.id")
    agent_id: Optional[int] = Field(default=None, foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


# --- privacy (issue 9) ---
# (and reports: a range of days is found by creation time instead of scanning every row; the
# message index holds inbound messages only, with their channel, so the volume report reads it alone)
Index("ix_conversation_created", Conversation.__table__.c.created_at, Conversation.__table__.c.channel)
Index(
    "ix_message_inbound_created",
    Message.__table__.c.created_at,
    Message.__table__.c.channel,
    sqlite_where=text("direction = 'inbound'"),
    postgresql_where=text("direction = 'inbound'"),
)


# --- elected singletons: one holder per lease among all the hub's processes ---


class Lease(SQLModel, table=True):
    """Who runs a loop that must run once among all the hub's processes (a mailbox's poller, a
    bot's poller, the segment recomputation): hub/runtime/leases.py. Times are the database's
    clock (now() in every statement), never a process's, so machines' clocks may differ. The
    generation grows at every change of holder: a fencing token, so a holder that was away
    cannot renew a lease another took meanwhile."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    generation: int = Field(sa_column=Column(BigInteger, nullable=False))
    acquired_at: datetime
    expires_at: datetime
