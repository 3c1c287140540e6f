"""What the hub tells one agent, in the page and through the API: a mention, a conversation
assigned to them, a snoozed conversation back, an SLA warning on a conversation they hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.notifications import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "notify": "hub.notifications.store",
    "notify_snooze_back": "hub.notifications.store",
}

__all__ = [
    "notify",
    "notify_snooze_back",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.notifications.store import notify, notify_snooze_back
