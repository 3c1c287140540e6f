"""Customer value and segments (general, potential, key) from the back end's orders and contact history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.segments import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "SegmentWorker": "hub.segments.value",
    "customer_ref": "hub.segments.value",
    "lock_in_tx": "hub.segments.value",
    "value_in_tx": "hub.segments.value",
}

__all__ = [
    "SegmentWorker",
    "customer_ref",
    "lock_in_tx",
    "value_in_tx",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.segments.value import SegmentWorker, customer_ref, lock_in_tx, value_in_tx
