"""Reading the store back in tests: rows of a table, and every text value anywhere in it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy import select

from hub.store.db import read_tx


def rows(engine, table, *where):
    with read_tx(engine) as conn:
        return conn.execute(select(table).where(*where).order_by(table.c.id)).all()


def every_text_value(engine):
    """(table, column, value) of every non-binary value of every table in the store, the search
    queue and shadow tables included."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with read_tx(engine) as conn:
        for table in meta.sorted_tables:
            if table.name == "search_text":  # contentless FTS5: nothing to read back; a test searches it instead
                continue
            for row in conn.execute(sa.select(table)):
                for col, value in row._mapping.items():
                    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
                        continue
                    yield table.name, col, json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
