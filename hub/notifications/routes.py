"""The notifications' REST routes, and the loop that makes and announces them.

The loop, each second: in a process that runs background loops, a sweep turns new assignments and
SLA warnings into notifications (hub/notifications/sweep.py); in a process that serves pages, the
agents told something new since the last look get a live "notification" event on their pages'
stream (the page then asks for its list). Looking at the table, not at this process's own
notifications, is what makes one made in another process (a worker's SLA warning) reach the page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from aiohttp import web
from pydantic import Field

from hub.notifications import store, sweep
from hub.runtime.workers import Worker
from hub.web import openapi as doc
from hub.web.capability import ApiDoc, Capability
from hub.web.http import AGENTS, db, int_query, json_response, parse_body, principal
from hub.web.keys import BROADCASTER, ENGINE, SETTINGS
from hub.web.schemas import Strict

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class NotificationOut(Strict):
    id: int
    kind: str = Field(description="mention | assignment | snooze_back | sla_warning")
    conversation_id: int | None
    text: str
    created_at: str
    read: bool


class NotificationsOut(Strict):
    items: list[NotificationOut]
    unread: int


class MarkReadIn(Strict):
    ids: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] | None = Field(
        default=None, max_length=500, description="the notifications to mark read; none: all of them")


def _me(request: web.Request):
    who = principal(request, *AGENTS)
    if not who.is_agent:
        from hub.contract.errors import PermissionDenied

        raise PermissionDenied("notifications are an agent's: sign in, or use an agent's session token")
    return who


async def list_notifications(request: web.Request) -> web.Response:
    who = _me(request)
    limit = int_query(request, "limit", low=1, high=100) or 20
    before = int_query(request, "before", low=1, high=2_147_483_647)
    unread = request.query.get("unread") == "true"
    return json_response(await db(store.list_for, request.app[ENGINE], who.id, unread_only=unread, limit=limit, before=before))


async def mark_read(request: web.Request) -> web.Response:
    who = _me(request)
    body = await parse_body(request, MarkReadIn)
    await db(store.mark_read, request.app[ENGINE], who.id, body.ids)
    return json_response(await db(store.list_for, request.app[ENGINE], who.id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/notifications", list_notifications)
    app.router.add_post("/api/v1/notifications/read", mark_read)


def openapi() -> ApiDoc:
    tags = ["notifications"]
    errs = doc.errors(401, 403)
    q = [doc.query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "at most this many (20)"),
         doc.query("before", {"type": "integer", "minimum": 1}, "older than this notification id (paging)"),
         doc.query("unread", {"type": "string", "enum": ["true", "false"]}, "true: the unread ones only")]
    return ApiDoc({
        "/api/v1/notifications": {"get": doc.op("My notifications, newest first, and how many are unread",
                                                {"200": doc.json_response(NotificationsOut), **errs, **doc.errors(400, 422)},
                                                params=q, tags=tags)},
        "/api/v1/notifications/read": {"post": doc.op("Mark my notifications read (another agent's id is 404)",
                                                      {"200": doc.json_response(NotificationsOut), **errs,
                                                       **doc.errors(400, 404, 413, 422)},
                                                      body=MarkReadIn, tags=tags)},
    }, [NotificationOut, NotificationsOut, MarkReadIn])


class Announcer:
    """The loop: sweep (when this process runs loops), then announce new notifications to pages."""

    def __init__(self, app: web.Application, *, sweeps: bool):
        self.app = app
        self.engine = app[ENGINE]
        self.sweeps = sweeps
        self.marks: sweep.Watermarks | None = None
        self.seen: int | None = None

    def _pass(self, listening: bool) -> set[int]:
        if self.sweeps:
            if self.marks is None:
                self.marks = sweep.start(self.engine)
            sweep.sweep(self.engine, self.marks)
        if not listening:
            self.seen = None  # nobody to tell: start from the present when a page connects
            return set()
        if self.seen is None:
            self.seen = store.newest_id(self.engine)
            return set()
        self.seen, agents = store.recipients_since(self.engine, self.seen)
        return agents

    async def run(self) -> None:
        while True:
            try:
                broadcaster = self.app.get(BROADCASTER)
                listening = broadcaster is not None and bool(broadcaster.subscribers)
                agents = await asyncio.to_thread(self._pass, listening)
                if broadcaster is not None:
                    for agent_id in sorted(agents):
                        broadcaster.publish({"type": "notification", "agent_id": agent_id})
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down for a moment: try again next pass
                log.warning("notifications pass failed: %s", exc)
            await asyncio.sleep(POLL_SECONDS)


def workers(app: web.Application) -> list[Worker]:
    settings = app[SETTINGS]
    return [Worker("notifications", Announcer(app, sweeps=bool(settings.outbox_inline_worker)).run)]


# After the inbox: its broadcaster carries the live events to the pages.
capability = Capability("notifications", routes=add_routes, openapi=openapi, workers=workers, requires=("inbox",))
