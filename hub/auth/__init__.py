"""Agents, sessions, API tokens, sign-in lock-out and staff administration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.auth import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "Authenticator": "hub.auth.accounts",
    "csrf_ok": "hub.auth.accounts",
}

__all__ = [
    "Authenticator",
    "csrf_ok",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.auth.accounts import Authenticator, csrf_ok
