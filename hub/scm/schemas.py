"""Request and response shapes of the SCM routes (facts, drafts, escalations, demand)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field, model_validator

from hub.web.schemas import Strict


class FactOut(BaseModel):
    id: int
    message_id: int = Field(description="the customer's message the fact answers")
    kind: Literal["order", "stock"]
    subject: str = Field(description="the order reference or the product as asked")
    payload: Optional[Any] = Field(description="the back end's OrderStatus, or its StockLevels, as JSON; null on error")
    error: Optional[str] = Field(description="unknown_order, not_the_customers_order, unknown_product, backend_unavailable...")
    error_message: Optional[str]
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
    question_message_id: Optional[int]
    intent: Optional[str]
    confidence: Optional[float]
    created_at: datetime


class DeliveryStateOut(BaseModel):
    state: Literal["queued", "sending", "sent", "failed"]
    attempts: int
    last_error: Optional[str]
    next_attempt_at: Optional[datetime]
    sent_at: Optional[datetime] = None


class EscalationEventOut(BaseModel):
    id: int
    status: Optional[str]
    comment: Optional[str]
    external_reference: Optional[str]
    event_key: Optional[str]
    message_id: Optional[int] = Field(description="the system message in the conversation's timeline")
    actor: str
    created_at: datetime


class EscalationOut(BaseModel):
    id: int
    conversation_id: int
    reason: str
    status: Literal["queued", "sent", "acknowledged", "in_progress", "resolved", "failed"]
    target: Literal["webhook", "email", "backend"]
    external_reference: Optional[str]
    external_url: Optional[str]
    created_by: str
    last_error: Optional[str]
    created_at: datetime
    updated_at: datetime
    sent_at: Optional[datetime]
    resolved_at: Optional[datetime]
    delivery: Optional[DeliveryStateOut]
    events: list[EscalationEventOut]


class ConversationFacts(BaseModel):
    conversation_id: int
    intent: Optional[str]
    facts: list[FactOut]
    drafts: list[DraftOut]
    automatic_answers: list[AutomaticAnswerOut]
    escalations: list[EscalationOut]


class EscalationIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="what the back office should do, and why")
    target: Optional[Literal["webhook", "email", "backend"]] = Field(
        default=None, description="default: the configured one (SERVICEHUB_SCM__ESCALATION_TARGET)"
    )


class EscalationEventIn(Strict):
    status: Optional[Literal["acknowledged", "in_progress", "resolved"]] = None
    comment: Optional[str] = Field(default=None, max_length=10_000)
    external_reference: Optional[str] = Field(default=None, min_length=1, max_length=200, description="the back office's case number")
    event_id: Optional[str] = Field(
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
    product_name: Optional[str]
    asked: int = Field(description="stock questions about the product that day")
    unavailable: int = Field(description="of which it was not available (in the quantity asked)")
    available: int


class DemandPage(BaseModel):
    from_: str = Field(alias="from")
    to: str
    unmet: bool
    items: list[DemandRow]
