"""The channels as the hub sees them: which adapter serves which channel, and their status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.gateway import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "ChannelNotConfigured": "hub.gateway.registry",
    "ChannelRegistry": "hub.gateway.registry",
}

__all__ = [
    "ChannelNotConfigured",
    "ChannelRegistry",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.gateway.registry import ChannelNotConfigured, ChannelRegistry
