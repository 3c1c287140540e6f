"""Admission of asyncio tasks to a limited resource, first come first served: each waits until its
request fits, and one that does not fit yet lets later ones that do go first (a call of a channel
at its share of the parser processes never holds up another channel's).

A subclass says what fits and keeps the count; take() and give() are its callers' whole interface.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class Admission:
    def __init__(self) -> None:
        self._waiting: deque[tuple[Any, asyncio.Future]] = deque()

    def fits(self, request) -> bool:
        raise NotImplementedError

    def _add(self, request) -> None:
        raise NotImplementedError

    def _remove(self, request) -> None:
        raise NotImplementedError

    async def take(self, request) -> None:
        """Until `request` is let in; then give() it back when done."""
        if self.fits(request):
            self._add(request)
            return
        granted = asyncio.get_running_loop().create_future()
        entry = (request, granted)
        self._waiting.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.give(request)  # let in just as the waiter was cancelled
            elif entry in self._waiting:
                self._waiting.remove(entry)
            raise

    def give(self, request) -> None:
        self._remove(request)
        for entry in list(self._waiting):
            request, granted = entry
            if granted.done():
                self._waiting.remove(entry)
            elif self.fits(request):
                self._waiting.remove(entry)
                self._add(request)
                granted.set_result(None)
