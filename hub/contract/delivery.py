"""What a delivery attempt ends in, as channels report it to the outbox: part of the contract, so
channels raise these and the outbox, the spool and escalations catch them without importing a
channel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    """What a channel reports after sending: the id the channel gave the message, if any (an email
    Message-ID, a Telegram message id), so replies to it thread back to the conversation."""

    external_id: str | None = None


class DeliveryFailed(Exception):
    """Sending failed; the outbox decides whether to retry."""


class TemporaryFailure(DeliveryFailed):
    """Worth retrying: the service is down, rate-limited or timed out. retry_after (seconds) is
    the back end's own word on when to come back, and wins over the outbox's backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(DeliveryFailed):
    """Retrying cannot help: the recipient blocked us, the address does not exist."""
