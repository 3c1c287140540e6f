"""Canned responses (macros): texts admins keep for common answers, with placeholders filled in
when an agent inserts one: {{customer.name}}, {{agent.name}}, {{conversation.id}} and a few more.

Placeholders are replaced by plain text substitution, never evaluated: a macro is data typed by
an admin, not a template language. An unknown placeholder stays as written so its author sees it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from hub.contract.errors import Conflict, NotFound, RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.store.audit import audit
from hub.store.db import read_tx, write_tx
from hub.store.models import Macro, utcnow

macro_t = Macro.__table__
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*\}\}")
PLACEHOLDERS = (
    "customer.name", "customer.first_name", "agent.name", "agent.email", "conversation.id", "conversation.subject",
    "conversation.channel",
)
MAX_BODY = 20_000


def _check(name: str, body: str) -> tuple[str, str]:
    name, body = (name or "").strip(), (body or "").strip()
    if not name or len(name) > 100:
        raise RejectedInput(N_("a macro needs a name of 1 to 100 characters"))
    if not body or len(body) > MAX_BODY:
        raise RejectedInput(N_("a macro needs a text of 1 to %(num)s characters"), params={"num": MAX_BODY})
    return name, body


def create_macro(engine: Engine, name: str, body: str, who: Principal) -> int:
    name, body = _check(name, body)
    now = utcnow()
    try:
        with write_tx(engine) as conn:
            macro_id = conn.execute(
                macro_t.insert().values(name=name, body=body, created_by=who.actor, created_at=now, updated_at=now)
                .returning(macro_t.c.id)
            ).scalar_one()
            audit(conn, who.actor, "macro.create", f"macro:{macro_id}", name=name)
    except IntegrityError:
        raise Conflict(N_("a macro named %(name)s exists already"), params={"name": repr(name)}) from None
    return macro_id


def update_macro(engine: Engine, macro_id: int, name: str, body: str, who: Principal) -> None:
    name, body = _check(name, body)
    try:
        with write_tx(engine) as conn:
            done = conn.execute(
                update(macro_t).where(macro_t.c.id == macro_id).values(name=name, body=body, updated_at=utcnow())
            ).rowcount
            if not done:
                raise NotFound(N_("macro %(id)s does not exist"), params={"id": macro_id})
            audit(conn, who.actor, "macro.update", f"macro:{macro_id}", name=name)
    except IntegrityError:
        raise Conflict(N_("a macro named %(name)s exists already"), params={"name": repr(name)}) from None


def delete_macro(engine: Engine, macro_id: int, who: Principal) -> None:
    with write_tx(engine) as conn:
        if not conn.execute(delete(macro_t).where(macro_t.c.id == macro_id)).rowcount:
            raise NotFound(N_("macro %(id)s does not exist"), params={"id": macro_id})
        audit(conn, who.actor, "macro.delete", f"macro:{macro_id}")


def list_macros(engine: Engine) -> list[dict[str, Any]]:
    with read_tx(engine) as conn:
        rows = conn.execute(select(macro_t).order_by(macro_t.c.name)).all()
    return [{"id": r.id, "name": r.name, "body": r.body} for r in rows]


def get_macro(engine: Engine, macro_id: int) -> dict[str, Any]:
    with read_tx(engine) as conn:
        r = conn.execute(select(macro_t).where(macro_t.c.id == macro_id)).first()
    if r is None:
        raise NotFound(N_("macro %(id)s does not exist"), params={"id": macro_id})
    return {"id": r.id, "name": r.name, "body": r.body}


def render(body: str, values: dict[str, str | int | None]) -> str:
    """Fill the placeholders in; values missing (a customer without a name) become empty."""

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key not in PLACEHOLDERS:
            return match.group(0)
        value = values.get(key)
        return "" if value is None else str(value)

    return PLACEHOLDER.sub(fill, body)


def values_for(conversation: dict, agent_name: str, agent_email: str) -> dict[str, str | int | None]:
    """The placeholder values for a conversation (as hub.conversations.get_conversation gives it)."""
    customer = (conversation.get("customer") or {}).get("name") or ""
    return {
        "customer.name": customer or "there",
        "customer.first_name": customer.split()[0] if customer.split() else "there",
        "agent.name": agent_name,
        "agent.email": agent_email,
        "conversation.id": conversation.get("id"),
        "conversation.subject": conversation.get("subject") or "",
        "conversation.channel": conversation.get("channel"),
    }
