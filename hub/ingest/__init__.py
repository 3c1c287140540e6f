"""The one write path in: identity, threading, dedupe and storage of every inbound message, the group-committing writer and the inbound spool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.ingest import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "ChannelHub": "hub.ingest.hub_link",
    "SpoolWorker": "hub.ingest.spool",
    "Spooler": "hub.ingest.spool",
    "clean_subject": "hub.ingest.threading_rules",
    "IngestWriter": "hub.ingest.writer",
}

__all__ = [
    "ChannelHub",
    "IngestWriter",
    "SpoolWorker",
    "Spooler",
    "clean_subject",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.ingest.hub_link import ChannelHub
    from hub.ingest.spool import Spooler, SpoolWorker
    from hub.ingest.threading_rules import clean_subject
    from hub.ingest.writer import IngestWriter
