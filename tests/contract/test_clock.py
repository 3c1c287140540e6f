"""hub.contract.clock: the one clock the hub asks for the time, how tests pin and move it, and that the code
asking "what day is it" follows it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from adapters.base import OrderStatus
from channels.webform import token as form_token
from hub.contract import clock
from hub.reports import queries as reports
from hub.scm import wording as answers
from hub.store.models import utcnow

NEW_YEARS_EVE = datetime(2027, 12, 31, 23, 30, tzinfo=UTC)


def test_the_system_clock_is_aware_utc_and_the_default():
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert isinstance(clock.current(), clock.SystemClock)
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_a_fixed_clock_stands_still_until_moved():
    fixed = clock.FixedClock(datetime(2028, 2, 29, 23, 59, 30))  # naive: read as UTC
    assert fixed.now() == datetime(2028, 2, 29, 23, 59, 30, tzinfo=UTC) == fixed.now()
    assert fixed.advance(seconds=45) == datetime(2028, 3, 1, 0, 0, 15, tzinfo=UTC)
    assert fixed.advance(timedelta(days=1)) == fixed.now() == datetime(2028, 3, 2, 0, 0, 15, tzinfo=UTC)
    fixed.set(datetime(2027, 3, 28, 3, 0, tzinfo=ZoneInfo("Europe/Berlin")))  # an aware time is kept as UTC
    assert fixed.now() == datetime(2027, 3, 28, 1, 0, tzinfo=UTC) and fixed.now().tzinfo == UTC


def test_use_installs_a_clock_for_a_block_and_restores_the_previous_one():
    system = clock.current()
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)) as outer:
        assert clock.now() == NEW_YEARS_EVE and clock.current() is outer
        with clock.use(clock.FixedClock(datetime(2000, 1, 1, tzinfo=UTC))):
            assert clock.today() == date(2000, 1, 1)
        assert clock.current() is outer
        with pytest.raises(RuntimeError), clock.use(clock.FixedClock(datetime(2001, 1, 1, tzinfo=UTC))):
            raise RuntimeError("a failing test")
        assert clock.current() is outer
    assert clock.current() is system


def test_install_returns_the_clock_it_replaces():
    fixed = clock.FixedClock(NEW_YEARS_EVE)
    previous = clock.install(fixed)
    try:
        assert clock.current() is fixed
    finally:
        assert clock.install(previous) is fixed
    assert clock.current() is previous


def test_today_and_timestamp_follow_the_installed_clock():
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)):
        assert clock.today() == date(2027, 12, 31)  # UTC by default
        assert clock.today(ZoneInfo("Asia/Tokyo")) == date(2028, 1, 1)
        assert clock.today(timezone(timedelta(hours=-10))) == date(2027, 12, 31)
        assert clock.timestamp() == NEW_YEARS_EVE.timestamp()


def test_the_frozen_clock_fixture_pins_the_test_at_its_start(frozen_clock):
    start = clock.now()
    assert clock.now() == start and clock.current() is frozen_clock
    frozen_clock.advance(hours=25)
    assert clock.today() == (start + timedelta(hours=25)).date()


# --- the code that asks what time or day it is, asks the clock ------------------------------------

def test_store_timestamps_follow_the_clock():
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)):
        assert utcnow() == NEW_YEARS_EVE


def test_an_order_is_late_by_the_clocks_day():
    order = OrderStatus("A1", "shipped", promised_date=date(2028, 1, 1))
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)) as fixed:
        assert not order.late
        fixed.advance(hours=1)  # 00:30 on the promised day: due today, not late yet
        assert not order.late
        fixed.advance(days=1)
        assert order.late


def test_answers_show_the_year_only_when_it_is_not_the_clocks():
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)) as fixed:
        assert answers.format_day(date(2027, 12, 24)) == "24 December"
        assert answers.format_day(date(2028, 1, 3)) == "3 January 2028"
        fixed.advance(hours=1)
        assert answers.format_day(date(2027, 12, 24)) == "24 December 2027"
        assert answers.format_day(date(2028, 1, 3)) == "3 January"
        assert answers.format_day(date(2028, 1, 3), "zh") == "1月3日"


def test_reports_default_range_ends_on_the_clocks_day_in_the_reports_zone():
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)):
        assert reports.parse_range(None, None, "UTC").end == date(2027, 12, 31)
        assert reports.parse_range(None, None, "Asia/Tokyo").end == date(2028, 1, 1)


def test_a_web_form_token_expires_by_the_clock():
    secret = b"k" * 32
    with clock.use(clock.FixedClock(NEW_YEARS_EVE)) as fixed:
        token = form_token.issue(secret, "contact")
        assert not form_token.verify(secret, "contact", token.value).expired()
        fixed.advance(seconds=form_token.MAX_AGE_SECONDS + 1)
        assert form_token.verify(secret, "contact", token.value).expired()
        fixed.set(NEW_YEARS_EVE - timedelta(hours=1))  # the token now looks issued in the future
        with pytest.raises(form_token.TokenInvalid):
            form_token.verify(secret, "contact", token.value)
