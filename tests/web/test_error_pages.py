"""What the hub answers when something is not there or goes wrong, through a real aiohttp server on
SQLite and PostgreSQL: an unknown inbox address is a styled page with the right status and a way
back (JSON stays JSON under /api/), the favicon is served, and a browser leaving a page (the live
stream cut mid-way) logs nothing at ERROR."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import BROADCASTER
from tests.support.inbox import sign_in


@pytest.fixture
async def hub(settings):
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent")
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine = engine
    yield client
    await client.close()
    engine.dispose()


async def test_an_unknown_inbox_address_is_a_page_with_a_way_back(hub):
    await sign_in(hub)
    resp = await hub.get("/inbox/no/such/page", headers={"Accept": "text/html"})
    body = await resp.text()
    assert resp.status == 404 and resp.content_type == "text/html"
    assert "Not found" in body and 'href="/inbox"' in body and "inbox.css" in body
    assert "Traceback" not in body and "404: Not Found" not in body
    # Without a session the page still says "not found" (no data is shown), with the sign-in link.
    hub.session.cookie_jar.clear()
    resp = await hub.get("/inbox/nothing-here")
    assert resp.status == 404 and resp.content_type == "text/html"


async def test_errors_under_the_api_stay_json(hub):
    resp = await hub.get("/api/v1/no-such-thing")
    assert resp.status == 404 and resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_a_wrong_method_on_a_page_is_a_page(hub):
    await sign_in(hub)
    resp = await hub.put("/inbox/reports", headers={"Accept": "text/html"})
    assert resp.status == 405 and resp.content_type == "text/html"
    assert "Allow" in resp.headers


async def test_the_favicon_is_a_small_svg(hub):
    for path in ("/favicon.ico", "/favicon.svg"):
        resp = await hub.get(path)
        body = await resp.read()
        assert resp.status == 200 and resp.content_type == "image/svg+xml", path
        assert body.startswith(b"<svg") and b"<script" not in body and len(body) < 2000
        assert "max-age" in resp.headers["Cache-Control"]
    await sign_in(hub)
    page = await (await hub.get("/inbox/reports")).text()
    assert 'rel="icon"' in page and "/favicon.svg" in page


@pytest.fixture
async def served(settings):
    """The hub served as `servicehub serve` serves it (web.run_app): a handler is NOT cancelled when
    its client leaves, so a live stream goes on to write to a connection that is gone. (aiohttp's
    TestServer always cancels handlers, which hides exactly that.)"""
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent")
    cid = ingest(engine, InboundMessage("email", "<live@example.com>", Sender("ana@example.com", "Ana"), "Hello",
                                        subject="Live")).conversation_id
    runner = web.AppRunner(app, handler_cancellation=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield SimpleNamespace(app=app, port=port, session=session, conversation_id=cid)
    await runner.cleanup()
    engine.dispose()


async def _changes_through_the_api(served, stop: asyncio.Event) -> int:
    """An agent's client changing the conversation over and over: each change is a live event."""
    resp = await served.session.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    assert resp.status == 200, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    changes = 0
    while not stop.is_set():
        priority = ("high", "normal")[changes % 2]
        resp = await served.session.patch(f"/api/v1/conversations/{served.conversation_id}", json={"priority": priority},
                                          headers=headers)
        assert resp.status == 200, await resp.text()
        changes += 1
        await asyncio.sleep(0.02)
    return changes


async def _read_until(reader, marker: bytes, seen: bytes = b"") -> bytes:
    while marker not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, seen
        seen += chunk
    return seen


async def test_a_browser_leaving_the_live_stream_mid_write_logs_no_error(served, caplog):
    caplog.set_level(logging.DEBUG)
    await sign_in(served.session)
    cookie = "; ".join(f"{c.key}={c.value}" for c in served.session.cookie_jar)
    served.session.cookie_jar.clear()  # the API client below is another program, with a token
    broadcaster = served.app[BROADCASTER]
    for _ in range(3):
        # A browser's EventSource: the request, the headers and the first events...
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(f"GET /inbox/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                     f"Cookie: {cookie}\r\n\r\n".encode())
        await writer.drain()
        stop = asyncio.Event()
        changing = asyncio.create_task(_changes_through_the_api(served, stop))
        seen = await _read_until(reader, b"event: conv", await _read_until(reader, b"hello"))
        assert seen.startswith(b"HTTP/1.1 200")
        # ...then the tab closes while events keep coming: the server's next write meets a closed socket.
        writer.transport.abort()
        for _ in range(200):
            if not broadcaster.subscribers:
                break
            await asyncio.sleep(0.05)
        stop.set()
        assert await changing > 0
        assert not broadcaster.subscribers
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage(), r.exc_text) for r in errors]
    # The streams did end on a write to the closed connection (else this test proves nothing).
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 3, [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("hub")]
