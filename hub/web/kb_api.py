"""Knowledge base routes (issue 6): articles, search, suggestions, feedback, knowledge capture."""

from __future__ import annotations

from aiohttp import web

# pydantic shapes these routes document (added to the OpenAPI components)
OPENAPI_MODELS: list = []


def setup(app: web.Application) -> None:
    """Add the routes and the background work (model warm-up, index) to the app."""


def openapi_paths() -> dict:
    return {}
