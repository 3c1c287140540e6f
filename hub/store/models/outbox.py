"""What the hub has to send: one row per delivery (a reply on a channel, an escalation, a survey),
retried with backoff until it is sent or given up."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class OutboxStatus(StrEnum):
    pending = "pending"  # queued, waiting for its next attempt
    sending = "sending"  # claimed by a worker (lease until locked_until)
    sent = "sent"
    dead = "dead"  # gave up: permanent failure or attempts exhausted


class Outbox(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # "message" (a reply on a channel), later: escalation, csat...
    channel: str | None = Field(default=None, max_length=32)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.pending, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    idempotency_key: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
