"""Satisfaction surveys: the survey sent when a conversation was resolved and the customer's answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class CsatSurvey(SQLModel, table=True):
    """The survey sent when a conversation was resolved: one per conversation, ever (a re-resolved
    conversation is not surveyed again). The customer answers with the token; only its SHA-256 is
    kept, so the store cannot be used to answer in a customer's name."""

    __tablename__ = "csat_survey"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    channel: str = Field(max_length=32)  # where it went: "email" or "telegram"
    language: str = Field(max_length=8)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Csat(SQLModel, table=True):
    """A customer's answer to the satisfaction survey: one per conversation (a later answer within
    the survey's validity replaces the score). score 1..5, 5 = very satisfied."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True, unique=True)
    score: int
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    # The channel the answer came by ("web" for the survey page, "telegram" for its buttons), the
    # conversation's assignee when it was resolved (reports by agent), and the latest answer's time.
    channel: str | None = Field(default=None, max_length=32)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    answered_at: datetime | None = Field(default=None)
