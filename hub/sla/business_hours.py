"""Business-hours arithmetic: SLA targets count only the time a support team is at work.

A calendar is a time zone, weekly opening hours (several intervals a day allowed) and holidays.
Opening hours are wall-clock times in the calendar's zone, but durations are real elapsed time:
each interval is turned into two aware instants and measured in UTC, so a 09:00-17:00 day is 8
business hours on a DST switch day too (the switch happens at night), and "00:00-24:00" on that
day is 23 or 25 hours, as it really is. Plain functions, no I/O, every instant timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hub.contract import clock

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar that is never open would make add_business_time search forever.
MAX_SEARCH_DAYS = 3 * 366


class CalendarError(ValueError):
    """A calendar definition that cannot be used (bad zone, bad interval, never open)."""


@dataclass(frozen=True)
class Calendar:
    tz: ZoneInfo
    # weekday (0 = Monday) -> sorted, non-overlapping (start, end) wall-clock intervals; end may be
    # None for "until midnight" (24:00).
    week: dict[int, tuple[tuple[time, time | None], ...]]
    holidays: frozenset[date] = field(default_factory=frozenset)
    # A country code for the `holidays` package (e.g. "DE", "US"), optionally "DE-BY" for a subdivision.
    holiday_country: str | None = None

    def is_holiday(self, day: date) -> bool:
        if day in self.holidays:
            return True
        return self.holiday_country is not None and day in _country_holidays(self.holiday_country, day.year)


def _country_holidays(code: str, year: int):
    import holidays as holidays_lib  # optional: only calendars that name a country need it

    country, _, subdiv = code.partition("-")
    try:
        return holidays_lib.country_holidays(country, subdiv=subdiv or None, years=year)
    except NotImplementedError as exc:
        raise CalendarError(f"unknown holiday country {code!r}") from exc


def _parse_time(text: str) -> time | None:
    text = text.strip()
    if text == "24:00":
        return None
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise CalendarError(f"not a time of day: {text!r} (HH:MM)") from exc


def parse_interval(text: str) -> tuple[time, time | None]:
    """"09:00-17:00" -> (09:00, 17:00); "13:00-24:00" ends at midnight."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise CalendarError(f"not an interval: {text!r} (HH:MM-HH:MM)")
    start, end = _parse_time(start_text), _parse_time(end_text)
    if start is None or (end is not None and end <= start):
        raise CalendarError(f"interval {text!r} must end after it starts, within the day")
    return start, end


def make_calendar(
    timezone_name: str,
    hours: dict[str, list[str]],
    holidays: list[date | str] = (),
    holiday_country: str | None = None,
) -> Calendar:
    """Build a calendar from settings-shaped values: hours {"mon": ["09:00-12:00", "13:00-17:00"]}."""
    try:
        tz = ZoneInfo(timezone_name)
    except Exception as exc:
        raise CalendarError(f"unknown time zone {timezone_name!r}") from exc
    week: dict[int, tuple[tuple[time, time | None], ...]] = {}
    for name, intervals in hours.items():
        key = name.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise CalendarError(f"unknown weekday {name!r}")
        parsed = sorted((parse_interval(i) for i in intervals), key=lambda iv: iv[0])
        for (_, end), (start, _) in pairwise(parsed):
            if end is None or end > start:
                raise CalendarError(f"opening hours overlap on {name}")
        if parsed:
            week[WEEKDAYS.index(key)] = tuple(parsed)
    if not week:
        raise CalendarError("a calendar needs opening hours on at least one weekday")
    days = frozenset(d if isinstance(d, date) else date.fromisoformat(d) for d in holidays)
    calendar = Calendar(tz=tz, week=week, holidays=days, holiday_country=holiday_country or None)
    if calendar.holiday_country:
        calendar.is_holiday(clock.today())  # fail now on an unknown country, not inside the worker
    return calendar


def always_open(timezone_name: str = "UTC") -> Calendar:
    """24/7: business time is wall time."""
    return make_calendar(timezone_name, {d: ["00:00-24:00"] for d in WEEKDAYS})


def _require_aware(when: datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("business-hours arithmetic needs timezone-aware datetimes")


def _instant(day: date, at: time | None, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a day in a zone (None = the next midnight). A time
    that does not exist (inside a spring-forward gap) is moved forward by the gap, as the clocks
    were; an ambiguous one (fall-back) is its first occurrence."""
    if at is None:
        day, at = day + timedelta(days=1), time(0)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _open_intervals(day: date, calendar: Calendar) -> list[tuple[datetime, datetime]]:
    """The day's opening hours as UTC instants; none on weekends without hours and holidays."""
    intervals = calendar.week.get(day.weekday())
    if not intervals or calendar.is_holiday(day):
        return []
    return [(_instant(day, start, calendar.tz), _instant(day, end, calendar.tz)) for start, end in intervals]


def add_business_time(start: datetime, duration: timedelta, calendar: Calendar) -> datetime:
    """The instant when `duration` of business time has passed after `start` (UTC). A start
    outside opening hours counts from the next opening; a zero duration outside hours is the next
    opening too (the clock has not started)."""
    _require_aware(start)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    cursor = start.astimezone(UTC)
    remaining = duration
    day = cursor.astimezone(calendar.tz).date() - timedelta(days=1)  # an interval of the day before may run past midnight
    for _ in range(MAX_SEARCH_DAYS):
        for opens, closes in _open_intervals(day, calendar):
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            cursor = closes
        day += timedelta(days=1)
    raise CalendarError(f"no business time in the {MAX_SEARCH_DAYS} days after {start.isoformat()}")


def business_time_between(a: datetime, b: datetime, calendar: Calendar) -> timedelta:
    """Business time from a to b; negative when b is before a."""
    _require_aware(a)
    _require_aware(b)
    if b < a:
        return -business_time_between(b, a, calendar)
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    total = timedelta(0)
    day = a.astimezone(calendar.tz).date() - timedelta(days=1)
    last = b.astimezone(calendar.tz).date()
    while day <= last:
        for opens, closes in _open_intervals(day, calendar):
            overlap = min(closes, b) - max(opens, a)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return total
