"""A hub for a test, built the same way in every module: settings as a test wants them (a fresh store,
fast outbox polls, no sign-in rate limit, no model warm-up, no automatic assignment), agents,
conversations as customers send them, and the app served on loopback.

    settings = make_settings(tmp_path, fresh_sqlite(tmp_path, sqlite_template))
    engine = make_engine(settings.effective_database_url)
    ada = add_agent(engine, "Ada Lovelace", role="admin")    # ada@example.com / "ada password"
    first = seed_conversation(engine, 1)                     # "question 1" from Customer 1
    async with serve_app(settings, engine) as hub:           # hub.base, hub.engine
        ...

Each module still says what its hub holds; only the way of building it is shared.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp.test_utils import TestServer
from sqlalchemy import Engine

from hub.auth.accounts import create_agent
from hub.config.settings import KnowledgeSettings, Settings, SlaSettings
from hub.contract.messages import InboundMessage, Sender
from hub.contract.principal import Principal
from hub.ingest.pipeline import IngestResult, ingest
from hub.web.app import create_app
from tests.support.serverproc import free_port


def fresh_sqlite(tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of a migrated, empty SQLite store of the test's own (a copy of the session's template)."""
    db = tmp_path / "servicehub.db"
    shutil.copy(sqlite_template, db)
    return f"sqlite:///{db}"


def make_settings(tmp_path: Path, database_url: str, *, port: int | None = None, **overrides) -> Settings:
    """Settings for a test's hub, served (serve_app) on `port`, a free one by default: the links
    it writes point there. Keyword overrides win, e.g. sla=SlaSettings() for automatic assignment."""
    values = dict(
        data_dir=tmp_path / "data", database_url=database_url, outbox_poll_seconds=0.05, login_rate_per_minute=1000,
        # The knowledge base's model loads when a search needs it, not at start (slow, and the
        # CPU is shared); automatic assignment would change the assignees a test sets.
        kb=KnowledgeSettings(warm_up=False), sla=SlaSettings(assignment="off"),
    )
    values["public_url"] = f"http://127.0.0.1:{port or free_port()}"
    values.update(overrides)
    return Settings(**values)


def add_agent(engine: Engine, name: str, *, role: str = "agent", email: str | None = None,
              password: str | None = None) -> Principal:
    """An agent (or admin) by name; the email and password default to the first name's:
    "Ada Lovelace" signs in as ada@example.com with "ada password"."""
    first = name.split()[0].lower()
    email = email or f"{first}@example.com"
    agent_id = create_agent(engine, email, password or f"{first} password", role=role, name=name)
    return Principal("agent", agent_id, role, email)


def seed_conversation(engine: Engine, n: int, **fields) -> IngestResult:
    """A customer's message, stored as a channel hands it over: by default an email, the n-th
    customer's ("Customer n", cn@example.com) "question n"; any InboundMessage field can be given."""
    fields.setdefault("channel", "email")
    fields.setdefault("external_id", f"<m{n}@example.com>")
    fields.setdefault("sender", Sender(f"c{n}@example.com", f"Customer {n}"))
    fields.setdefault("text", f"question {n}")
    return ingest(engine, InboundMessage(**fields))


@asynccontextmanager
async def serve_app(settings: Settings, engine: Engine) -> AsyncIterator[TestServer]:
    """The app served on 127.0.0.1 at the port of the settings' public_url (a browser can reach it);
    the server carries .engine and .base. The server stops and the engine is disposed at the end."""
    port = urlsplit(settings.public_url).port
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await server.start_server()
    server.engine, server.base = engine, f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        await server.close()
        engine.dispose()
