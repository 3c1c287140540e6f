"""What the hub tells one agent: a mention, a conversation assigned to them, a snoozed conversation
back, an SLA warning. One row per thing to tell, read or not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class Notification(SQLModel, table=True):
    __table_args__ = (
        # The same event reported twice (two processes, a retried sweep) is told once.
        UniqueConstraint("agent_id", "dedupe_key", name="uq_notification_agent_key"),
        Index("ix_notification_agent", "agent_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    kind: str = Field(max_length=32)  # mention | assignment | snooze_back | sla_warning
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    text: str = Field(max_length=500)
    dedupe_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None
