"""Demo history for the reports (issue 9): weeks of past conversations over every channel, with
first responses, resolutions, SLA outcomes, satisfaction answers and intents."""

from __future__ import annotations

from sqlalchemy import Engine


def seed_history(engine: Engine) -> None:
    """Seed the history once (idempotent)."""
