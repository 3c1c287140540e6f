"""servicehub kb ...: import articles, rebuild the index, evaluate retrieval."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register `kb import`, `kb reindex` and `kb eval` on the servicehub parser."""
