"""Times as the hub writes them: ISO 8601 in UTC ending in Z, whatever the datetime it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.contract.timefmt import iso, parse_iso


def test_iso_writes_utc_with_a_z_for_naive_aware_and_other_offsets():
    assert iso(None) is None
    assert iso(datetime(2026, 3, 1, 9, 30)) == "2026-03-01T09:30:00Z"  # naive: the store's UTC
    assert iso(datetime(2026, 3, 1, 9, 30, tzinfo=UTC)) == "2026-03-01T09:30:00Z"
    assert iso(datetime(2026, 3, 1, 11, 30, 0, 250, tzinfo=timezone(timedelta(hours=2)))) == "2026-03-01T09:30:00.000250Z"


def test_parse_iso_reads_what_iso_writes_and_offsets():
    when = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_iso(iso(when)) == when
    assert parse_iso("2026-03-01T11:30:00+02:00") == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert parse_iso("2026-03-01T09:30:00").tzinfo is not None  # no offset: UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-03-01T09:30:00Zjunk"])
def test_parse_iso_refuses_what_is_not_a_time(text):
    with pytest.raises(ValueError):
        parse_iso(text)
