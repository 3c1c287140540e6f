"""A range of whole days asked for in a query string (?from=YYYY-MM-DD&to=YYYY-MM-DD): demand
and reports read it the same way."""

from __future__ import annotations

from datetime import date, timedelta

from hub.contract.errors import RejectedInput


def parse_day_range(raw_from: str | None, raw_to: str | None, *, today: date, default_days: int,
                    max_days: int) -> tuple[date, date]:
    """(start, end), both inclusive. Missing `to`: today; missing `from`: default_days up to `to`.
    RejectedInput for an unreadable date, from after to, or more than max_days."""

    def day(raw: str | None, name: str, default: date) -> date:
        if raw in (None, ""):
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise RejectedInput(f"{name} must be a date like 2026-05-03") from None

    end = day(raw_to, "to", today)
    start = day(raw_from, "from", end - timedelta(days=default_days - 1))
    if start > end:
        raise RejectedInput("from must not be after to")
    if (end - start).days >= max_days:
        raise RejectedInput(f"the range may cover at most {max_days} days")
    return start, end
