"""Background work that gives way to ingest during a burst.

Background workers (SLA timers and assignment, customer value) share the process and, on SQLite,
the one write lock with ingest. While messages arrive faster than a threshold, a worker keeps its
share of the time under a limit by pausing after each batch; once the burst is over it works at
full speed again. The app's meter is fed by an ingest listener (hub/web/app.py); the routing
worker keeps its own, fed by its wake-ups, with the routing_busy_* settings.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# Arrivals and work are counted over this many seconds.
WINDOW = 2.0


class IngestMeter:
    """How fast messages are being stored in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._arrivals: deque[float] = deque()

    def arrived(self, *_ignored) -> None:
        """An ingest listener: one more message stored."""
        now = self._clock()
        self._arrivals.append(now)
        self._forget(now)

    def per_second(self) -> float:
        self._forget(self._clock())
        return len(self._arrivals) / WINDOW

    def _forget(self, now: float) -> None:
        while self._arrivals and self._arrivals[0] < now - WINDOW:
            self._arrivals.popleft()


class Pacer:
    """pause_after(started, ended): how long a worker sleeps after a batch so that, while ingest is
    busy (above `busy_above_per_second`), its batches take at most `share` of the time."""

    def __init__(self, meter: IngestMeter | None, *, share: float = 0.05, busy_above_per_second: float = 50.0,
                 clock: Callable[[], float] = time.monotonic):
        self.meter = meter
        self.share = share
        self.busy_above_per_second = busy_above_per_second
        self.clock = clock
        self._batches: deque[tuple[float, float]] = deque()  # (ended at, seconds)
        self._stopping = threading.Event()

    def pause_after(self, started: float, ended: float) -> float:
        self._batches.append((ended, ended - started))
        while self._batches and self._batches[0][0] < ended - WINDOW:
            self._batches.popleft()
        if self.meter is None or self.share >= 1.0 or self.meter.per_second() <= self.busy_above_per_second:
            return 0.0
        excess = sum(seconds for _, seconds in self._batches) - self.share * WINDOW
        return excess / self.share if excess > 0 else 0.0

    def after_batch(self, started: float) -> None:
        """For work in a thread: sleep off this batch's excess (blocking). Raises Stopped once
        stop() was called, at once if it is called during the pause: a worker shutting down in a
        burst must not sleep off seconds of pauses first (the process waits for its threads)."""
        pause = self.pause_after(started, self.clock())
        if pause > 0:
            self._stopping.wait(pause)
        if self._stopping.is_set():
            raise Stopped

    def stop(self) -> None:
        """The worker is stopping: the work in its thread ends at its next batch."""
        self._stopping.set()


class Stopped(Exception):
    """The paced work was stopped between two batches; what it committed stays, the rest is for
    the next run."""
