"""Snooze: a conversation put away until a time. Its status is 'snoozed' (so it leaves the open
views and shows in the Snoozed view) with `snoozed_until`; when that time comes the snooze worker
(hub/conversations/routes.py starts it, one process at a time) opens it again at the top of the
list, and the live stream says so ("snooze_back", for the assignee's notification). A customer
writing in wakes it earlier (hub/ingest). Times come from hub.contract.clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from hub.contract import clock
from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.contract.principal import Principal
from hub.conversations.actions import _stale
from hub.conversations.queries import conversation_t, get_conversation, require_conversation
from hub.conversations.versions import bumped
from hub.notifications import notify_snooze_back
from hub.store.audit import audit
from hub.store.db import write_tx
from hub.store.models import ConversationStatus
from hub.store.workqueue import PollingWorker

MAX_SNOOZE = timedelta(days=366)
WAKE_BATCH = 200
# The presets the list offers, in UTC for a form without script; the page's script computes the
# same ones in the agent's own time zone and sends the instant.
PRESETS = {"later_today": "Later today", "tomorrow": "Tomorrow morning", "next_week": "Next week"}
MORNING = time(9, 0)


def preset_time(name: str, now: datetime) -> datetime:
    """When a preset ends, from now (UTC): later today is three hours on, tomorrow morning 09:00
    tomorrow, next week Monday 09:00."""
    if name == "later_today":
        return now + timedelta(hours=3)
    if name == "tomorrow":
        return datetime.combine(now.date() + timedelta(days=1), MORNING, tzinfo=now.tzinfo)
    if name == "next_week":
        return datetime.combine(now.date() + timedelta(days=7 - now.weekday()), MORNING, tzinfo=now.tzinfo)
    raise RejectedInput(N_("%(name)s must be one of: %(choices)s"), params={"name": "snooze preset", "choices": ", ".join(PRESETS)})


def snooze_until(raw: str | None, preset: str | None, now: datetime) -> datetime:
    """The end of a snooze from a form or a request: an ISO time with its zone, or a preset name."""
    if raw:
        try:
            until = datetime.fromisoformat(str(raw)[:64].strip().replace("Z", "+00:00"))
        except ValueError:
            raise RejectedInput(N_("until must be a time such as 2026-12-05T09:00:00+01:00")) from None
        if until.tzinfo is None:
            raise RejectedInput(N_("until needs its time zone (such as +01:00 or Z)"))
        return until
    if preset:
        return preset_time(preset, now)
    raise RejectedInput(N_("say until when: a time or a preset (later_today, tomorrow, next_week)"))


def snooze_in(conn, conversation_id: int, until: datetime, actor: Principal, *, now: datetime,
              expected_version: int | None = None) -> int:
    """Snooze on the caller's transaction; the conversation's new version."""
    if until <= now:
        raise RejectedInput(N_("a snooze ends in the future"))
    if until - now > MAX_SNOOZE:
        raise RejectedInput(N_("a snooze lasts at most a year"))
    require_conversation(conn, conversation_id)
    stmt = update(conversation_t).where(conversation_t.c.id == conversation_id)
    if expected_version is not None:
        stmt = stmt.where(conversation_t.c.version == expected_version)
    written = conn.execute(
        stmt.values(status=ConversationStatus.snoozed, snoozed_until=until, resolved_at=None, updated_at=now, version=bumped())
        .returning(conversation_t.c.version)
    ).first()
    if written is None:
        raise _stale(conn, conversation_id, expected_version)
    audit(conn, actor.actor, "conversation.snooze", f"conversation:{conversation_id}", until=until.isoformat(),
          version=written.version)
    return written.version


def snooze(engine: Engine, conversation_id: int, until: datetime, actor: Principal, *,
           expected_version: int | None = None) -> dict[str, Any]:
    """Put the conversation away until `until` (in the future, within MAX_SNOOZE); it as
    get_conversation shows it. StaleVersion as update_conversation raises it."""
    with write_tx(engine) as conn:
        snooze_in(conn, conversation_id, until, actor, now=clock.now(), expected_version=expected_version)
    return get_conversation(engine, conversation_id)


def wake_due(engine: Engine, *, now: datetime, batch: int = WAKE_BATCH) -> list[dict[str, Any]]:
    """Open again the snoozed conversations whose time has come (up to `batch`), at the top of the
    activity order; [{"conversation_id", "assignee_id"}] of those woken. The UPDATE names the
    status it expects, so one an agent changed meanwhile is left as the agent made it."""
    woken = []
    with write_tx(engine) as conn:
        due = conn.execute(
            select(conversation_t.c.id)
            .where(conversation_t.c.snoozed_until <= now, conversation_t.c.status == ConversationStatus.snoozed)
            .order_by(conversation_t.c.snoozed_until, conversation_t.c.id)
            .limit(batch)
        ).scalars().all()
        for cid in due:
            row = conn.execute(
                update(conversation_t)
                .where(conversation_t.c.id == cid, conversation_t.c.status == ConversationStatus.snoozed)
                .values(status=ConversationStatus.open, snoozed_until=None, last_message_at=now, updated_at=now,
                        version=bumped())
                .returning(conversation_t.c.id, conversation_t.c.assignee_id)
            ).first()
            if row is not None:
                audit(conn, "system", "conversation.snooze_back", f"conversation:{cid}")
                notify_snooze_back(conn, row.id, row.assignee_id, until=now)  # the assignee's bell, once
                woken.append({"conversation_id": row.id, "assignee_id": row.assignee_id})
    return woken


class SnoozeWorker(PollingWorker):
    """Wakes snoozed conversations when their time comes; `on_wake` is told of each (the live
    stream, the other listeners of a change)."""

    poll_seconds = 15.0

    def __init__(self, engine: Engine, *, on_wake: Callable[[dict[str, Any]], None] | None = None,
                 poll_seconds: float | None = None):
        super().__init__()
        self.engine = engine
        self.on_wake = on_wake
        if poll_seconds is not None:
            self.poll_seconds = poll_seconds

    async def run_once(self) -> int:
        woken = await asyncio.to_thread(wake_due, self.engine, now=clock.now())
        for one in woken:
            if self.on_wake is not None:
                self.on_wake(one)
        return len(woken)
