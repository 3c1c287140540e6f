"""The one clock the hub, its channels and its back-end adapters ask for the time.

Everything that asks "what time / what day is it" (late orders, answer wording, SLA timers,
reports' default ranges, demo data, session expiry) calls `now()` or `today()` here instead of
`datetime.now()`, `date.today()` or `time.time()`, so that a test, the demo or a replay can pin
or move time for all of them at once with `use(FixedClock(...))`. Durations measured on the
machine (timeouts, pacing, latency) keep using `time.monotonic()`: they never depend on the day.

Like hub.contract.messages, this module is part of the contract: channels and adapters may import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant as an aware UTC datetime."""


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved: for tests, demos and replays."""

    def __init__(self, at: datetime):
        self._at = _aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move forward by delta (or by timedelta(**units)); returns the new time."""
        self._at += delta if delta is not None else timedelta(**units)
        return self._at


_current: Clock = SystemClock()


def now() -> datetime:
    """The current instant (aware, UTC) of the installed clock."""
    return _current.now()


def today(tz: tzinfo = UTC) -> date:
    """Today's date in tz (UTC by default) by the installed clock."""
    return _current.now().astimezone(tz).date()


def timestamp() -> float:
    """Seconds since the epoch by the installed clock (for wall-clock stamps such as signed
    tokens; measure durations with time.monotonic())."""
    return _current.now().timestamp()


def current() -> Clock:
    return _current


def install(clock: Clock) -> Clock:
    """Make clock the one everything asks; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Install clock for the duration of a with block."""
    previous = install(clock)
    try:
        yield clock
    finally:
        install(previous)


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
