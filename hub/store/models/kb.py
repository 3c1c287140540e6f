"""The knowledge base: articles, the passages the index searches (with their embeddings), and what
became of a suggested article on a conversation."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class KbArticle(SQLModel, table=True):
    """A knowledge-base article. Its passages (kb_chunk) are derived from it on every write; only
    published articles are searched and suggested (drafts wait for an admin)."""

    __tablename__ = "kb_article"
    __table_args__ = (UniqueConstraint("source_key", name="uq_kb_article_source_key"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    # How the body is written: markdown | html (sanitised) | text.
    format: str = Field(default="markdown", max_length=16)
    language: str = Field(default="en", max_length=16)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published: bool = True
    # Where it came from, so that importing the same file again updates instead of duplicating:
    # "<file path>" or "<file path>#<question>", "demo:<slug>", "capture:<message id>".
    source_key: str | None = Field(default=None, max_length=500)
    # Knowledge capture: the agent's reply the article was drafted from.
    captured_from_message_id: int | None = Field(default=None, foreign_key="message.id")
    created_by: str | None = Field(default=None, max_length=200)  # "agent:3", "cli", "demo"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KbChunk(SQLModel, table=True):
    """A passage of an article: what the index searches. passage_id carries a hash of the
    passage's content, so an edit re-embeds only the passages that changed."""

    __tablename__ = "kb_chunk"

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    passage_id: str = Field(max_length=64, unique=True)
    position: int
    heading: str = Field(default="", max_length=300)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # The passage's embeddings (knowledge/index.py: its views, float16 bytes) and the model that
    # made them: a rebuilt index, or another hub process, reuses them instead of running the model.
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    vector_model: str | None = Field(default=None, max_length=200)


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

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    article_id: int = Field(foreign_key="kb_article.id", index=True)
    passage_id: str | None = Field(default=None, max_length=64)
    verdict: str = Field(max_length=16)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    created_at: datetime = Field(default_factory=utcnow)
    # For "used" / "not_helpful": the customer's question the verdict was about, and its embedding
    # (float16 bytes) with the model that made it. The suggestions learn from them
    # (knowledge/feedback.py); a privacy erase clears them.
    question: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    question_vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    vector_model: str | None = Field(default=None, max_length=200)
