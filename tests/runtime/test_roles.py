"""Process roles (hub/runtime/roles.py, hub/web/process.py) through a real aiohttp server: what a worker's listener
serves, what runs where, readiness while draining, and migrations started by several processes
at once."""

from __future__ import annotations

import threading

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from hub.auth.accounts import create_token
from hub.runtime import roles
from hub.store.db import is_sqlite, make_engine
from hub.store.migrate import head_revision, upgrade
from hub.web import process
from hub.web.app import create_app
from hub.web.keys import ELECTIONS, SETTINGS


async def _client(settings, role: str) -> TestClient:
    client = TestClient(TestServer(create_app(settings, role=role)))
    await client.start_server()
    return client


async def test_a_worker_serves_probes_and_figures_only(settings):
    client = await _client(settings, "worker")
    try:
        engine = make_engine(settings.effective_database_url)
        token = create_token(engine, "shop", role="integration")
        engine.dispose()
        resp = await client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 404 and "worker process" in (await resp.json())["error"]["message"]
        assert (await client.post("/api/v1/messages", json={})).status == 404
        assert (await client.get("/inbox")).status == 404
        live = await client.get("/livez")
        assert live.status == 200 and (await live.json()) == {"status": "ok", "role": "worker"}
        ready = await client.get("/readyz")
        assert ready.status == 200 and (await ready.json())["status"] == "ok"
        assert (await client.get("/healthz")).status == 200
        figures = await (await client.get("/metrics")).text()
        assert 'servicehub_process_role{role="worker"} 1.0' in figures
        assert client.app[SETTINGS].outbox_inline_worker and client.app[ELECTIONS].runs_loops
    finally:
        await client.close()


async def test_a_web_process_runs_no_loop_and_says_so(settings):
    client = await _client(settings, "web")
    try:
        assert not client.app[SETTINGS].outbox_inline_worker
        assert not client.app[ELECTIONS].runs_loops
        assert (await client.get("/api/v1/openapi.json")).status == 200
        body = await (await client.get("/readyz")).json()
        assert body == {"role": "web", "leases": [], "status": "ok", "database": "ok"}
    finally:
        await client.close()


async def test_draining_turns_readiness_off(settings):
    client = await _client(settings, "all")
    try:
        assert (await client.get("/readyz")).status == 200
        await process._drain(client.app)  # what SIGTERM starts (on_shutdown)
        resp = await client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["status"] == "draining"
        assert (await client.get("/livez")).status == 200  # alive: not to be restarted meanwhile
        assert client.app[ELECTIONS].held() == [] or is_sqlite(client.app[ELECTIONS].engine)
    finally:
        await client.close()


def test_an_unknown_role_is_refused(settings):
    with pytest.raises(ValueError, match="role must be one of"):
        roles.settings_for("leader", settings)


def test_processes_starting_at_once_migrate_one_at_a_time(pg_cluster):
    from tests.conftest import need

    cluster, reason = pg_cluster
    need(cluster is not None, reason or "PostgreSQL is not available")
    url = cluster.create_database("concurrent_migrations")
    errors: list[BaseException] = []

    def start():
        try:
            upgrade(url)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    engine.dispose()
