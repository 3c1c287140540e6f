"""Running background workers: one way to start, stop and watch them.

A worker is a coroutine function that runs until cancelled (the outbox, the spool, SLA timers,
segments, routing, the demand push, the message indexer, the inbox's live poll). Started, it runs
in its own task named after it; a crash is logged with its traceback and its name, and it is
started again after a pause that doubles up to a ceiling (a bug or an outage in one worker must
neither go unnoticed nor take the others or the web app down). Stopping cancels it and waits
until it has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """What to run in the background: `run` is awaited until it returns or is cancelled.
    restart: after a crash, run it again after `first_pause` seconds, doubling up to `max_pause`."""

    name: str
    run: Callable[[], Awaitable[None]]
    restart: bool = True
    first_pause: float = 1.0
    max_pause: float = 60.0


class RunningWorker:
    """A started Worker: its task, and how many times it crashed."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.crashes = 0
        self.task = asyncio.create_task(self._supervise(), name=worker.name)

    @property
    def name(self) -> str:
        return self.worker.name

    async def _supervise(self) -> None:
        worker = self.worker
        pause = worker.first_pause
        while True:
            try:
                await worker.run()
                return  # done on its own (a worker with nothing left to do)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                if not worker.restart:
                    log.exception("background worker %r crashed; it is not restarted", worker.name)
                    return
                log.exception("background worker %r crashed; restarting it in %.0f s", worker.name, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, worker.max_pause)

    async def stop(self) -> None:
        """Cancel it and wait until it has stopped (its own cleanup included)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def start(worker: Worker) -> RunningWorker:
    """Run `worker` in the background (in the running event loop) until stopped."""
    log.debug("starting background worker %r", worker.name)
    return RunningWorker(worker)


@contextlib.asynccontextmanager
async def running(*workers: Worker):
    """Run the workers for the duration of the block; stopped in reverse order when it ends."""
    started: list[RunningWorker] = []
    try:
        for worker in workers:
            started.append(start(worker))
        yield started
    finally:
        for one in reversed(started):
            await one.stop()
