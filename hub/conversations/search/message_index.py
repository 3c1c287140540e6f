"""The SQLite message index kept up to date (hub/conversations/search/message_words.py says what it
holds and how searches read it). PostgreSQL keeps its own index up to date: everything here is a
no-op there."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.engine import Engine

from hub.conversations.search.message_words import (
    SEARCH_MESSAGE,
    SEARCH_MESSAGE_STALE,
    SEARCH_MESSAGE_STATE,
    has_message_index,
    index_text,
)
from hub.runtime.pacing import Pacer
from hub.store.db import is_sqlite, write_tx
from hub.store.workqueue import PollingWorker

INDEX_BATCH = 2000


def index_messages(engine: Engine, *, batch: int = INDEX_BATCH) -> int:
    """Add up to `batch` messages above the watermark, and up to `batch` stale ones, to the index
    in one write transaction; how many. A no-op (0) on PostgreSQL and without the index."""
    if not is_sqlite(engine):
        return 0
    with write_tx(engine) as conn:
        if not has_message_index(conn):
            return 0
        raw = conn.connection.dbapi_connection
        (watermark,) = raw.execute(f"SELECT indexed_to FROM {SEARCH_MESSAGE_STATE}").fetchone()
        rows = raw.execute(
            "SELECT id, text FROM message WHERE id > ? ORDER BY id LIMIT ?", (watermark, batch)
        ).fetchall()
        stale = raw.execute(
            f"SELECT s.message_id, m.text FROM {SEARCH_MESSAGE_STALE} s JOIN message m ON m.id = s.message_id LIMIT ?",
            (batch,),
        ).fetchall()
        raw.executemany(
            f"INSERT INTO {SEARCH_MESSAGE}(rowid, text) VALUES (?, ?)",
            [(ident, index_text(text)) for ident, text in rows + stale if text],
        )
        if rows:
            raw.execute(f"UPDATE {SEARCH_MESSAGE_STATE} SET indexed_to = ?", (rows[-1][0],))
        if stale:
            raw.executemany(f"DELETE FROM {SEARCH_MESSAGE_STALE} WHERE message_id = ?", [(s[0],) for s in stale])
        # A stale row whose message is gone has nothing to add again.
        raw.execute(f"DELETE FROM {SEARCH_MESSAGE_STALE} WHERE message_id NOT IN (SELECT id FROM message)")
    return len(rows) + len(stale)


def index_all_messages(engine: Engine) -> int:
    """Bring the index up to date now (bulk loads, the privacy erase, tests)."""
    total = 0
    while done := index_messages(engine, batch=20_000):
        total += done
    return total


class MessageIndexer(PollingWorker):
    """Keeps the SQLite message index up to date in the background: a batch at a time, straight on
    while there is a backlog, pausing after each batch while ingest is busy (hub/runtime/pacing.py)."""

    poll_seconds = 1.0

    def __init__(self, engine: Engine, *, pacer: Pacer | None = None, batch: int = INDEX_BATCH):
        super().__init__()
        self.engine = engine
        self.pacer = pacer
        self.batch = batch

    async def run_once(self) -> int:
        started = time.monotonic()
        done = await asyncio.to_thread(index_messages, self.engine, batch=self.batch)
        if done and self.pacer is not None:
            pause = self.pacer.pause_after(started, time.monotonic())
            if pause > 0:
                await asyncio.sleep(pause)
        return done
