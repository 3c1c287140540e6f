"""servicehub segments ...: recompute customer value and segments."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register this module's commands on the servicehub parser."""
