"""What the hub answers when something is not there or goes wrong, through a real aiohttp server on
SQLite and PostgreSQL: an unknown inbox address is a styled page with the right status and a way
back (JSON stays JSON under /api/), the favicon is served, and a browser leaving a page (the live
stream cut mid-way) logs nothing at ERROR."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import BROADCASTER
from tests.support.inbox import sign_in


@pytest.fixture
async def hub(settings):
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent", name="Bo Agent")
    # As `servicehub run` serves (web.run_app): a handler is not cancelled when its client leaves.
    client = TestClient(TestServer(app, handler_cancellation=False))
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


async def _open_stream_and_leave(hub, cookie: str) -> None:
    """A browser's EventSource: the request, the first event, then the tab closes (the socket goes)."""
    reader, writer = await asyncio.open_connection(hub.host, hub.port)
    writer.write(f"GET /inbox/events HTTP/1.1\r\nHost: {hub.host}\r\nAccept: text/event-stream\r\nCookie: {cookie}\r\n\r\n".encode())
    await writer.drain()
    seen = b""
    while b"hello" not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, seen
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_browser_leaving_the_live_stream_logs_no_error(hub, caplog):
    await sign_in(hub)
    cookie = "; ".join(f"{c.key}={c.value}" for c in hub.session.cookie_jar)
    caplog.set_level(logging.DEBUG)
    broadcaster = hub.app[BROADCASTER]
    for _ in range(3):
        await _open_stream_and_leave(hub, cookie)
        await asyncio.sleep(0.5)  # the server has seen the connection go
        # Something happens: the server writes to the stream of a page that is gone.
        broadcaster.publish({"type": "delivery"})
    for _ in range(200):  # each stream ends within its wake interval
        if not broadcaster.subscribers:
            break
        await asyncio.sleep(0.05)
    assert not broadcaster.subscribers
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage()) for r in errors]
