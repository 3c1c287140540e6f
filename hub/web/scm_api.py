"""SCM routes (issue 7): order and stock facts, escalations and their events, demand."""

from __future__ import annotations

from aiohttp import web

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = []


def setup(app: web.Application) -> None:
    """Add the routes and the background work (the routing worker) to the app."""


def openapi_paths() -> dict:
    return {}
