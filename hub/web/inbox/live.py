"""Live updates: one server-sent-event stream per agent page, fed by a per-process broadcaster.

What the broadcaster hears: new inbound messages straight from the ingest path
(app[INGEST_LISTENERS]), what agents change in conversations (app[CONVERSATION_LISTENERS]), on
PostgreSQL what other processes store and change (LISTEN/NOTIFY, hub/runtime/live_events.py: within
milliseconds), and a cheap poll of the store (max message id; the outbox's queued rows) for the
rest: a delivery the outbox worker finished, and on SQLite or after a lost notification a message
stored elsewhere. A message is announced once, however many of these report it. Events carry ids
only; pages fetch the fragment they show again, through the same authorised handlers.

The stream also carries presence: while a conversation page's stream is open its agent counts as
viewing it, and the page's heartbeat (POST /inbox/presence) says when they type.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp_sse import sse_response
from sqlalchemy import func, select

from hub.auth import staff
from hub.conversations.presence import Presence
from hub.runtime.workers import Worker
from hub.store.db import read_tx
from hub.store.models import Conversation, Message, Outbox, OutboxStatus
from hub.web.changes import ConversationChange
from hub.web.inbox.common import agent, form_of, int_param
from hub.web.keys import BROADCASTER, CONVERSATION_LISTENERS, ENGINE, INGEST_LISTENERS, LIVE_EVENTS

log = logging.getLogger(__name__)
message_t = Message.__table__
conversation_t = Conversation.__table__
outbox_t = Outbox.__table__

POLL_SECONDS = 1.0
WAKE_SECONDS = 2.0  # how soon a stream notices its page went away while nothing happens
QUEUE_SIZE = 200
ANNOUNCED = 5000  # message ids remembered as announced (a notification and the poll report the same)


@dataclass(eq=False)
class Subscriber:
    agent_id: int
    conversation_id: int | None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))


class Broadcaster:
    def __init__(self, engine, *, poll_seconds: float = POLL_SECONDS):
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.subscribers: set[Subscriber] = set()
        self.presence = Presence()
        self._last_message_id: int | None = None
        self._outbox_signature = None
        self._wake = asyncio.Event()
        self._announced: OrderedDict[int, None] = OrderedDict()
        self.elsewhere = None  # LiveEvents: what this process stores or changes, told to the others

    def hear(self, event: dict) -> None:
        """A LiveEvents listener: what another process did."""
        kind = event.get("type")
        if kind == "msg":
            self._announce(event)
        elif kind in ("resync", "delivery"):
            self.publish({"type": kind})
        elif kind == "conv" and isinstance(event.get("conversation_id"), int):
            self.publish({"type": "conv", "conversation_id": event["conversation_id"]})
        elif kind == "snooze_back" and isinstance(event.get("conversation_id"), int):
            assignee = event.get("assignee_id")
            self.publish({"type": "snooze_back", "conversation_id": event["conversation_id"],
                          "assignee_id": assignee if isinstance(assignee, int) else None})

    def _announce(self, event: dict) -> bool:
        message_id = event.get("message_id")
        if not isinstance(message_id, int) or message_id in self._announced:
            return False
        self._announced[message_id] = None
        while len(self._announced) > ANNOUNCED:
            self._announced.popitem(last=False)
        if self.subscribers:
            self.publish({"type": "msg", "conversation_id": event.get("conversation_id"),
                          "customer_id": event.get("customer_id"), "message_id": message_id})
        return True

    def subscribe(self, agent_id: int, conversation_id: int | None) -> Subscriber:
        sub = Subscriber(agent_id, conversation_id)
        self.subscribers.add(sub)
        self._wake.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, event: dict) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A page that does not keep up reloads what it shows once, instead of every event.
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        sub.queue.get_nowait()
                sub.queue.put_nowait({"type": "resync"})

    def publish_presence(self, conversation_id: int) -> None:
        self.publish({"type": "presence", "conversation_id": conversation_id,
                      "viewers": self.presence.of(conversation_id)})

    def on_ingest(self, result, message=None) -> None:
        """An ingest listener: a new message was stored by this process."""
        event = {"type": "msg", "conversation_id": result.conversation_id, "customer_id": result.customer_id,
                 "message_id": result.message_id}
        self._announce(event)
        if self.elsewhere is not None:
            self.elsewhere.publish(event)

    def on_change(self, change: ConversationChange) -> None:
        """A conversation listener: an agent changed a conversation through this process."""
        event = {"type": "conv", "conversation_id": change.conversation_id}
        self.publish(event)
        if self.elsewhere is not None:
            self.elsewhere.publish(event)

    def close(self) -> None:
        for sub in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    # --- the poll -------------------------------------------------------------------------

    def _poll_store(self):
        with read_tx(self.engine) as conn:
            top = conn.execute(select(func.max(message_t.c.id))).scalar() or 0
            new = []
            if self._last_message_id is not None and top > self._last_message_id:
                new = conn.execute(
                    select(message_t.c.id, message_t.c.conversation_id, conversation_t.c.customer_id)
                    .join(conversation_t, conversation_t.c.id == message_t.c.conversation_id)
                    .where(message_t.c.id > self._last_message_id)
                    .order_by(message_t.c.id)
                    .limit(500)
                ).all()
            # Queued rows are few and indexed (status, next_attempt_at): a delivery that finished
            # or failed changes this signature.
            signature = tuple(conn.execute(
                select(func.count(), func.coalesce(func.sum(outbox_t.c.attempts), 0), func.max(outbox_t.c.id))
                .where(outbox_t.c.status.in_([OutboxStatus.pending, OutboxStatus.sending]))
            ).one())
        return top, new, signature

    async def poll_once(self) -> None:
        top, new, signature = await asyncio.to_thread(self._poll_store)
        for row in new:
            self._announce({"type": "msg", "conversation_id": row.conversation_id, "customer_id": row.customer_id,
                            "message_id": row.id})
        if self._outbox_signature is not None and signature != self._outbox_signature:
            self.publish({"type": "delivery"})
        self._last_message_id = top
        self._outbox_signature = signature

    async def run(self) -> None:
        while True:
            if not self.subscribers:
                # Nobody listens: sleep until a page connects, then start from the store's present.
                self._wake.clear()
                self._last_message_id = self._outbox_signature = None
                await self._wake.wait()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down for a moment: pages keep their stream
                log.warning("inbox live poll failed: %s", exc)
            await asyncio.sleep(self.poll_seconds)




def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _relevant(event: dict, sub: Subscriber) -> bool:
    if event["type"] == "presence":
        return sub.conversation_id is not None and event["conversation_id"] == sub.conversation_id
    return True


async def events(request: web.Request) -> web.StreamResponse:
    """GET /inbox/events[?conversation=ID]: the page's live stream."""
    who = agent(request)
    raw = request.query.get("conversation")
    conversation_id = int_param(raw, "conversation") if raw else None
    broadcaster = request.app[BROADCASTER]
    name = await asyncio.to_thread(staff.display_name, request.app[ENGINE], who.id) if conversation_id else who.name
    sub = broadcaster.subscribe(who.id, conversation_id)
    if conversation_id is not None:
        broadcaster.presence.join(conversation_id, who.id, name)
        broadcaster.publish_presence(conversation_id)
    try:
        async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) as stream:
            await stream.send(json.dumps({"type": "hello"}), event="hello")
            while stream.is_connected() and not _gone(request):
                try:
                    event = await asyncio.wait_for(sub.queue.get(), WAKE_SECONDS)
                except TimeoutError:
                    continue  # look again whether the page is still there (presence must not linger)
                if event is None:  # the app is shutting down
                    break
                if _relevant(event, sub):
                    await stream.send(json.dumps(event), event=event["type"])
        return stream
    except ConnectionResetError as exc:
        # The page was closed or left between two looks at the connection: the usual end of a
        # stream, not a failure (an ERROR per page left would flood the log of a busy team).
        log.debug("live stream of agent %s ended: the page went away (%s)", who.id, exc)
        return web.Response(status=499, text="client closed the connection")
    finally:
        broadcaster.unsubscribe(sub)
        if conversation_id is not None:
            broadcaster.presence.leave(conversation_id, who.id)
            broadcaster.publish_presence(conversation_id)


