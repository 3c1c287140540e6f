"""What channels received before it was stored (the inbound spool: acknowledged upstream, processed
after, with retries) and the small durable state a channel keeps between restarts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


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

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    key: str = Field(max_length=500)  # the channel's id for the input (update id, UID, queue id)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    blob_sha256: str | None = Field(default=None, max_length=64)  # raw bytes (an email) if any
    status: str = Field(default=SpoolStatus.pending, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    message_id: int | None = Field(default=None, foreign_key="message.id")
    created_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    # A time budget an admin gave this item when retrying it; None: the hub's default.
    budget_seconds: float | None = None


class ChannelState(SQLModel, table=True):
    """Small durable state a channel keeps (an IMAP account's UIDVALIDITY and last UID), so it
    resumes where it stopped after a restart. Correctness never rests on it alone: the spool's
    unique (channel, key) drops whatever is fetched twice."""

    __tablename__ = "channel_state"
    __table_args__ = (UniqueConstraint("channel", "name", name="uq_channel_state_channel_name"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    name: str = Field(max_length=200)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
