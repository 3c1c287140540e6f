"""Request and response shapes of the REST API; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Id = Field(ge=1, le=2_147_483_647)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SenderIn(Strict):
    address: str = Field(min_length=1, max_length=320, description="email, Telegram user id, phone (+E.164) or web id")
    name: str | None = Field(default=None, max_length=200)
    kind: Literal["email", "telegram", "phone", "web"] | None = Field(
        default=None, description="the address kind; by default fixed by the channel or recognised"
    )


class MessageIn(Strict):
    channel: str = Field(min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=500, description="unique per channel: replays are deduplicated")
    sender: SenderIn
    subject: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=1_000_000)
    html: str | None = Field(default=None, max_length=2_000_000)
    sent_at: AwareDatetime | None = None
    in_reply_to: list[str] = Field(default_factory=list, max_length=50)
    conversation_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_content(self):
        if not ((self.text and self.text.strip()) or (self.html and self.html.strip())):
            raise ValueError("a message needs text or html")
        return self


class IngestOut(BaseModel):
    customer_id: int
    conversation_id: int
    message_id: int
    created: bool


class ConversationPatch(Strict):
    """Only the fields sent are changed. With `version` (or an If-Match header) the change applies
    only to that version of the conversation: if it changed meanwhile, nothing is written and the
    answer is 409 with the current state. Without either, each field sent is written as it is."""

    status: Literal["open", "pending", "resolved", "closed"] | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    assignee_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="null unassigns")
    version: int | None = Field(
        default=None, ge=1, le=2_147_483_647,
        description="the conversation's version this change was made on (its `version`, or the number in its ETag)",
    )
    survey: bool | None = Field(
        default=None,
        description="with status resolved: whether to send the customer a satisfaction survey. false: never; true: send it "
                    "(also when no agent replied); absent or null: send it only when an agent replied in the conversation. "
                    "GET /api/v1/conversations/{id}/survey says beforehand what a resolve would do. Ignored without a resolve.",
    )

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.model_fields_set - {"version", "survey"}:
            raise ValueError("give at least one of status, priority, assignee_id")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if "priority" in self.model_fields_set and self.priority is None:
            raise ValueError("priority cannot be null")
        return self


class AttachmentIn(Strict):
    filename: str = Field(min_length=1, max_length=300)
    content_type: str = Field(default="application/octet-stream", min_length=1, max_length=200)
    data_base64: str = Field(description="the file, base64-encoded (the request size limit applies)")


class ReplyIn(Strict):
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=10)
    channel: Literal["email", "telegram"] | None = Field(
        default=None, description="answer on this channel, to the customer's address there; default: the conversation's way back"
    )


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=100_000)


class MergeIn(Strict):
    customer_id: int = Field(ge=1, le=2_147_483_647, description="the customer merged into this one")


class MoveIn(Strict):
    conversation_id: int = Field(ge=1, le=2_147_483_647, description="the conversation (of the same customer) the message moves to")


class ConversationMergeIn(Strict):
    source_id: int = Field(ge=1, le=2_147_483_647, description="the conversation (of the same customer) merged into this one")


class ContinuityOut(BaseModel):
    event_id: int = Field(description="the timeline event in the target conversation; undo it with POST /api/v1/events/{id}/undo")
    message_ids: list[int] = Field(description="the messages moved (by an undo: moved back)")
    source_id: int
    target_id: int


class LoginIn(Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: Any | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class CustomerRef(BaseModel):
    id: int
    name: str | None
    segment: str = Field(description="general, potential or key")


class ConversationOut(BaseModel):
    id: int
    customer: CustomerRef
    channel: str
    subject: str | None
    status: str
    priority: str
    assignee_id: int | None
    intent: str | None
    sla_due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    last_message_at: datetime
    created_at: datetime
    version: int = Field(description="counts the changes of status, priority, assignee and the rest agents see; "
                                     "send it back with a change (PATCH `version` or If-Match) so it never overwrites a newer one")
    snoozed_until: datetime | None = Field(default=None, description="while the status is snoozed: when it opens again by itself")


class TagIn(Strict):
    tag: str = Field(min_length=1, max_length=50, description="a short label; stored folded (case, spaces)")


class TagsOut(BaseModel):
    conversation_id: int
    tags: list[str]


class KnownTag(BaseModel):
    tag: str
    conversations: int


class KnownTags(BaseModel):
    tags: list[KnownTag]


class SnoozeIn(Strict):
    """Until a time (with its zone), or a preset counted from now in UTC (later_today: 3 hours,
    tomorrow: 09:00 tomorrow, next_week: Monday 09:00)."""

    until: AwareDatetime | None = None
    preset: Literal["later_today", "tomorrow", "next_week"] | None = None
    version: int | None = Field(default=None, ge=1, le=2_147_483_647, description="as for PATCH: the version this was decided on")

    @model_validator(mode="after")
    def _one(self):
        if (self.until is None) == (self.preset is None):
            raise ValueError("give either until or preset")
        return self


class BulkIn(Strict):
    """One change to several conversations; each goes through the same checks and side effects as
    the change made to one, and succeeds or fails on its own."""

    ids: list[int] = Field(min_length=1, max_length=200, description="conversation ids (at most 200)")
    action: Literal["assign", "resolve", "tag", "untag", "snooze"]
    assignee_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="assign: the agent; null unassigns")
    tag: str | None = Field(default=None, min_length=1, max_length=50, description="tag / untag: the tag")
    until: AwareDatetime | None = Field(default=None, description="snooze: until when")
    preset: Literal["later_today", "tomorrow", "next_week"] | None = Field(default=None, description="snooze: a preset instead")

    @model_validator(mode="after")
    def _complete(self):
        if any(i < 1 or i > 2_147_483_647 for i in self.ids):
            raise ValueError("ids are conversation ids (1 to 2147483647)")
        if self.action in ("tag", "untag") and not self.tag:
            raise ValueError(f"{self.action} needs a tag")
        if self.action == "snooze" and (self.until is None) == (self.preset is None):
            raise ValueError("snooze needs either until or preset")
        return self


class BulkResult(BaseModel):
    id: int
    ok: bool
    error: ErrorBody | None = None


class BulkOut(BaseModel):
    done: int = Field(description="how many conversations were changed")
    results: list[BulkResult]


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class SenderOut(BaseModel):
    kind: str | None
    address: str | None
    name: str | None


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class DeliveryOut(BaseModel):
    state: Literal["queued", "sending", "sent", "failed"]
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


class MessageOut(BaseModel):
    id: int
    direction: Literal["inbound", "outbound", "note", "system"]
    channel: str
    external_id: str | None
    sender: SenderOut | None
    author_agent_id: int | None
    subject: str | None
    text: str
    html: str | None
    sent_at: datetime
    created_at: datetime
    attachments: list[AttachmentOut]
    delivery: DeliveryOut | None = Field(description="outbound only: where its delivery stands")
    automatic: bool = Field(default=False, description="sent by the hub itself (an answer from the back end's facts)")


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class StaleVersionDetail(BaseModel):
    version: int = Field(description="the conversation's version now")
    conversation: ConversationOut = Field(description="its current state")


class StaleVersionBody(BaseModel):
    code: Literal["stale_version"]
    message: str
    detail: StaleVersionDetail


class StaleVersionOut(BaseModel):
    """409: the change was made on an older version; nothing was written."""

    error: StaleVersionBody



class IdentityOut(BaseModel):
    id: int
    kind: str
    address: str
    display_name: str | None
    verified: bool
    linked_by_code: bool = Field(default=False, description="a link code attached it: an agent can remove it")


class LinkCodeUser(BaseModel):
    identity_id: int
    kind: str
    address: str
    removed: bool = Field(description="an agent has since taken this identity off the customer")


class LinkCodeInfo(BaseModel):
    """A code issued to the customer (the code itself is never shown again)."""

    id: int
    created_at: datetime
    created_by: str | None = Field(description="who issued it: agent:<id> or token:<id>")
    expires_at: datetime
    used_at: datetime | None
    used_by: LinkCodeUser | None
    status: Literal["open", "used", "expired"]


class CustomerConversation(BaseModel):
    id: int
    channel: str
    subject: str | None
    status: str
    last_message_at: datetime


class CustomerOut(BaseModel):
    id: int
    name: str | None
    segment: str
    segment_locked: bool = Field(default=False, description="set by an admin: recomputation keeps it")
    value: dict[str, Any] | None = Field(
        default=None, description="order value and count, contacts over the segment window (hub/segments/value.py); null before the first run"
    )
    merged_into: int | None
    created_at: datetime
    identities: list[IdentityOut]
    conversations: list[CustomerConversation]
    link_codes: list[LinkCodeInfo] = Field(default_factory=list, description="codes issued to link another channel, newest first")


class AgentOut(BaseModel):
    kind: Literal["agent", "token"]
    id: int
    role: str
    name: str


class LoginOut(BaseModel):
    token: str = Field(description="usable as a bearer token; also set as the session cookie")
    csrf_token: str = Field(description="send as X-CSRF-Token on unsafe requests authenticated by the cookie")
    agent: AgentOut


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


class Probe(BaseModel):
    """/livez and /readyz: what this process is and whether it takes work."""

    status: Literal["ok", "draining", "unavailable"]
    role: Literal["all", "web", "worker"]
    leases: list[str] = Field(default=[], description="the elected loops this process runs")
    database: str | None = Field(default=None, description="'ok', or the kind of error the store answered with")


class LinkCodeOut(BaseModel):
    code: str = Field(description="send it back from the other channel (Telegram: /start CODE)")
    expires_at: datetime


class RejectedItem(BaseModel):
    id: int
    channel: str
    key: str
    status: str = Field(description="rejected; pending once retried")
    reason: str | None = Field(description="why it was rejected (kept after a retry until it succeeds)")
    attempts: int
    budget_seconds: float | None = Field(description="its own time budget, if an admin gave it one; null: the hub's default")
    raw_sha256: str | None
    received_at: datetime
    detail: dict[str, Any] = Field(description="what the channel kept with it (headers, envelope...)")


class RetryIn(Strict):
    budget_seconds: float | None = Field(
        default=None, gt=0, le=3600,
        description="a larger time budget for this item (a legitimate mail the default budget was too short for)",
    )


class RejectedPage(BaseModel):
    items: list[RejectedItem]