async def heartbeat(request: web.Request) -> web.Response:
    """POST /inbox/presence (conversation_id, typing=1|0): the page's agent is typing (or stopped)."""
    who = agent(request)
    form = await form_of(request, who)
    conversation_id = int_param(form.get("conversation_id"), "conversation_id")
    typing = form.get("typing") == "1"
    broadcaster = request.app[BROADCASTER]
    if broadcaster.presence.typing(conversation_id, who.id, who.name, typing):
        broadcaster.publish_presence(conversation_id)
    return web.json_response({"viewers": broadcaster.presence.of(conversation_id)})


async def _on_shutdown(app: web.Application) -> None:
    app[BROADCASTER].close()  # open streams end, so the server can stop


def setup(app: web.Application) -> None:
    """The broadcaster, told of every new message and every change an agent makes (through any door)."""
    broadcaster = app[BROADCASTER] = Broadcaster(app[ENGINE])
    elsewhere = app.get(LIVE_EVENTS)
    if elsewhere is not None:
        broadcaster.elsewhere = elsewhere
        elsewhere.listeners.append(broadcaster.hear)
    app[INGEST_LISTENERS].append(broadcaster.on_ingest)
    app[CONVERSATION_LISTENERS].append(broadcaster.on_change)
    app.on_shutdown.append(_on_shutdown)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox/events", events)
    app.router.add_post("/inbox/presence", heartbeat)


def workers(app: web.Application) -> list[Worker]:
    """The poll that finds what other processes stored or delivered, for the open pages."""
    broadcaster = app[BROADCASTER]

    async def run() -> None:
        try:
            await broadcaster.run()
        except asyncio.CancelledError:  # the app stops: open streams end
            broadcaster.close()
            raise

    return [Worker("inbox-live-poll", run)]
