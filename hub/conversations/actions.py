"""What agents do to a conversation besides answering it: change its status, priority or assignee
(with the side effects that belong to a change, in its transaction), and write internal notes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from hub.contract.errors import RejectedInput, StaleVersion
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations import mentions
from hub.conversations.queries import conversation_state, get_conversation, get_message, require_conversation
from hub.conversations.versions import bumped
from hub.csat import queue_survey
from hub.store.audit import audit
from hub.store.db import write_tx
from hub.store.models import Agent, Conversation, ConversationStatus, Direction, Message, Priority, utcnow

conversation_t = Conversation.__table__
message_t = Message.__table__
agent_t = Agent.__table__

AGENT_FIELDS = ("status", "priority", "assignee_id")


def update_conversation(
    engine: Engine, conversation_id: int, changes: dict[str, Any], actor: Principal, *, expected_version: int | None = None,
    survey: bool | None = None,
) -> dict[str, Any]:
    """Apply status / assignee_id / priority: only the keys given (the others stay as they are);
    unknown keys are the caller's bug, not silently ignored. Resolving a conversation queues its
    satisfaction survey in the same transaction.

    expected_version: the conversation's version the change was made on (what the agent saw).
    When it has another version now, nothing is written and StaleVersion carries the current
    state; the check is the UPDATE's own WHERE, so of two changes made on one version exactly one
    is written. Without it, each given field is written whatever changed meanwhile.

    survey: on a resolve, the agent's choice about the satisfaction survey: False skips it, True
    sends it (also when no agent replied), None sends it only when an agent replied
    (hub/csat/surveys.py survey_on_resolve says beforehand which it will be)."""
    unknown = set(changes) - set(AGENT_FIELDS)
    if unknown:
        raise RejectedInput(f"a conversation's {', '.join(sorted(unknown))} cannot be changed here; only {', '.join(AGENT_FIELDS)}")
    now = utcnow()
    with write_tx(engine) as conn:
        require_conversation(conn, conversation_id)
        values = _values(conn, changes, now)
        if values:
            stmt = update(conversation_t).where(conversation_t.c.id == conversation_id)
            if expected_version is not None:
                stmt = stmt.where(conversation_t.c.version == expected_version)
            written = conn.execute(
                stmt.values(**values, updated_at=now, version=bumped()).returning(conversation_t.c.version)
            ).first()
            if written is None:
                raise _stale(conn, conversation_id, expected_version)
            audit(conn, actor.actor, "conversation.update", f"conversation:{conversation_id}", version=written.version,
                  **{k: v for k, v in changes.items() if k in AGENT_FIELDS})
            _after_change(conn, conversation_id, values, now, survey)
    return get_conversation(engine, conversation_id)


def _values(conn, changes: dict[str, Any], now) -> dict[str, Any]:
    """The columns to write for `changes`, each checked; RejectedInput for a value that cannot be."""
    values: dict[str, Any] = {}
    if "status" in changes:
        status = changes["status"]
        if status not in ConversationStatus.__members__:
            raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "status", "choices": ", ".join(ConversationStatus.__members__)})
        if status == ConversationStatus.snoozed:
            raise RejectedInput(N_("snoozing needs a time: use snooze (until a time or a preset)"))
        values["status"] = status
        values["snoozed_until"] = None
        if status == ConversationStatus.resolved:
            values["resolved_at"] = now
        elif status in (ConversationStatus.open, ConversationStatus.pending):
            values["resolved_at"] = None
    if "priority" in changes:
        if changes["priority"] not in Priority.__members__:
            raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "priority", "choices": ", ".join(Priority.__members__)})
        values["priority"] = changes["priority"]
    if "assignee_id" in changes:
        assignee = changes["assignee_id"]
        if assignee is not None:
            ok = conn.execute(
                select(agent_t.c.id).where(agent_t.c.id == assignee, agent_t.c.active.is_(True))
            ).first()
            if ok is None:
                raise RejectedInput(N_("agent %(id)s does not exist or is inactive"), params={"id": assignee})
        values["assignee_id"] = assignee
    return values


def _after_change(conn, conversation_id: int, values: dict[str, Any], now, survey: bool | None = None) -> None:
    """What a written change sets off, in its transaction: so that it happens whichever door the
    change came through, or not at all when the change is rolled back."""
    if values.get("status") == ConversationStatus.resolved:
        queue_survey(conn, conversation_id, now=now, send=survey)  # one satisfaction survey per conversation


def _stale(conn, conversation_id: int, expected_version: int) -> StaleVersion:
    # Read in the writer's transaction: on PostgreSQL each statement sees what was committed
    # before it, so this is the state that made the UPDATE miss.
    current = conversation_state(conn, conversation_id)
    return StaleVersion(
        f"conversation {conversation_id} was changed after version {expected_version}, which this change was made on "
        f"(it is at version {current['version']} now), so nothing was changed. Look at its current state "
        f"(the error's detail) and make the change again if it still holds.",
        detail={"version": current["version"], "conversation": current},
    )


def add_note(engine: Engine, conversation_id: int, actor: Principal, text: str) -> dict[str, Any]:
    """An internal note: stored in the conversation, never sent to the customer, with the agents
    it @mentions (hub/conversations/mentions.py) in the same transaction."""
    if not text or not text.strip():
        raise RejectedInput(N_("a note needs text"))
    now = utcnow()
    with write_tx(engine) as conn:
        conv = require_conversation(conn, conversation_id)
        message_id = conn.execute(
            message_t.insert()
            .values(
                conversation_id=conv.id,
                direction=Direction.note,
                channel=conv.channel,
                author_agent_id=actor.id if actor.is_agent else None,
                text=text,
                sent_at=now,
                created_at=now,
                metadata={},
            )
            .returning(message_t.c.id)
        ).scalar_one()
        mentions.record_in(conn, message_id, text)
    return get_message(engine, message_id)
