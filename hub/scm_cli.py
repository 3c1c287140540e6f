"""servicehub intents ... and scm ...: evaluate intent detection, ask the back end from the shell."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register `intents eval` (and any scm commands) on the servicehub parser."""
