"""Small SQL building blocks shared by the store's write paths (both dialects)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


@lru_cache(maxsize=None)
def _insert_ignoring_conflict(dialect: str, table: Table):
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


def insert_ignoring_conflict(conn: Connection, table: Table, params: dict) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: None means the row existed.

    On PostgreSQL a conflicting insert waits for the other transaction and then reports the
    conflict, which is what makes concurrent ingest of the same input safe.
    """
    return conn.execute(_insert_ignoring_conflict(conn.dialect.name, table), params).scalar()


@lru_cache(maxsize=None)
def _lock(table: Table):
    return table.select().with_only_columns(table.c.id).where(table.c.id == bindparam("id")).with_for_update()


def lock_row(conn: Connection, table: Table, row_id: int) -> None:
    """Serialise writers per row on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises all)."""
    if conn.dialect.name != "sqlite":
        conn.execute(_lock(table), {"id": row_id})
