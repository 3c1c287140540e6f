"""Keyset cursors: what a page hands out comes back as the same point; anything else (forged,
truncated, another listing's) is refused with a message that says what to use, never a 500."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from hub.contract.errors import RejectedInput
from hub.conversations.cursors import decode_cursor, decode_priority_cursor, encode_cursor, encode_priority_cursor

WHEN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)


def forged(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_cursors_come_back_as_the_point_they_were_made_at():
    assert decode_cursor(encode_cursor(WHEN, 42)) == (WHEN, 42)
    assert decode_cursor(encode_cursor(WHEN.replace(tzinfo=None), 42)) == (WHEN, 42)  # a naive time is UTC
    assert decode_priority_cursor(encode_priority_cursor(2, WHEN, 7), 4) == (2, WHEN, 7)


@pytest.mark.parametrize("cursor", [
    "garbage", "!!!", "", "\udcff", forged("2026-05-04T03:02:01Z"), forged("2026-05-04T03:02:01Z|x"),
    forged("yesterday|3"), forged("2026-05-04T03:02:01Z|3|4"), "x" * 10_000,
])
def test_a_cursor_not_made_here_is_refused(cursor):
    with pytest.raises(RejectedInput, match="cursor is not valid"):
        decode_cursor(cursor)


@pytest.mark.parametrize("cursor", [
    "garbage", forged("4|2026-05-04T03:02:01Z|3"), forged("-1|2026-05-04T03:02:01Z|3"), forged("0|2026-05-04T03:02:01Z"),
    encode_cursor(WHEN, 3),  # an activity-order cursor
])
def test_a_priority_cursor_not_made_here_is_refused(cursor):
    with pytest.raises(RejectedInput, match="cursor is not valid"):
        decode_priority_cursor(cursor, 4)
