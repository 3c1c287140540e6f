"""Test fixtures: every store test runs on SQLite and on a real PostgreSQL cluster that the
session starts (tests/support/pgcluster.py) and removes after.

A test that needs a system package skips when it is missing locally; under CI=true a missing
dependency fails instead, so CI can never go green by skipping.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from hub.config.settings import KnowledgeSettings, Settings, SlaSettings
from hub.contract import clock
from hub.runtime import heap
from hub.store.db import make_engine
from hub.store.migrate import upgrade

# The shared fixtures live in shared/ beside the repository (as CI lays it out): ../shared/fixtures.
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

IN_CI = os.environ.get("CI", "").lower() == "true"

# This process starts hundreds of apps: the garbage collection each start makes before setting the
# hub's long-lived objects aside would cost ~0.5 s apiece (tests/runtime/test_heap.py turns it on).
heap.ENABLED = False


def need(condition: bool, reason: str) -> None:
    """Skip locally when a system dependency is missing; fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing system dependency under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def frozen_clock():
    """hub.contract.clock stands still at the instant the test starts (a FixedClock the test may move): a
    test comparing fixture dates with "today" sees one day throughout, even run across midnight."""
    with clock.use(clock.FixedClock(clock.now())) as fixed:
        yield fixed


@pytest.fixture(scope="session")
def pg_cluster():
    from tests.support.pgcluster import PostgresMissing, start_cluster

    try:
        cluster = start_cluster()
    except PostgresMissing as exc:
        cluster = None
        reason = str(exc)
    else:
        reason = ""
    if cluster is None:
        yield None, reason
        return
    template = cluster.create_database("servicehub_template")
    upgrade(template)
    yield cluster, ""
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "servicehub.db"
    upgrade(f"sqlite:///{path}")
    return path


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template) -> str:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        target = tmp_path / "servicehub.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    cluster, reason = request.getfixturevalue("pg_cluster")
    need(cluster is not None, reason or "PostgreSQL is not available")
    return cluster.create_database(f"t{os.getpid()}_{next(_db_counter)}", template="servicehub_template")


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        outbox_poll_seconds=0.05,
        outbox_backoff_base_seconds=0.01,
        outbox_backoff_max_seconds=0.05,
        login_rate_per_minute=1000,
        # Tests that are not about the knowledge base do not load the embedding model at start
        # (a search still loads it); tests/kb/test_kb_api.py switches warm-up back on.
        kb=KnowledgeSettings(warm_up=False),
        # Automatic assignment writes "assigned to ..." system messages into conversations; the
        # tests about it (test_assignment.py, test_inbox_sla.py) switch it on themselves.
        sla=SlaSettings(assignment="off"),
    )
