"""The one way out: outbound effects as outbox rows, delivered with retries, backoff and a dead-letter state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.outbox import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "compose_message": "hub.outbox.compose",
    "queue_message": "hub.outbox.compose",
    "enqueue": "hub.outbox.queue",
    "DELIVERY_STATE": "hub.outbox.state",
    "delivery_state": "hub.outbox.state",
    "OutboxWorker": "hub.outbox.worker",
}

__all__ = [
    "DELIVERY_STATE",
    "OutboxWorker",
    "compose_message",
    "delivery_state",
    "enqueue",
    "queue_message",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.outbox.compose import compose_message, queue_message
    from hub.outbox.queue import enqueue
    from hub.outbox.state import DELIVERY_STATE, delivery_state
    from hub.outbox.worker import OutboxWorker
