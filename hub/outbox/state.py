"""Where a delivery stands, as agents see it: the one reading of an outbox row's status for the
conversation view, the REST API and escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.contract.timefmt import iso
from hub.store.models import OutboxStatus

# How the outbox's states read to an agent.
DELIVERY_STATE = {
    OutboxStatus.pending: "queued",
    OutboxStatus.sending: "sending",
    OutboxStatus.sent: "sent",
    OutboxStatus.dead: "failed",
}


def delivery_state(
    status: str | None, *, attempts: int | None, last_error: str | None,
    next_attempt_at: datetime | None = None, sent_at: datetime | None = None,
) -> dict[str, Any] | None:
    """{"state", "attempts", "last_error", "next_attempt_at", "sent_at"} of an outbox row, or None
    when there is no row (nothing was sent). next_attempt_at only while a row waits to be sent."""
    if status is None:
        return None
    return {
        "state": DELIVERY_STATE.get(status, status),
        "attempts": attempts,
        "last_error": last_error,
        "next_attempt_at": iso(next_attempt_at) if status == OutboxStatus.pending else None,
        "sent_at": iso(sent_at),
    }
