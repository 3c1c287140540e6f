"""What agents set for themselves: the language of their inbox."""

from __future__ import annotations

from sqlalchemy import Engine, update

from hub.contract import i18n
from hub.contract.errors import RejectedInput
from hub.store.db import write_tx
from hub.store.models import Agent

agent_t = Agent.__table__


def set_language(engine: Engine, agent_id: int, language: str) -> str:
    """Make `language` (a code of hub.contract.i18n.LANGUAGES) the agent's; RejectedInput for any
    other value. Returns the code stored."""
    code = i18n.normalise(language)
    if code is None or code != (language or "").strip().lower():
        raise RejectedInput(f"language must be one of {', '.join(i18n.LANGUAGES)}")
    with write_tx(engine) as conn:
        conn.execute(update(agent_t).where(agent_t.c.id == agent_id).values(language=code))
    return code
