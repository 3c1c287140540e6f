"""SLA policies and timers, business-hours calendars, teams, agent availability and assignment (issue 9)."""

from __future__ import annotations

from aiohttp import web

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = []


def setup(app: web.Application) -> None:
    """Add the routes (and any background work, through app.cleanup_ctx) to the app."""


def openapi_paths() -> dict:
    """This module's routes in the hub's OpenAPI document (hub/web/openapi.py merges them in)."""
    return {}
