"""Fixture dates relative to hub.contract.clock, so that no test depends on the day it runs.

The back ends' answers in tests/payloads/ were written as the shop looked on CAPTURED_ON: an order
promised a week before is late, a purchase order due four days after is incoming. The fakes
(tests/fake_*.py) serve them moved by `offset()`, so that CAPTURED_ON is today by the clock, and
the tests name the dates as written in the payloads, moved the same way: `moved(date(2026, 11, 16))`
is "a week ago", whatever the day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from hub.contract import clock

CAPTURED_ON = date(2026, 11, 23)  # a Monday

# The date and time shapes the payloads use: ISO dates, ISO datetimes with a zone, and Frappe's and
# Odoo's "YYYY-MM-DD HH:MM:SS[.ffffff]" (naive, UTC). Names such as SAL-ORD-2026-01001 never match.
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})((?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?)")

D = TypeVar("D", date, datetime)


def offset() -> timedelta:
    """How far the payloads move: from CAPTURED_ON to today by the clock (whole days)."""
    return clock.today() - CAPTURED_ON


def moved(when: D) -> D:
    """A date or datetime as written in the payloads, moved to the clock's today."""
    return when + offset()


def moved_text(text: str) -> str:
    """An ISO date ("2026-11-16") as written in the payloads, moved, as ISO again."""
    return moved(date.fromisoformat(text)).isoformat()


def move_dates(payload: Any, by: timedelta | None = None) -> Any:
    """A copy of a JSON payload with every string that is a date or datetime moved by `by` whole
    days (default `offset()`); the time of day and the zone are kept."""
    days = (offset() if by is None else by).days
    if days == 0:
        return payload

    def move(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str) and (m := _DATED.fullmatch(value)):
            try:
                day = date.fromisoformat(m.group(1))
            except ValueError:
                return value
            return (day + timedelta(days=days)).isoformat() + m.group(2)
        return value

    return move(payload)

