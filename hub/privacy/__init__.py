"""Privacy requests: export everything held about a customer, and erase a customer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.privacy import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "DERIVED": "hub.privacy.registry",
    "Erasure": "hub.privacy.registry",
    "Export": "hub.privacy.registry",
    "Subject": "hub.privacy.registry",
    "WHAT": "hub.privacy.registry",
    "WHO": "hub.privacy.registry",
    "among": "hub.privacy.registry",
    "chunks": "hub.privacy.registry",
    "keep": "hub.privacy.registry",
    "nothing_to_export": "hub.privacy.registry",
    "register": "hub.privacy.registry",
    "register_after_erase": "hub.privacy.registry",
    "register_file_use": "hub.privacy.registry",
    "register_scope": "hub.privacy.registry",
    "rows_of": "hub.privacy.registry",
}

__all__ = [
    "DERIVED",
    "Erasure",
    "Export",
    "Subject",
    "WHAT",
    "WHO",
    "among",
    "chunks",
    "keep",
    "nothing_to_export",
    "register",
    "register_after_erase",
    "register_file_use",
    "register_scope",
    "rows_of",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.privacy.registry import (
        DERIVED,
        WHAT,
        WHO,
        Erasure,
        Export,
        Subject,
        among,
        chunks,
        keep,
        nothing_to_export,
        register,
        register_after_erase,
        register_file_use,
        register_scope,
        rows_of,
    )
