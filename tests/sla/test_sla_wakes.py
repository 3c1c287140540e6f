"""The SLA worker recomputes right after an agent changes a conversation, whatever the door: the
REST API as the inbox page. The worker polls once an hour here, so a pass soon after the change
can only come from the change waking it (the pass is seen by the watermark it saves)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.auth.accounts import create_agent
from hub.config.settings import SlaSettings
from hub.contract.messages import InboundMessage, Sender
from hub.ingest.pipeline import ingest
from hub.sla.timers import STATE
from hub.store.db import make_engine
from hub.store.state import load_state
from hub.web.app import create_app
from tests.support.inbox import csrf_of, sign_in

ALWAYS = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
async def hub(settings):
    settings.sla.worker = True
    settings.sla.poll_seconds = 3600
    settings.sla.calendars = {"default": SlaSettings.Calendar(timezone="UTC", hours=ALWAYS)}
    app = create_app(settings)
    engine = make_engine(settings.effective_database_url)
    create_agent(engine, "agent@example.com", "agent password", role="agent")
    conv = ingest(engine, InboundMessage(channel="email", external_id="<late@x>", sender=Sender("ana@example.com", "Ana"),
                                         text="Where is my parcel?", subject="Late parcel"))
    client = TestClient(TestServer(app))
    await client.start_server()
    client.engine, client.conversation_id = engine, conv.conversation_id
    yield client
    await client.close()
    engine.dispose()


async def _watermark(engine):
    return (await asyncio.to_thread(load_state, engine, *STATE) or {}).get("at")


async def _next_pass(engine, after, seconds: float = 5.0):
    """The watermark of the first pass after `after`, or None when none ran within `seconds`."""
    for _ in range(int(seconds / 0.05)):
        now = await _watermark(engine)
        if now is not None and now != after:
            return now
        await asyncio.sleep(0.05)
    return None


async def _changes_wake_the_worker(hub, change) -> None:
    first = await _next_pass(hub.engine, None)  # the pass the worker makes when it starts
    assert first is not None
    await asyncio.sleep(0.2)  # let that pass finish: a wake during it is folded into it
    seen = first
    for priority in ("urgent", "high", "low"):
        await change(priority)
        later = await _next_pass(hub.engine, seen)
        if later is not None:
            return
    pytest.fail("the SLA worker did not run after the change (it polls once an hour here)")


async def test_an_update_through_the_rest_api_wakes_the_sla_worker(hub):
    resp = await hub.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    hub.session.cookie_jar.clear()
    url = f"/api/v1/conversations/{hub.conversation_id}"

    async def change(priority: str) -> None:
        resp = await hub.patch(url, json={"priority": priority}, headers=headers)
        assert resp.status == 200, await resp.text()

    await _changes_wake_the_worker(hub, change)


async def test_an_update_through_the_inbox_wakes_the_sla_worker(hub):
    await sign_in(hub)
    csrf = csrf_of(await (await hub.get(f"/inbox/c/{hub.conversation_id}")).text())

    async def change(priority: str) -> None:
        resp = await hub.post(f"/inbox/c/{hub.conversation_id}/update", data={"_csrf": csrf, "priority": priority},
                              headers={"Accept": "application/json"})
        assert resp.status == 200, await resp.text()

    await _changes_wake_the_worker(hub, change)
