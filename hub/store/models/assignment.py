"""Who takes new conversations: teams of agents and each agent's availability (the round robin's
order)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.store.models.base import utcnow


class Team(SQLModel, table=True):
    """A named group of agents: key customers can be routed to one (SlaSettings.key_customer_team)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("team_id", "agent_id", name="uq_team_member"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    agent_id: int = Field(foreign_key="agent.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class AgentAvailability(SQLModel, table=True):
    """Whether an agent takes new conversations (no row: available). last_assigned_at orders the
    round robin: the agent who got one longest ago is next."""

    __tablename__ = "agent_availability"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", unique=True)
    available: bool = True
    last_assigned_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
