"""What admins do to agents and API tokens from the inbox's admin pages: list them, change an
agent's role, deactivate or reactivate an agent, revoke a token. Creating agents and tokens and
setting passwords are hub.auth's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Agent, AgentRole, AgentSession, ApiToken, utcnow

agent_t = Agent.__table__
token_t = ApiToken.__table__
session_t = AgentSession.__table__


def list_agents(engine: Engine) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        rows = conn.execute(select(agent_t.c.id, agent_t.c.email, agent_t.c.name, agent_t.c.role, agent_t.c.active)
                            .order_by(agent_t.c.email)).all()
    return [dict(r._mapping) for r in rows]


def _admins_left(conn, without: int) -> int:
    return len(conn.execute(select(agent_t.c.id).where(
        agent_t.c.role == AgentRole.admin, agent_t.c.active.is_(True), agent_t.c.id != without)).all())


def set_role(engine: Engine, agent_id: int, role: str, who: Principal) -> None:
    if role not in AgentRole.__members__:
        raise RejectedInput(f"role must be one of: {', '.join(AgentRole.__members__)}")
    with write_tx(engine) as conn:
        row = conn.execute(select(agent_t.c.role).where(agent_t.c.id == agent_id)).first()
        if row is None:
            raise NotFound(N_("agent %(id)s does not exist"), params={"id": agent_id})
        if row.role == AgentRole.admin and role != AgentRole.admin and not _admins_left(conn, agent_id):
            raise Conflict(N_("this is the last active admin; make another agent admin first"))
        conn.execute(update(agent_t).where(agent_t.c.id == agent_id).values(role=role))
        audit(conn, who.actor, "agent.role", f"agent:{agent_id}", role=role)


def set_active(engine: Engine, agent_id: int, active: bool, who: Principal) -> None:
    """Deactivating ends the agent's sessions: they cannot sign in until reactivated."""
    with write_tx(engine) as conn:
        row = conn.execute(select(agent_t.c.role).where(agent_t.c.id == agent_id)).first()
        if row is None:
            raise NotFound(N_("agent %(id)s does not exist"), params={"id": agent_id})
        if not active and row.role == AgentRole.admin and not _admins_left(conn, agent_id):
            raise Conflict(N_("this is the last active admin; make another agent admin first"))
        conn.execute(update(agent_t).where(agent_t.c.id == agent_id).values(active=active))
        if not active:
            conn.execute(session_t.delete().where(session_t.c.agent_id == agent_id))
        audit(conn, who.actor, "agent.active", f"agent:{agent_id}", active=active)


def agent_email(engine: Engine, agent_id: int) -> str:
    with read_tx(engine) as conn:
        email = conn.execute(select(agent_t.c.email).where(agent_t.c.id == agent_id)).scalar()
    if email is None:
        raise NotFound(N_("agent %(id)s does not exist"), params={"id": agent_id})
    return email


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        rows = conn.execute(select(token_t.c.id, token_t.c.name, token_t.c.role, token_t.c.created_at,
                                   token_t.c.last_used_at, token_t.c.revoked_at).order_by(token_t.c.id.desc())).all()
    return [dict(r._mapping) for r in rows]


def revoke_token(engine: Engine, token_id: int, who: Principal) -> None:
    """Revoked at once in the store; web workers that cached it stop accepting it within their
    cache lifetime (hub.auth.Authenticator, 10 s)."""
    with write_tx(engine) as conn:
        row = conn.execute(select(token_t.c.revoked_at).where(token_t.c.id == token_id)).first()
        if row is None:
            raise NotFound(N_("token %(id)s does not exist"), params={"id": token_id})
        if row.revoked_at is None:
            conn.execute(update(token_t).where(token_t.c.id == token_id).values(revoked_at=utcnow()))
            audit(conn, who.actor, "token.revoke", f"token:{token_id}")


def display_name(engine: Engine, agent_id: int) -> str:
    """What colleagues see: the agent's name, else their email."""
    with read_tx(engine) as conn:
        row = conn.execute(select(agent_t.c.name, agent_t.c.email).where(agent_t.c.id == agent_id)).first()
    if row is None:
        raise NotFound(N_("agent %(id)s does not exist"), params={"id": agent_id})
    return row.name or row.email
