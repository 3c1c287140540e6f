"""The knowledge base: articles and passages in the store, the index of each process, answer suggestions and feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.contract.faces import public_names

# What other capabilities may use, by name -> the module that holds it. They import these as
# `from hub.kb import NAME`, never from the modules themselves (the layering contract in
# pyproject.toml); each module is imported on first use, so no import cycle runs through here.
_PUBLIC = {
    "KnowledgeIndex": "hub.kb.index",
}

__all__ = [
    "KnowledgeIndex",
]

__getattr__, __dir__ = public_names(__name__, _PUBLIC)

if TYPE_CHECKING:
    from hub.kb.index import KnowledgeIndex
