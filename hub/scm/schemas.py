"""Request and response shapes of the SCM routes (facts, drafts, escalations, demand)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from hub.web.schemas import Strict


class FactOut(BaseModel):
    id: int
    message_id: int = Field(description="the customer's message the fact answers")
    kind: Literal["order", "stock"]
    subject: str = Field(description="the order reference or the product as asked")
    payload: Any | None = Field(description="the back end's OrderStatus, or its StockLevels, as JSON; null on error")
    error: str | None = Field(description="unknown_order, not_the_customers_order, unknown_product, backend_unavailable...")
    error_message: str | None
    disclosed: bool = Field(description="the customer was told (an automatic answer); agents always see the fact")
    created_at: datetime


class DraftOut(BaseModel):
    id: int
    message_id: int
    text: str = Field(description="send it (edited or not) with POST /api/v1/conversations/{id}/replies")
    language: str
    reason: str = Field(description="why it was not sent automatically: privacy, low_confidence, channel_policy...")
    created_at: datetime


class AutomaticAnswerOut(BaseModel):
    message_id: int = Field(description="the outbound message in the conversation")
    question_message_id: int | None
    intent: str | None
    confidence: float | None
    created_at: datetime


class DeliveryStateOut(BaseModel):
    state: Literal["queued", "sending", "sent", "failed"]
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None = None


class EscalationEventOut(BaseModel):
    id: int
    status: str | None
    comment: str | None
    external_reference: str | None
    event_key: str | None
    message_id: int | None = Field(description="the system message in the conversation's timeline")
    actor: str
    created_at: datetime


class EscalationOut(BaseModel):
    id: int
    conversation_id: int
    reason: str
    status: Literal["queued", "sent", "acknowledged", "in_progress", "resolved", "failed"]
    target: Literal["webhook", "email", "backend"]
    external_reference: str | None
    external_url: str | None
    created_by: str
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    resolved_at: datetime | None
    delivery: DeliveryStateOut | None
    events: list[EscalationEventOut]


class ConversationFacts(BaseModel):
    conversation_id: int
    intent: str | None
    facts: list[FactOut]
    drafts: list[DraftOut]
    automatic_answers: list[AutomaticAnswerOut]
    escalations: list[EscalationOut]


class EscalationIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="what the back office should do, and why")
    target: Literal["webhook", "email", "backend"] | None = Field(
        default=None, description="default: the configured one (SERVICEHUB_SCM__ESCALATION_TARGET)"
    )


class EscalationEventIn(Strict):
    status: Literal["acknowledged", "in_progress", "resolved"] | None = None
    comment: str | None = Field(default=None, max_length=10_000)
    external_reference: str | None = Field(default=None, min_length=1, max_length=200, description="the back office's case number")
    event_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="the back office's id for this event: a retried report with the same id is recorded once",
    )

    @model_validator(mode="after")
    def _says_something(self):
        if self.status is None and not (self.comment and self.comment.strip()) and self.external_reference is None:
            raise ValueError("give a status, a comment or an external_reference")
        return self


class DemandRow(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    sku: str
    product_name: str | None
    asked: int = Field(description="stock questions about the product that day")
    unavailable: int = Field(description="of which it was not available (in the quantity asked)")
    available: int


class DemandPage(BaseModel):
    from_: str = Field(alias="from")
    to: str
    unmet: bool
    items: list[DemandRow]
