"""The channels in the web app: the routes a channel mounts itself (Telegram's webhook...), and
starting the channels once everything they hand messages to is in place (they come last in the
app's list of capabilities, so they start last and stop first)."""

from __future__ import annotations

import contextlib

from aiohttp import web

from hub.gateway.registry import channel_api_parts
from hub.ingest import ChannelHub
from hub.web.capability import ApiDoc, Capability
from hub.web.keys import CHANNEL_LIMITERS, REGISTRY


def setup(app: web.Application) -> None:
    app[CHANNEL_LIMITERS] = {}


def add_routes(app: web.Application) -> None:
    for channel in app[REGISTRY].all():
        if hasattr(channel, "routes"):
            app.router.add_routes(channel.routes())
        if hasattr(channel, "on_response_prepare"):
            app.on_response_prepare.append(channel.on_response_prepare)


@contextlib.asynccontextmanager
async def lifespan(app: web.Application):
    started = []
    hub = ChannelHub(app)
    try:
        for channel in app[REGISTRY].all():
            await channel.start(hub)
            started.append(channel)
        yield
    finally:
        for channel in reversed(started):
            with contextlib.suppress(Exception):
                await channel.stop()


def openapi() -> ApiDoc:
    """What the channels that serve routes of their own (the web form, the calls API) document."""
    paths: dict = {}
    models: list = []
    for part in channel_api_parts():
        paths.update(part.openapi_paths())
        models.extend(part.OPENAPI_MODELS)
    return ApiDoc(paths, models)


capability = Capability("channels", setup=setup, routes=add_routes, openapi=openapi, lifespan=lifespan, requires=("ingest", "outbox"))
