"""Who is acting: an agent signed in to the inbox or the API, or an API token (an integration).
Every capability's actions take one, to check the role and to name the actor in the audit log
(hub/store/audit.py); hub/auth/ makes them from sessions and tokens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: an agent (by session or bearer session token) or an API token."""

    kind: str  # "agent" | "token"
    id: int
    role: str
    name: str
    csrf_token: str | None = None  # set for cookie sessions: unsafe requests must echo it
    language: str | None = None  # an agent's interface language (hub.contract.i18n); None: not chosen yet

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"
