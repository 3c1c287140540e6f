"""One customer across channels: identities, profiles, merges and link codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.customers import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "current_customer": "hub.customers.linking",
    "record_redeemer": "hub.customers.linking",
    "redeem": "hub.customers.linking",
    "merge_in_tx": "hub.customers.profiles",
}

__all__ = [
    "current_customer",
    "merge_in_tx",
    "record_redeemer",
    "redeem",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.customers.linking import current_customer, record_redeemer, redeem
    from hub.customers.profiles import merge_in_tx
