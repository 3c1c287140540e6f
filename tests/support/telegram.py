"""The Telegram channel's test kit: the fixture updates, the fake Bot API server
(tests/support/fake_telegram.py) with the test bot, and the real app started against it with an
agent signed in (TgHub). The fixtures that wrap these live in the conftest.py of the directories
that use them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from dataclasses import dataclass

from aiohttp.test_utils import TestClient, TestServer

from channels.telegram import SECRET_HEADER
from hub.auth.accounts import create_agent, create_token
from hub.ingest.spool import counts
from hub.store.db import make_engine
from hub.web.app import create_app
from hub.web.keys import REGISTRY
from tests.conftest import FIXTURES
from tests.support.fake_telegram import FakeTelegram
from tests.support.waiting import eventually

UPDATES = FIXTURES / "telegram" / "updates"
TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "webhook-secret_1"
BOT_ID = 110201543
BOT_USERNAME = "ShopHelpBot"
USER = 12345678


def load(name: str) -> dict:
    return json.loads((UPDATES / name).read_text(encoding="utf-8"))


@dataclass
class TgHub:
    client: TestClient
    app: object
    agent: dict
    integration: dict
    fake: FakeTelegram
    settings: object

    @property
    def channel(self):
        return self.app[REGISTRY].get("telegram")

    async def post_update(self, update, *, path: str = "/channels/telegram/webhook", secret: str | None = SECRET):
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        body = update if isinstance(update, (bytes, str, io.BytesIO)) else json.dumps(update)
        return await self.client.post(path, data=body, headers=headers)

    async def conversations(self) -> list[dict]:
        resp = await self.client.get("/api/v1/conversations?channel=telegram&limit=200", headers=self.agent)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["items"]

    async def conversation(self, cid: int) -> dict:
        resp = await self.client.get(f"/api/v1/conversations/{cid}", headers=self.agent)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def messages(self) -> list[dict]:
        out = []
        for conv in await self.conversations():
            out += (await self.conversation(conv["id"]))["messages"]
        return out

    async def wait_messages(self, n: int, *, direction: str = "inbound") -> list[dict]:
        async def enough():
            found = [m for m in await self.messages() if m["direction"] == direction]
            return found if len(found) >= n else None

        return await eventually(enough, what=f"{n} {direction} messages")

    async def reply(self, cid: int, text: str) -> dict:
        resp = await self.client.post(f"/api/v1/conversations/{cid}/replies", json={"text": text}, headers=self.agent)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def delivery(self, cid: int, message_id: int, *, until: tuple[str, ...]) -> dict:
        async def state():
            msg = next(m for m in (await self.conversation(cid))["messages"] if m["id"] == message_id)
            return msg if msg["delivery"] and msg["delivery"]["state"] in until else None

        return await eventually(state, what=f"delivery {until}")

    async def spool_settled(self, done: int) -> dict:
        engine = make_engine(self.settings.effective_database_url)
        try:
            async def settled():
                c = await asyncio.to_thread(counts, engine)
                return c if c.get("done", 0) + c.get("rejected", 0) >= done and not c.get("pending") else None

            return await eventually(settled, what=f"{done} spooled updates processed")
        finally:
            engine.dispose()

    def db(self):
        return make_engine(self.settings.effective_database_url)


@contextlib.asynccontextmanager
async def fake_telegram():
    """The fake Bot API, serving the test bot."""
    server = FakeTelegram()
    server.add_bot(TOKEN, id=BOT_ID, username=BOT_USERNAME)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def hub_starter(settings, fake):
    """start(**settings overrides) -> TgHub: the app against `fake`, started on loopback, any
    number of times (a restart on the same store); every one is closed on exit."""
    started: list[TestClient] = []
    accounts: dict = {}

    async def start(**overrides) -> TgHub:
        values = dict(
            telegram_token=TOKEN,
            telegram_webhook_secret=SECRET,
            telegram_api_url=fake.url,
            public_url="https://hub.example",
        )
        values.update(overrides)
        hub_settings = settings.model_copy(update=values)
        app = create_app(hub_settings)
        if not accounts:
            engine = make_engine(hub_settings.effective_database_url)
            create_agent(engine, "agent@example.com", "agent password", role="agent")
            accounts["integration"] = {"Authorization": f"Bearer {create_token(engine, 'shop', role='integration')}"}
            engine.dispose()
        channel = app[REGISTRY].get("telegram")
        # Keep the test bounded: short long polls, quick retries.
        channel.poll_timeout = 1.0
        channel.retry_base_seconds = 0.05
        channel.retry_max_seconds = 0.2
        client = TestClient(TestServer(app))
        await client.start_server()
        started.append(client)
        resp = await client.post("/api/v1/auth/login", json={"email": "agent@example.com", "password": "agent password"})
        assert resp.status == 200
        agent = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        client.session.cookie_jar.clear()
        return TgHub(client, app, agent, accounts["integration"], fake, hub_settings)

    try:
        yield start
    finally:
        for client in started:
            await client.close()
