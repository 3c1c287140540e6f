"""servicehub customer export|erase ...: privacy requests."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register this module's commands on the servicehub parser."""
