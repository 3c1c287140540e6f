"""The contract every channel adapter implements. Channels import hub.contract.messages (the shapes) and
hub.contract.errors (RejectedInput) and nothing else of the hub: they turn what arrives into InboundMessage
and hand it to the hub, and they deliver OutboundMessage when the outbox worker asks.

Receiving has two steps where acknowledging upstream matters (a webhook, an SMTP transaction, an
IMAP fetch): the channel first spools what it received (durable, deduplicated on its key) and
acknowledges; the hub later calls the channel's process() with it, with retries, and process()
parses it and calls ingest(). What process() cannot handle stays spooled as rejected with its
reason. Channels that need no acknowledgement may call ingest() directly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hub.contract.messages import InboundMessage, OutboundMessage

class HubLink(Protocol):
    """What the hub gives a channel when it starts it."""

    async def ingest(self, message: InboundMessage) -> object:
        """Store a message (the one write path in); returns once stored. Raises RejectedInput."""

    async def spool(self, channel: str, key: str, payload: dict, raw: bytes | None = None) -> bool:
        """Keep a received item durably before acknowledging it; False if this key came before.
        payload must be JSON; raw bytes (an email) are stored content-addressed."""

    async def reject(self, channel: str, key: str, reason: str, payload: dict, raw: bytes | None = None) -> None:
        """Record an item refused on arrival (too large, unreadable), with its reason."""

    async def run_parser(self, fn, /, *args, **kwargs):
        """fn(*args, **kwargs) away from the event loop, for CPU work such as parsing a spooled
        item in process(): in one of the hub's worker processes, where an item over its time
        budget can be stopped. fn must be a module-level function; it, its arguments, its result
        and its exceptions travel by pickle (bytes, plain data, an InboundMessage)."""

    async def load_state(self, channel: str, name: str) -> dict | None:
        """Durable resume state the channel saved (an IMAP account's UIDVALIDITY and last UID)."""

    async def save_state(self, channel: str, name: str, value: dict) -> None:
        """Save resume state (JSON); save it only after what it covers is spooled."""

    async def elected(self, name: str, loop: Callable[[], Awaitable[object]]) -> None:
        """Run loop() only while this process is the one elected for `name` among all the hub's
        processes (a mailbox's or a bot's poller must run once); cancelled when the election is
        lost, started again when won. Returns only when cancelled. Optional: see run_elected()."""


async def run_elected(hub: HubLink, name: str, loop: Callable[[], Awaitable[object]]) -> None:
    """hub.elected(name, loop), or loop() itself for a hub that runs a single process (a test's
    stand-in hub that has no elections)."""
    elected = getattr(hub, "elected", None)
    if elected is None:
        await loop()
    else:
        await elected(name, loop)


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

    async def start(self, hub: HubLink) -> None:
        """Begin receiving (servers, pollers, webhooks); what arrives goes to the hub."""

    async def stop(self) -> None:
        """Stop receiving and release connections; pending work is left to be redone on restart."""

    async def send(self, message: OutboundMessage) -> Delivery:
        """Deliver one message. Must be safe to call again with the same idempotency_key (the
        outbox retries after crashes). Raises TemporaryFailure or PermanentFailure."""

    async def process(self, payload: dict, raw: bytes | None) -> None:
        """Handle one spooled item: parse it and call hub.ingest(). Raise TemporaryFailure to be
        retried later, PermanentFailure or RejectedInput to reject it for good."""


# Optional, for channels that receive over HTTP (webhooks): `def routes(self) -> list[RouteDef]`,
# aiohttp route definitions the hub mounts in its web app.
