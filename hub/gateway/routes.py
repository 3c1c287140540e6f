"""The channels in the web app: the routes a channel mounts itself (Telegram's webhook...), and
starting the channels once everything they hand messages to is in place (they come last in the
app's list of capabilities, so they start last and stop first)."""

from __future__ import annotations

import contextlib

from aiohttp import web

from hub.ingest.hub_link import ChannelHub
from hub.web.capability import Capability
from hub.web.keys import REGISTRY


def add_routes(app: web.Application) -> None:
    for channel in app[REGISTRY].all():
        if hasattr(channel, "routes"):
            app.router.add_routes(channel.routes())


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


capability = Capability("channels", routes=add_routes, lifespan=lifespan, requires=("ingest", "outbox"))
