"""Events that cross the hub's processes through PostgreSQL LISTEN/NOTIFY: a message stored by one
process reaches the agents' live streams of every other within milliseconds, an article edited
through one process reaches every process's knowledge-base index.

Events are small JSON dicts of ids (never content: a notification is seen by every session of
the database that listens, and its payload is limited to 8000 bytes). Each process publishes what
it does and hears what the others do (its own events come back from PostgreSQL too and are
dropped by their origin). Delivery is best effort: a notification sent while a listener was
reconnecting is lost, so after a reconnection listeners get {"type": "resync"} and consumers keep
a slow poll of the store as a safety net (hub/web/inbox/live.py).

On SQLite the hub is one process: publish() and run() do nothing, and consumers poll as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable

from sqlalchemy import Engine

from hub.store.db import is_sqlite

log = logging.getLogger(__name__)

CHANNEL = "servicehub_live"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses more than 8000
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 15.0


class LiveEvents:
    """One per process. publish() from the event loop; listeners are called on the event loop with
    each event another process published (and {"type": "resync"} after a gap); they must be quick
    and never raise."""

    def __init__(self, engine: Engine, *, listen: bool = True):
        self.enabled = not is_sqlite(engine)
        self.listen = listen and self.enabled
        self.origin = secrets.token_hex(6)
        self.listeners: list[Callable[[dict], None]] = []
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False) if self.enabled else ""
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(10_000)
        self.published = 0
        self.heard = 0
        self.listening = False  # LISTEN is in place (the readiness of what this process hears)

    def publish(self, event: dict) -> None:
        """Send an event to the other processes (sent in the background, batched; dropped when
        larger than a notification may be)."""
        if not self.enabled:
            return
        payload = json.dumps({**event, "origin": self.origin}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            log.error("live event too large to cross processes (%d bytes): %s", len(payload), payload[:200])
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._outgoing.put_nowait(payload)

    async def run(self) -> None:
        """Send and (when listening) receive until cancelled; reconnects on its own."""
        if not self.enabled:
            return
        tasks = [asyncio.create_task(self._send(), name="live-events-send")]
        if self.listen:
            tasks.append(asyncio.create_task(self._receive(), name="live-events-listen"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self) -> None:
        import psycopg

        delay = RECONNECT_FIRST
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    delay = RECONNECT_FIRST
                    while True:
                        batch = [await self._outgoing.get()]
                        while not self._outgoing.empty() and len(batch) < 500:
                            batch.append(self._outgoing.get_nowait())
                        # One round trip for a burst: a statement per message would cost the
                        # ingest path a round trip each.
                        await conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, batch))
                        self.published += len(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store is away: what was queued waits
                log.warning("live events: sending failed (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX, delay * 2)

    async def _receive(self) -> None:
        import psycopg

        delay = RECONNECT_FIRST
        connected_before = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    delay = RECONNECT_FIRST
                    if connected_before:
                        self._deliver({"type": "resync"})  # what was sent meanwhile is lost
                    connected_before = True
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.listening = False
                log.warning("live events: listening failed (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX, delay * 2)

    def _heard(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if not isinstance(event, dict) or event.pop("origin", None) == self.origin or not isinstance(event.get("type"), str):
            return
        self.heard += 1
        self._deliver(event)

    def _deliver(self, event: dict) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the others
                log.exception("live event listener failed")

