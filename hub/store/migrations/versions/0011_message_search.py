"""message search

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23

Full-text search over message text for the inbox's q=; hub/conversations/search/message_words.py says how
it is searched and kept up to date.

SQLite (with FTS5): `search_message`, an FTS5 table of words (unicode61, accents folded; rowid =
message id) that stores its own copy of the indexed text, so that a trigger can take a message
out without being told what was indexed. `search_message_state` holds the watermark: every
message up to `indexed_to` has been indexed (the background indexer starts at 0, so an existing
store is indexed after the upgrade, in batches, while searches read the rest with LIKE).
`search_message_stale` lists indexed messages whose text changed (an edit, an erasure): a trigger
takes them out of the index at once, and the indexer adds their new text. A deleted message that
was the newest lowers the watermark, since SQLite may give its id to the next message.

PostgreSQL: a GIN index on to_tsvector(search_words, text with spaces around CJK characters),
search_words being 'simple' with accents folded by unaccent where it exists; the expression must stay equal to hub.conversations.search.message_words.PG_DOCUMENT (a test checks it).

Where neither is possible the migration logs it and creates nothing; q= then compares message
text with LIKE. Every object is named search_* (see migration 0003).
"""
import logging

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SEARCH_MESSAGE = "search_message"
STATE = "search_message_state"
STALE = "search_message_stale"
PG_INDEX = "search_message_text_fts"
PG_CJK_PATTERN = "([\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff])"
PG_CONFIG = "search_words"
PG_DOCUMENT = f"to_tsvector('{PG_CONFIG}'::regconfig, regexp_replace(coalesce(text, ''), '{PG_CJK_PATTERN}', ' \\1 ', 'g'))"
TRIGGERS = ("search_message_update", "search_message_delete")


def _sqlite_upgrade(conn) -> None:
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {SEARCH_MESSAGE} USING fts5(text, tokenize='unicode61 remove_diacritics 2', columnsize=0)"
            )
    except Exception as exc:  # an SQLite built without FTS5
        log.warning("no full-text index for message search (%s): q= reads message text with LIKE", exc)
        return
    op.execute(f"CREATE TABLE {STATE} (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_to INTEGER NOT NULL)")
    op.execute(f"INSERT INTO {STATE} (id, indexed_to) VALUES (1, 0)")
    op.execute(f"CREATE TABLE {STALE} (message_id INTEGER PRIMARY KEY)")
    indexed = f"old.id <= (SELECT indexed_to FROM {STATE})"
    op.execute(
        f"CREATE TRIGGER search_message_update AFTER UPDATE OF text ON message "
        f"WHEN old.text IS NOT new.text AND {indexed} BEGIN "
        f"DELETE FROM {SEARCH_MESSAGE} WHERE rowid = old.id; "
        f"INSERT OR IGNORE INTO {STALE} (message_id) VALUES (old.id); END"
    )
    op.execute(
        f"CREATE TRIGGER search_message_delete AFTER DELETE ON message BEGIN "
        f"DELETE FROM {SEARCH_MESSAGE} WHERE rowid = old.id; "
        f"DELETE FROM {STALE} WHERE message_id = old.id; "
        f"UPDATE {STATE} SET indexed_to = (SELECT coalesce(max(id), 0) FROM message) "
        f"WHERE indexed_to > (SELECT coalesce(max(id), 0) FROM message); END"
    )


def _postgresql_upgrade(conn) -> None:
    # The words as 'simple' has them (no stemming: messages come in every language), with accents
    # folded by unaccent (contrib, like pg_trgm) where it can be created.
    op.execute(f"CREATE TEXT SEARCH CONFIGURATION {PG_CONFIG} (COPY = simple)")
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
            conn.exec_driver_sql(
                f"ALTER TEXT SEARCH CONFIGURATION {PG_CONFIG} ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"
            )
    except Exception as exc:  # not installed, or not allowed to create it
        log.warning("unaccent is not available (%s): message search compares accents as written", exc)
    # A new row's entries wait in the GIN pending list that every search reads through; 512 kB
    # keeps it short (see migration 0003).
    op.execute(f"CREATE INDEX {PG_INDEX} ON message USING gin (({PG_DOCUMENT})) WITH (gin_pending_list_limit = 512)")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_upgrade(conn)
    elif conn.dialect.name == "postgresql":
        _postgresql_upgrade(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for trigger in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for table in (SEARCH_MESSAGE, STATE, STALE):
            op.execute(f"DROP TABLE IF EXISTS {table}")
    elif conn.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {PG_CONFIG}")
