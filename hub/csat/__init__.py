"""Satisfaction surveys: asked on resolve, answered on the customer's channel or the survey page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.csat import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "queue_survey": "hub.csat.surveys",
}

__all__ = [
    "queue_survey",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.csat.surveys import queue_survey
