"""The time budget of one piece of work: the spool gives each item one, so that an item that takes
too long (a hostile mail, a file server that never answers) is stopped and set aside instead of
holding a worker slot forever.

Only the item's own work is charged. While it waits for something shared (a free parser process,
the store's group-committing writer), the clock stops: under a burst, an ordinary mail queued
behind a hundred others must not run out of time before its turn came.

    async with Budget(30.0) as budget:      # asyncio.timeout semantics: TimeoutError when over
        ...
        with paused():                      # anywhere below, in the same task (or its children)
            await shared_resource()
    budget.exceeded                         # True when it was the budget that stopped the work
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar

_CURRENT: ContextVar[Budget | None] = ContextVar("budget", default=None)


class Budget:
    """An asyncio.timeout(seconds) whose clock can be paused (see paused())."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._timeout: asyncio.Timeout | None = None
        self._token = None
        self._pauses = 0
        self._left = 0.0

    async def __aenter__(self) -> Budget:
        self._timeout = asyncio.timeout(self.seconds)
        await self._timeout.__aenter__()
        self._token = _CURRENT.set(self)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        _CURRENT.reset(self._token)
        return await self._timeout.__aexit__(exc_type, exc, tb)

    @property
    def exceeded(self) -> bool:
        """The work was stopped because its time ran out (not by another timeout inside it)."""
        return self._timeout is not None and self._timeout.expired()

    def _reschedule(self, when: float | None) -> None:
        try:
            self._timeout.reschedule(when)
        except RuntimeError:  # already expiring or left: nothing to move
            pass

    def _pause(self) -> None:
        self._pauses += 1
        if self._pauses == 1 and self._timeout is not None:
            when = self._timeout.when()
            if when is not None:
                self._left = when - asyncio.get_running_loop().time()
                self._reschedule(None)

    def _resume(self) -> None:
        self._pauses -= 1
        if self._pauses == 0 and self._timeout is not None:
            self._reschedule(asyncio.get_running_loop().time() + max(0.0, self._left))


@contextlib.contextmanager
def paused():
    """Time spent inside is not charged to the budget of the work this task is doing (if any).
    For waits on shared resources only, never for the work itself."""
    budget = _CURRENT.get()
    if budget is None:
        yield
        return
    budget._pause()
    try:
        yield
    finally:
        budget._resume()
