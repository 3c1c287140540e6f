"""Small durable state kept by name: where a channel resumes after a restart (an IMAP account's
UIDVALIDITY and last UID, Telegram's update offset) and the SLA loop's watermark. One row per
(owner, name) in channel_state; the value is a small JSON object."""

from __future__ import annotations

from sqlalchemy import Engine, select, update

from hub.store.db import read_tx, write_tx
from hub.store.models import ChannelState, utcnow
from hub.store.sql import insert_ignoring_conflict


def load_state(engine: Engine, channel: str, name: str) -> dict | None:
    """The value saved under (channel, name), or None."""
    t = ChannelState.__table__
    with read_tx(engine) as conn:
        return conn.execute(select(t.c.value).where(t.c.channel == channel, t.c.name == name)).scalar()


def save_state(engine: Engine, channel: str, name: str, value: dict) -> None:
    """Saves (or replaces) the value under (channel, name)."""
    t = ChannelState.__table__
    now = utcnow()
    with write_tx(engine) as conn:
        if insert_ignoring_conflict(conn, t, {"channel": channel, "name": name, "value": value, "updated_at": now}) is None:
            conn.execute(update(t).where(t.c.channel == channel, t.c.name == name).values(value=value, updated_at=now))
