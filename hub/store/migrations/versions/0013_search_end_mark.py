"""inbox search: two-character texts through the trigram index (SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23

A text of two characters has no trigram, so the FTS5 index of migration 0003 could not find it:
the inbox checked the newest conversations, then ran the plain query over all of them (200-300
ms at 100,000 conversations for a text that matches nothing). But every occurrence of two
characters "ab" starts a trigram "ab?", except at the very end of a document. So every document
of `search_text` is now indexed with one character after its text, char(1) (hub.db.SEARCH_END;
a search text holding it is searched without the index): then "ab" is found as the trigrams
that start with it, read from the index's vocabulary by range (hub/conversations/search/).

SQLite, where `search_text` exists: the index is built again from the three columns with the
mark (the queue is emptied: the tables hold everything it held), and `search_text_terms`, an
fts5vocab table over it, lists its terms; it stores nothing. A table of the store rather than
one in each connection's temp schema: nothing to create per pooled connection, nothing that a
rolled-back read transaction undoes behind a flag; and where it is missing (a store not yet
migrated) the lookup fails, and two characters are searched without the index, not without the
documents' ends.
Cost: one rebuild of the index, in the migration's transaction: 0.6-1.3 s for a store of
100,000 conversations (50,000 with a subject), 40,000 customers and 48,000 addresses (138,000
documents), writers waiting meanwhile; the index grows by ~6% (the trigrams at the documents' ends).

PostgreSQL (pg_trgm), and an SQLite without the index: nothing.
"""

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SEARCH_TEXT = "search_text"
SEARCH_PENDING = "search_pending"
SEARCH_TERMS = "search_text_terms"
# (table, column, its number in search_text's rowid), as migration 0003 made them
SEARCHED = (("conversation", "subject", 0), ("customer", "name", 1), ("identity", "address", 2))
END = "char(1)"  # equal to hub.db.SEARCH_END_SQL (a test checks it)


def _has_index(conn) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM sqlite_master WHERE name = '{SEARCH_TEXT}'").first() is not None


def _rebuild(end: str) -> None:
    """The index from the tables, each document followed by `end` (SQL; '' for none). One
    statement in row id order, as FTS5 writes best: column by column (their numbers interleave)
    it took ~10 s at 100,000 conversations, against ~0.6 s."""
    op.execute(f"INSERT INTO {SEARCH_TEXT}({SEARCH_TEXT}) VALUES ('delete-all')")
    documents = " UNION ALL ".join(
        f"SELECT id * 4 + {kind} AS n, {f'{column} || {end}' if end else column} FROM {table} WHERE {column} IS NOT NULL"
        for table, column, kind in SEARCHED
    )
    op.execute(f"INSERT INTO {SEARCH_TEXT}(rowid, text) {documents} ORDER BY n")
    op.execute(f"DELETE FROM {SEARCH_PENDING}")  # what it held is in the tables


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite" or not _has_index(conn):
        return
    _rebuild(END)
    op.execute(f"CREATE VIRTUAL TABLE {SEARCH_TERMS} USING fts5vocab({SEARCH_TEXT}, row)")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    op.execute(f"DROP TABLE IF EXISTS {SEARCH_TERMS}")
    if _has_index(conn):
        _rebuild("")
