"""Supply-chain answers: what the back end said about orders and stock a customer asked about,
replies composed but not sent, the routing worker's leases, escalations to the back office and
their progress, and the stock questions counted per product and day."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class ScmFact(SQLModel, table=True):
    """What the back end said about an order or a product a customer asked about, attached to the
    conversation for the agent. payload: the OrderStatus or the StockLevels as JSON; error: the back
    end's failure code (unknown_order, backend_unavailable...) when it could not say. disclosed:
    the customer was told (an automatic answer); the privacy rule decides, the agent sees all."""

    __tablename__ = "scm_fact"
    __table_args__ = (Index("ix_scm_fact_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    message_id: int = Field(foreign_key="message.id", index=True)
    kind: str = Field(max_length=16)  # "order" | "stock"
    subject: str = Field(max_length=300)  # the order reference or the product as asked
    payload: Any | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    disclosed: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ReplyDraft(SQLModel, table=True):
    """A reply the hub composed from the facts but did not send (privacy rule, low confidence,
    channel policy, a failure): the agent reviews it and sends it as an ordinary reply."""

    __tablename__ = "reply_draft"
    __table_args__ = (Index("ix_reply_draft_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
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

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", unique=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
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

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=EscalationStatus.queued, max_length=16)
    target: str = Field(max_length=16)  # "webhook" | "email" | "backend"
    external_reference: str | None = Field(default=None, max_length=200)
    external_url: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=200)  # "agent:3", "rule:late_order_key_customer"
    # A rule escalates a situation once (e.g. "late_order:42:SO-4711"); agents' escalations: NULL.
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    resolved_at: datetime | None = None


class EscalationEvent(SQLModel, table=True):
    """Progress the back office reported (POST /api/v1/escalations/{id}/events), also shown as a
    system message in the conversation. event_key: the back office's id of the event, so a retried
    report is recorded once."""

    __tablename__ = "escalation_event"
    __table_args__ = (UniqueConstraint("escalation_id", "event_key", name="uq_escalation_event_key"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id", index=True)
    status: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    external_reference: str | None = Field(default=None, max_length=200)
    event_key: str | None = Field(default=None, max_length=200)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    actor: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class DemandCount(SQLModel, table=True):
    """Stock questions per product and day (UTC): how often asked, how often it was not available.
    pushed_*: what the back end was last told (record_demand), so a changed day is pushed again."""

    __tablename__ = "demand_count"
    __table_args__ = (UniqueConstraint("day", "sku", name="uq_demand_count_day_sku"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    sku: str = Field(max_length=100)
    product_name: str | None = Field(default=None, max_length=300)
    asked: int = 0
    unavailable: int = 0
    pushed_asked: int = 0
    pushed_unavailable: int = 0
    pushed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
