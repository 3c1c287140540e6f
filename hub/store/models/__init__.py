"""The hub's tables (SQLModel), one module per capability that owns them. Alembic migrations in
hub/store/migrations follow them; importing this package registers every table on
SQLModel.metadata, which the migrations and their check compare against.

This is the package's public face: `from hub.store.models import Conversation` works for every
table, enum and `utcnow`, whichever module defines it.
"""

from sqlmodel import SQLModel

from hub.store.models.assignment import AgentAvailability, Team, TeamMember
from hub.store.models.auth import Agent, AgentRole, AgentSession, ApiToken, AuditLog, LoginLock, TokenRole
from hub.store.models.base import utcnow
from hub.store.models.conversations import (
    Attachment,
    Conversation,
    ConversationStatus,
    ConversationTag,
    Direction,
    Macro,
    Mention,
    Message,
    Priority,
    ReadMark,
)
from hub.store.models.csat import Csat, CsatSurvey
from hub.store.models.customers import (
    Customer,
    CustomerAttribute,
    CustomerNote,
    CustomerTag,
    Identity,
    IdentityKind,
    LinkCode,
    Segment,
)
from hub.store.models.ingest import ChannelState, InboundSpool, SpoolStatus
from hub.store.models.kb import KbArticle, KbChunk, KbFeedback, KbFeedbackVerdict
from hub.store.models.notifications import Notification
from hub.store.models.outbox import Outbox, OutboxStatus
from hub.store.models.runtime import Lease
from hub.store.models.scm import (
    DemandCount,
    Escalation,
    EscalationEvent,
    EscalationStatus,
    ReplyDraft,
    RoutingAttempt,
    ScmFact,
)
from hub.store.models.segments import CustomerValue
from hub.store.models.sla import SlaClock, SlaEvent

__all__ = [
    "Agent",
    "AgentAvailability",
    "AgentRole",
    "AgentSession",
    "ApiToken",
    "Attachment",
    "AuditLog",
    "ChannelState",
    "Conversation",
    "ConversationStatus",
    "Csat",
    "CsatSurvey",
    "Customer",
    "CustomerAttribute",
    "CustomerNote",
    "CustomerTag",
    "CustomerValue",
    "DemandCount",
    "Direction",
    "Escalation",
    "EscalationEvent",
    "EscalationStatus",
    "Identity",
    "IdentityKind",
    "InboundSpool",
    "KbArticle",
    "KbChunk",
    "KbFeedback",
    "KbFeedbackVerdict",
    "Lease",
    "LinkCode",
    "LoginLock",
    "ConversationTag",
    "Macro",
    "Mention",
    "Message",
    "Notification",
    "Outbox",
    "OutboxStatus",
    "Priority",
    "ReadMark",
    "ReplyDraft",
    "RoutingAttempt",
    "SQLModel",
    "ScmFact",
    "Segment",
    "SlaClock",
    "SlaEvent",
    "SpoolStatus",
    "Team",
    "TeamMember",
    "TokenRole",
    "utcnow",
]
