"""Instants as the hub writes them for people and programs: ISO 8601 in UTC with a `Z`.

Every JSON answer, cursor, export and stored fact that carries a time uses `iso()`, so that a
client parses one format and two times compare as text. The store hands back naive datetimes on
SQLite (its columns hold UTC without an offset) and aware ones on PostgreSQL: both read as UTC.

Like hub.contract.clock, this module is part of the contract: channels and adapters may import it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso(when: datetime | None) -> str | None:
    """`when` in UTC as ISO 8601 ending in `Z` (a naive datetime is taken as UTC); None for None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """The instant an ISO 8601 text names (as `iso()` writes it, or with an offset), aware; a
    text without an offset is taken as UTC. ValueError when it is not such a text."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
