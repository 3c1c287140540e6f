"""The demo's times, whatever day it is seeded: its messages came in minutes to days before, never
after, so the list's waiting times differ from row to row (not all "now")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub.contract import clock
from hub.conversations.inbox import InboxQuery, list_inbox
from hub.demo.seed import ADMIN_EMAIL, seed
from hub.store.models import Agent, Conversation, Message

BASE = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)  # just after midnight: "earlier today" is yesterday too


@pytest.mark.parametrize("at", [BASE, BASE + timedelta(days=400, hours=14)], ids=["a-day", "400-days-later"])
def test_the_demos_rows_wait_for_varied_times_and_nothing_is_in_the_future(engine, tmp_path, at):
    with clock.use(clock.FixedClock(at)):
        seed(engine, tmp_path / "data")
    msg_t, conv_t = Message.__table__, Conversation.__table__
    with engine.connect() as conn:
        latest = [conn.execute(select(func.max(column))).scalar()
                  for column in (msg_t.c.created_at, msg_t.c.sent_at, conv_t.c.created_at, conv_t.c.last_message_at)]
        admin = conn.execute(select(Agent.__table__.c.id).where(Agent.__table__.c.email == ADMIN_EMAIL)).scalar()
        oldest_demo = conn.execute(select(func.min(msg_t.c.created_at)).where(msg_t.c.external_id.like("<demo-%"))).scalar()
    for when in latest:
        assert (when if when.tzinfo else when.replace(tzinfo=UTC)) <= at
    assert (oldest_demo if oldest_demo.tzinfo else oldest_demo.replace(tzinfo=UTC)) <= at - timedelta(days=1)

    later = at + timedelta(minutes=1)
    with clock.use(clock.FixedClock(later)):
        rows = list_inbox(engine, admin, InboxQuery(view="open", limit=100), now=later)["items"]
    waits = [r["waiting_seconds"] for r in rows if r["waiting_seconds"] is not None]
    assert len(waits) >= 4
    assert len(set(waits)) >= 4, waits  # minutes, hours, a day: not all the same
    assert max(waits) >= 3600 and min(waits) >= 60  # none reads "now"
