"""What every table module shares: the time new rows are stamped with.

Times are timezone-aware UTC (sqlmodel's UTCDateTime stores them as UTC and returns them aware,
also on SQLite, which has no time zones), read from hub.contract.clock so tests can pin them.
"""

from __future__ import annotations

from datetime import datetime

from hub.contract import clock


def utcnow() -> datetime:
    return clock.now()
