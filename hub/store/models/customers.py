"""Customers and how the hub knows them: the profile (name, segment, merges), its identities (an
email address, a Telegram user, a phone number) and the one-time codes that link a new identity to
a known customer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.contract.addresses import IdentityKind as IdentityKind  # the store's column values; re-exported
from hub.store.models.base import utcnow


class Segment(StrEnum):
    general = "general"
    potential = "potential"
    key = "key"


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=200)
    segment: str = Field(default=Segment.general, max_length=16)
    # Set by hand (an admin, the demo's key customer): recomputation leaves the segment alone.
    segment_locked: bool = False
    merged_into: int | None = Field(default=None, foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "address", name="uq_identity_kind_address"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    kind: str = Field(max_length=16)
    address: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=200)
    verified: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class LinkCode(SQLModel, table=True):
    """A one-time code the hub issued to a known customer (in an email, say); a customer who sends
    it from another channel (Telegram /start CODE) proves both identities are theirs."""

    __tablename__ = "link_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    used_by_identity_id: int | None = Field(default=None, foreign_key="identity.id")
    created_by: str | None = Field(default=None, max_length=64)  # the actor who issued it


# What the SLA worker rereads each pass: customers changed since its watermark.
Index("ix_customer_updated", Customer.__table__.c.updated_at)
