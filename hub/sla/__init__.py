"""Service levels: policies, business-hours calendars, timers, warnings and breaches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.sla import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "Rules": "hub.sla.timers",
    "SlaWorker": "hub.sla.timers",
}

__all__ = [
    "Rules",
    "SlaWorker",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.sla.timers import Rules, SlaWorker
