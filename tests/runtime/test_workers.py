"""The one way background workers run (hub/runtime/workers.py): a crash is logged with the worker's
name and does not stop the others; a crashed worker starts again after its pause; stopping cancels
and waits."""

from __future__ import annotations

import asyncio
import logging

from hub.runtime.workers import Worker, running, start


async def test_a_crash_is_logged_with_its_name_and_the_others_keep_running(caplog):
    ticks = []

    async def steady():
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def broken():
        raise RuntimeError("the back end said no")

    with caplog.at_level(logging.ERROR, logger="hub.runtime.workers"):
        async with running(Worker("steady", steady), Worker("broken-worker", broken, restart=False)) as started:
            await asyncio.sleep(0.1)
            crashed = started[1]
            assert crashed.task.done() and crashed.crashes == 1
            before = len(ticks)
            await asyncio.sleep(0.05)
            assert len(ticks) > before  # the other worker goes on
    record = next(r for r in caplog.records if "broken-worker" in r.getMessage())
    assert record.exc_info is not None and "the back end said no" in str(record.exc_info[1])
    assert started[0].task.cancelled()  # stopped with the block


async def test_a_crashed_worker_is_restarted_after_a_growing_pause(caplog):
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise ValueError(f"crash {len(runs)}")
        await asyncio.Event().wait()  # then it runs until stopped

    with caplog.at_level(logging.ERROR, logger="hub.runtime.workers"):
        one = start(Worker("flaky", flaky, first_pause=0.01, max_pause=0.02))
        for _ in range(200):
            if len(runs) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(runs) == 3 and one.crashes == 2 and not one.task.done()
        await one.stop()
    assert one.task.cancelled()
    assert sum("'flaky' crashed; restarting" in r.getMessage() for r in caplog.records) == 2


async def test_stop_cancels_and_waits_for_the_workers_own_cleanup():
    cleaned = asyncio.Event()

    async def tidy():
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.01)  # its cleanup takes a moment; stop waits for it
            cleaned.set()

    one = start(Worker("tidy", tidy))
    await asyncio.sleep(0.01)
    await one.stop()
    assert cleaned.is_set() and one.task.cancelled()
