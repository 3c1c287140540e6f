"""The store itself: migrations match the models, SQLite runs in WAL mode, migrating is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import hub.store.models  # noqa: F401
from hub.store.db import include_object, make_engine
from hub.store.migrate import head_revision, upgrade


def test_migrations_produce_exactly_the_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_migrating_twice_changes_nothing(db_url):
    upgrade(db_url)
    upgrade(db_url)
    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        assert {"customer", "identity", "conversation", "message", "outbox", "api_token", "agent"} <= set(
            inspect(eng).get_table_names()
        )
    finally:
        eng.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
    eng.dispose()


def test_unique_constraints_back_the_idempotency_rules(engine):
    insp = inspect(engine)
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("message")}
    assert ("channel", "external_id") in uniques
    assert ("kind", "address") in {tuple(u["column_names"]) for u in insp.get_unique_constraints("identity")}
    assert ("idempotency_key",) in {tuple(u["column_names"]) for u in insp.get_unique_constraints("outbox")}


def test_every_table_is_defined_in_the_models_package_and_exported_by_it():
    """Each table lives in the module of the capability that owns it (hub/store/models/<capability>.py),
    and `from hub.store.models import X` reaches all of them."""
    from hub.store import models

    exported = {getattr(models, name).__table__.name for name in models.__all__ if hasattr(getattr(models, name), "__table__")}
    assert exported == set(SQLModel.metadata.tables)
    for mapper in SQLModel._sa_registry.mappers:
        module = mapper.class_.__module__
        assert module.startswith("hub.store.models.") and module != "hub.store.models.base", (mapper.class_, module)
