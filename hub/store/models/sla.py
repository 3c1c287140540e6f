"""Service levels: the SLA worker's state per conversation and the warnings and breaches it acted on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class SlaClock(SQLModel, table=True):
    """The SLA worker's state per conversation: when the current cycle (opening or reopening)
    started, the status it last saw, when warnings fall due and when to look again."""

    __tablename__ = "sla_clock"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    started_at: datetime
    status_seen: str = Field(max_length=16)
    first_response_warn_at: datetime | None = None
    resolution_warn_at: datetime | None = None
    next_check_at: datetime | None = Field(default=None, index=True)
    assign_done: bool = False
    # What the timers were computed from (policy set, priority, segment, status...): unchanged, the
    # worker skips the conversation.
    fingerprint: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class SlaEvent(SQLModel, table=True):
    """A warning or breach that was acted on: unique, so two workers or a restart act once."""

    __tablename__ = "sla_event"
    __table_args__ = (
        UniqueConstraint("conversation_id", "timer", "stage", "due_at", name="uq_sla_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    timer: str = Field(max_length=16)  # "first_response" | "resolution"
    stage: str = Field(max_length=16)  # "warning" | "breach"
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
