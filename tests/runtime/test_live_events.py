"""Live events across processes (hub/runtime/live_events.py) on a real PostgreSQL: what one process
publishes, the others hear; a process does not hear itself; the inbox's broadcaster announces a
message once whether the notification or its poll reports it first. On SQLite nothing is sent."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.runtime.live_events import LiveEvents
from hub.store.db import is_sqlite
from hub.web.inbox.live import Broadcaster


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def _running(*events: LiveEvents) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(e.run()) for e in events]
    await _until(lambda: all(e.listening or not e.listen for e in events))
    return tasks


async def _stop(tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_sqlite_sends_nothing(engine):
    if not is_sqlite(engine):
        pytest.skip("PostgreSQL below")
    events = LiveEvents(engine)
    assert not events.enabled
    events.publish({"type": "msg", "message_id": 1})  # a no-op, not an error
    asyncio.run(events.run())  # returns at once


def test_what_one_process_publishes_the_others_hear(engine):
    if is_sqlite(engine):
        pytest.skip("one process on SQLite")

    async def scenario():
        web1, web2, worker = LiveEvents(engine), LiveEvents(engine), LiveEvents(engine, listen=False)
        heard1, heard2 = [], []
        web1.listeners.append(heard1.append)
        web2.listeners.append(heard2.append)
        tasks = await _running(web1, web2, worker)
        try:
            worker.publish({"type": "msg", "message_id": 7, "conversation_id": 3, "customer_id": 2})
            web1.publish({"type": "kb", "article_id": 4})
            await _until(lambda: len(heard2) == 2 and len(heard1) == 1)
            assert heard1 == [{"type": "msg", "message_id": 7, "conversation_id": 3, "customer_id": 2}]
            assert {e["type"] for e in heard2} == {"msg", "kb"}
            # Too large for a notification: dropped with a log line, nothing else breaks.
            web1.publish({"type": "msg", "blob": "x" * 9000})
            worker.publish({"type": "delivery"})
            await _until(lambda: len(heard1) == 2)
            assert heard1[-1] == {"type": "delivery"}
        finally:
            await _stop(tasks)

    asyncio.run(scenario())


def test_a_message_is_announced_once_by_notification_and_poll(engine):
    if is_sqlite(engine):
        pytest.skip("one process on SQLite")

    async def scenario():
        broadcaster = Broadcaster(engine)
        sub = broadcaster.subscribe(agent_id=1, conversation_id=None)
        event = {"type": "msg", "message_id": 41, "conversation_id": 5, "customer_id": 6}
        broadcaster.hear(dict(event))
        broadcaster.hear(dict(event))  # the same notification again, or the poll finding it
        broadcaster.hear({"type": "msg", "message_id": "41; DROP"})  # not an id: ignored
        broadcaster.hear({"type": "conv", "conversation_id": 5})
        got = []
        while not sub.queue.empty():
            got.append(sub.queue.get_nowait())
        assert got == [event, {"type": "conv", "conversation_id": 5}]

    asyncio.run(scenario())
