"""Who may use the hub and what they did: agents and their roles, sign-in sessions, API tokens
(hashed), failed sign-ins that lock an account, and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class AgentRole(StrEnum):
    agent = "agent"
    admin = "admin"


class TokenRole(StrEnum):
    integration = "integration"
    backoffice = "backoffice"


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str | None = Field(default=None, max_length=200)
    password_hash: str = Field(max_length=200)
    role: str = Field(default=AgentRole.agent, max_length=16)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # The interface language the agent reads (a code of hub.contract.i18n.LANGUAGES); null until the
    # first sign-in sets it from the browser's Accept-Language.
    language: str | None = Field(default=None, max_length=16)


class AgentSession(SQLModel, table=True):
    __tablename__ = "agent_session"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    last_seen_at: datetime | None = None  # null: not used since it was created


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class LoginLock(SQLModel, table=True):
    """Failed sign-ins per account (normalised email), and the lock they led to: after too many
    failures in a row the account refuses sign-in for a while, whatever the client address."""

    __tablename__ = "login_lock"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    failures: int = 0
    first_failure_at: datetime = Field(default_factory=utcnow)
    locked_until: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=200)  # "agent:3", "token:7", "cli"
    action: str = Field(max_length=64)
    target: str = Field(max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
