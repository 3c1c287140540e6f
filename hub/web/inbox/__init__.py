"""The unified inbox (issue 8): server-rendered pages for agents, live through server-sent events."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Add the inbox pages, their static files and the live-update stream to the app."""
