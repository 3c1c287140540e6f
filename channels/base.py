"""The contract every channel adapter implements. Channels import hub.messages and nothing else of
the hub: they turn what arrives into InboundMessage and hand it to the hub's ingest callback, and
they deliver OutboundMessage when the outbox worker asks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol, runtime_checkable

from hub.messages import InboundMessage, OutboundMessage

# The hub's single ingest function, as channels see it. It returns once the message is stored
# (so a channel may acknowledge upstream) and raises for input that can never be stored.
IngestCallback = Callable[[InboundMessage], Awaitable[object]]


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


@runtime_checkable
class Channel(Protocol):
    name: str

    async def start(self, ingest: IngestCallback) -> None:
        """Begin receiving (servers, pollers); every inbound message goes to `ingest`."""

    async def stop(self) -> None:
        """Stop receiving and release connections; pending work is left to be redone on restart."""

    async def send(self, message: OutboundMessage) -> Delivery:
        """Deliver one message. Must be safe to call again with the same idempotency_key (the
        outbox retries after crashes). Raises TemporaryFailure or PermanentFailure."""
