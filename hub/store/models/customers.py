"""Customers and how the hub knows them: the profile (name, segment, merges), its identities (an
email address, a Telegram user, a phone number) and the one-time codes that link a new identity to
a known customer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
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


class CustomerNote(SQLModel, table=True):
    """What an agent wrote down about the customer (not about one conversation): who, when, what."""

    __tablename__ = "customer_note"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    author: str = Field(max_length=200)  # the agent's name as it was when they wrote it
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class CustomerAttribute(SQLModel, table=True):
    """A key and a value an agent keeps on the customer ("plan: gold"); one value per key."""

    __tablename__ = "customer_attribute"
    __table_args__ = (UniqueConstraint("customer_id", "key", name="uq_customer_attribute_key"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    key: str = Field(max_length=64)
    value: str = Field(max_length=500)
    updated_by: str = Field(max_length=64)  # the actor, as in the audit log
    updated_at: datetime = Field(default_factory=utcnow)


class CustomerTag(SQLModel, table=True):
    """A tag on the customer ("wholesale", "vip"): stored folded to lower case, once per customer."""

    __tablename__ = "customer_tag"
    __table_args__ = (UniqueConstraint("customer_id", "tag", name="uq_customer_tag"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    tag: str = Field(max_length=64, index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


# What the SLA worker rereads each pass: customers changed since its watermark.
Index("ix_customer_updated", Customer.__table__.c.updated_at)
