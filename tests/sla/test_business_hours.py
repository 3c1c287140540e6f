"""Business-hours arithmetic with real time zones: weekends, holidays, several intervals a day,
starts outside hours, and DST switches (Europe/Berlin, America/New_York) next to a zone without
DST (Asia/Shanghai). Every expected instant is written out by hand in local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.sla.business_hours import CalendarError, add_business_time, always_open, business_time_between, make_calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
BERLIN, NEW_YORK, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def nine_to_five(zone: str, **kw):
    return make_calendar(zone, {d: ["09:00-17:00"] for d in WEEKDAYS}, **kw)


def local(tz, *args) -> datetime:
    return datetime(*args, tzinfo=tz)


def test_within_one_day_and_across_the_night():
    cal = nine_to_five("Europe/Berlin")
    start = local(BERLIN, 2026, 11, 24, 10, 0)  # a Tuesday
    assert add_business_time(start, 2 * H, cal) == local(BERLIN, 2026, 11, 24, 12, 0)
    assert add_business_time(start, 7 * H, cal) == local(BERLIN, 2026, 11, 24, 17, 0)
    assert add_business_time(start, 8 * H, cal) == local(BERLIN, 2026, 11, 25, 10, 0)


def test_weekend_and_start_outside_hours():
    cal = nine_to_five("Europe/Berlin")
    friday_late = local(BERLIN, 2026, 11, 27, 16, 0)
    assert add_business_time(friday_late, 4 * H, cal) == local(BERLIN, 2026, 11, 30, 12, 0)  # Monday
    saturday = local(BERLIN, 2026, 11, 28, 11, 0)
    assert add_business_time(saturday, 1 * H, cal) == local(BERLIN, 2026, 11, 30, 10, 0)
    early = local(BERLIN, 2026, 11, 24, 6, 30)
    assert add_business_time(early, 30 * timedelta(minutes=1), cal) == local(BERLIN, 2026, 11, 24, 9, 30)
    # Zero business time outside hours: the clock starts at the next opening.
    assert add_business_time(saturday, timedelta(0), cal) == local(BERLIN, 2026, 11, 30, 9, 0)
    assert business_time_between(friday_late, local(BERLIN, 2026, 11, 30, 12, 0), cal) == 4 * H


def test_several_intervals_a_day():
    cal = make_calendar("Asia/Shanghai", {d: ["09:00-12:00", "13:00-18:00"] for d in WEEKDAYS})
    start = local(SHANGHAI, 2026, 11, 24, 11, 0)
    assert add_business_time(start, 2 * H, cal) == local(SHANGHAI, 2026, 11, 24, 14, 0)  # lunch skipped
    assert business_time_between(local(SHANGHAI, 2026, 11, 24, 8, 0), local(SHANGHAI, 2026, 11, 24, 20, 0), cal) == 8 * H


def test_holidays_by_date_and_by_country():
    cal = nine_to_five("Europe/Berlin", holidays=["2026-11-25"])
    start = local(BERLIN, 2026, 11, 24, 16, 0)
    assert add_business_time(start, 2 * H, cal) == local(BERLIN, 2026, 11, 26, 10, 0)
    pytest.importorskip("holidays")
    german = nine_to_five("Europe/Berlin", holiday_country="DE")
    # 2026-12-24 is a Thursday; 25 and 26 December are public holidays, 26th a Saturday anyway.
    christmas_eve = local(BERLIN, 2026, 12, 24, 16, 0)
    assert add_business_time(christmas_eve, 2 * H, german) == local(BERLIN, 2026, 12, 28, 10, 0)
    us = nine_to_five("America/New_York", holiday_country="US")
    wednesday = local(NEW_YORK, 2026, 11, 25, 16, 0)  # Thanksgiving is Thursday 26 November 2026
    assert add_business_time(wednesday, 2 * H, us) == local(NEW_YORK, 2026, 11, 27, 10, 0)


@pytest.mark.parametrize("tz, switch_day", [
    (BERLIN, date(2026, 3, 30)),  # Monday after the spring switch on Sunday 29 March 2026
    (NEW_YORK, date(2026, 3, 9)),  # Monday after 8 March 2026
])
def test_a_business_day_is_eight_hours_across_a_spring_switch(tz, switch_day):
    cal = make_calendar(tz.key, {d: ["09:00-17:00"] for d in ("sun", *WEEKDAYS)})
    sunday = switch_day - timedelta(days=1)  # the switch day itself is open in this calendar
    start = datetime.combine(sunday, datetime.min.time(), tzinfo=tz).replace(hour=9)
    assert add_business_time(start, 8 * H, cal) == local(tz, sunday.year, sunday.month, sunday.day, 17, 0)
    assert business_time_between(start, start + 48 * H, cal) == 16 * H
    friday = local(tz, sunday.year, sunday.month, sunday.day, 12, 0) - timedelta(days=2)
    # From Friday noon: 5h Friday... Saturday closed, 8h Sunday (switch day), then 3h Monday.
    assert add_business_time(friday, 16 * H, cal) == datetime.combine(switch_day, datetime.min.time(), tzinfo=tz).replace(hour=12)


def test_autumn_switch_in_new_york_and_wall_clock_24h_days():
    cal = nine_to_five("America/New_York")
    friday = local(NEW_YORK, 2026, 10, 30, 15, 0)  # clocks go back on Sunday 1 November 2026
    assert add_business_time(friday, 4 * H, cal) == local(NEW_YORK, 2026, 11, 2, 11, 0)
    around = always_open("America/New_York")
    sat = local(NEW_YORK, 2026, 10, 31, 12, 0)
    sun = local(NEW_YORK, 2026, 11, 1, 12, 0)
    assert business_time_between(sat, sun, around) == 25 * H  # the night had an extra hour
    assert add_business_time(sat, 25 * H, around) == sun


def test_no_dst_in_shanghai_and_results_are_utc():
    cal = nine_to_five("Asia/Shanghai")
    start = local(SHANGHAI, 2026, 3, 27, 16, 0)  # Friday
    due = add_business_time(start, 2 * H, cal)
    assert due == local(SHANGHAI, 2026, 3, 30, 10, 0)
    assert due.tzinfo == UTC
    assert business_time_between(due, start, cal) == -2 * H


def test_bad_calendars_are_refused():
    with pytest.raises(CalendarError):
        make_calendar("Mars/Olympus", {"mon": ["09:00-17:00"]})
    with pytest.raises(CalendarError):
        make_calendar("UTC", {"mon": ["17:00-09:00"]})
    with pytest.raises(CalendarError):
        make_calendar("UTC", {"mon": ["09:00-12:00", "11:00-13:00"]})
    with pytest.raises(CalendarError):
        make_calendar("UTC", {})
    with pytest.raises(ValueError):
        add_business_time(datetime(2026, 1, 1), H, always_open())
