"""The contract every channel adapter implements. Channels import hub.contract (the message shapes, the errors,
the delivery outcomes) and nothing else of the hub: they turn what arrives into InboundMessage
and hand it to the hub, and they deliver OutboundMessage when the outbox worker asks.

Receiving has two steps where acknowledging upstream matters (a webhook, an SMTP transaction, an
IMAP fetch): the channel first spools what it received (durable, deduplicated on its key) and
acknowledges; the hub later calls the channel's process() with it, with retries, and process()
parses it and calls ingest(). What process() cannot handle stays spooled as rejected with its
reason. Channels that need no acknowledgement may call ingest() directly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

# The failure types are the contract's: channels raise them, the outbox catches them.
from hub.contract.delivery import Delivery, DeliveryFailed, PermanentFailure, TemporaryFailure
from hub.contract.messages import InboundMessage, OutboundMessage

__all__ = ["Channel", "Delivery", "DeliveryFailed", "HubLink", "PermanentFailure", "TemporaryFailure", "run_elected"]

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

    async def send(self, message: OutboundMessage, *, metadata: dict | None = None) -> str:
        """Queue a message to a customer through the hub's outbox (stored in its conversation, then
        delivered with retries on message.channel). message.idempotency_key names its cause: the same
        key again queues nothing. Returns the address it goes to (the first one's, for a repeat).
        metadata is kept with the stored message (what sent it, for the agents)."""

    async def elected(self, name: str, loop: Callable[[], Awaitable[object]]) -> None:
        """Run loop() only while this process is the one elected for `name` among all the hub's
        processes (a mailbox's or a bot's poller must run once); cancelled when the election is
        lost, started again when won. Returns only when cancelled. Optional: see run_elected()."""

    # For channels that serve HTTP routes (routes() below): what the hub's web layer decides.

    def client_key(self, request) -> str:
        """Who a client is, for rate limits and logs: its address, through trusted proxies only."""

    def rate_limit(self, request, bucket: str, per_minute: int) -> float:
        """Count a request of this client in `bucket` (per_minute allowed): 0.0 if allowed, else the
        seconds until it is."""

    def authenticate(self, request, *roles: str) -> object:
        """The caller (token or session, with CSRF for cookies) if it has one of `roles`; raises
        Unauthenticated or PermissionDenied, which the hub answers as it answers every API route."""

    async def read_json(self, request, model, *, document: bool = False):
        """The JSON body as the pydantic `model`, with the hub's limits and error answers (413, 400,
        422). document=True: the body may be as large as an attachment (a transcript)."""

    def rejected(self, channel: str) -> None:
        """Count an input refused before it reached ingest (ingest counts its own refusals)."""


async def run_elected(hub: HubLink, name: str, loop: Callable[[], Awaitable[object]]) -> None:
    """hub.elected(name, loop), or loop() itself for a hub that runs a single process (a test's
    stand-in hub that has no elections)."""
    elected = getattr(hub, "elected", None)
    if elected is None:
        await loop()
    else:
        await elected(name, loop)


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


# Optional, for channels that receive over HTTP (webhooks, forms, an API of their own):
#   `def routes(self) -> list[RouteDef]`: aiohttp route definitions the hub mounts in its web app;
#     the handlers reach the hub through the HubLink given to start() (which runs before serving).
#   `async def on_response_prepare(self, request, response)`: called for every response of the app
#     before it is sent (the web form lets its embeddable page be framed).
# And, as functions of the channel's package (the hub's OpenAPI document is built without an app):
#   `openapi_paths() -> dict` and `OPENAPI_MODELS`, the pydantic models those paths refer to.
