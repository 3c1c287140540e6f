"""Keyset cursors of conversation listings: where the next page starts, as an opaque token.

A page ends at a conversation (its last activity, its id); the next page is what comes after
that point in the listing's order, read through the index, so a page costs the same at any depth
and a conversation that moves while the agent pages is neither shown twice nor skipped twice. The
token is that point in URL-safe base64; a token that does not decode is refused with a message
that says what to use instead, never a server error.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from hub.contract.errors import RejectedInput
from hub.contract.i18n import N_
from hub.contract.timefmt import iso, parse_iso


def _encode(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(map(str, parts)).encode()).decode().rstrip("=")


def _decode(cursor: str, parts: int) -> list[str]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    fields = raw.split("|")
    if len(fields) != parts:
        raise ValueError(raw)
    return fields


def encode_cursor(when: datetime, conversation_id: int) -> str:
    """The cursor after a conversation in activity order (newest first)."""
    return _encode(iso(when), conversation_id)


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(last activity, id) of the conversation an activity-order page ended at; RejectedInput when
    the cursor was not made by encode_cursor."""
    try:
        when, ident = _decode(cursor, 2)
        return parse_iso(when), int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RejectedInput(N_("the cursor is not valid; use the next_cursor of a previous page")) from None


def encode_priority_cursor(level: int, when: datetime, conversation_id: int) -> str:
    """The cursor after a conversation in priority order: its priority level (0 most urgent), then
    activity order within the level."""
    return _encode(level, iso(when), conversation_id)


def decode_priority_cursor(cursor: str, levels: int) -> tuple[int, datetime, int]:
    """(level, last activity, id) of the conversation a priority-order page ended at; RejectedInput
    when the cursor was not made by encode_priority_cursor or names a level outside 0..levels-1."""
    try:
        level, when, ident = _decode(cursor, 3)
        level_i = int(level)
        if not 0 <= level_i < levels:
            raise ValueError(level)
        return level_i, parse_iso(when), int(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise RejectedInput(N_("the cursor is not valid; use the link to the next page")) from None
