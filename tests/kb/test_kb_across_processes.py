"""Two hub apps on one PostgreSQL, each with its own index directory (as two processes would be):
an article written through one is found through the other at once, not at the other's next
periodic sync, and without being encoded again (its vectors are stored with its passages)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from hub.auth.accounts import create_agent
from hub.store.db import is_sqlite, make_engine
from hub.web.app import create_app
from hub.web.keys import KB_INDEX
from tests.support.waiting import wait_until


async def _app(settings, name: str) -> TestClient:
    # A periodic sync far away: only the other process's announcement can explain a quick update.
    kb = settings.kb.model_copy(update={"warm_up": True, "sync_seconds": 600.0, "index_dir": settings.data_dir / f"kb-{name}"})
    client = TestClient(TestServer(create_app(settings.model_copy(update={"kb": kb}), role="web")))
    await client.start_server()
    index = client.app[KB_INDEX]
    await wait_until(lambda: index.ready, timeout=120, what="the knowledge base to load")
    return client


async def test_an_article_written_through_one_process_is_found_through_the_other(settings):
    if is_sqlite(make_engine(settings.effective_database_url)):
        pytest.skip("one process on SQLite")
    one = await _app(settings, "one")
    two = await _app(settings, "two")
    try:
        engine = make_engine(settings.effective_database_url)
        create_agent(engine, "admin@example.com", "admin password", role="admin")
        login = await (await one.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "admin password"})).json()
        admin = {"Authorization": f"Bearer {login['token']}"}
        resp = await one.post("/api/v1/kb/articles", headers=admin, json={
            "title": "Returning a parcel", "body": "To return a parcel, print the prepaid label from your order page "
                                                  "and drop the parcel at any post office within 30 days."})
        assert resp.status == 201, await resp.text()
        article = (await resp.json())["id"]
        with engine.connect() as conn:  # the vectors are stored by the process that wrote the article
            stored = conn.execute(text("SELECT count(*), count(vector) FROM kb_chunk WHERE article_id = :a"), {"a": article}).one()
        assert stored[0] > 0 and stored[0] == stored[1]

        async def found() -> bool:
            resp = await two.get("/api/v1/kb/search", params={"q": "how do I return a parcel"}, headers=admin)
            hits = (await resp.json()).get("hits", []) if resp.status == 200 else []
            return any(h.get("article_id") == article for h in hits)

        for _ in range(100):
            if await found():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the other process did not find the new article within 10 s")
        engine.dispose()
    finally:
        await one.close()
        await two.close()
