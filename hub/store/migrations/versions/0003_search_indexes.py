"""search indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Search indexes for the inbox: trigram full-text over subjects and customers.

The inbox's `q=` finds a text anywhere in a conversation's subject, its customer's name or one of
the customer's addresses (LIKE '%text%'). Without an index that is a scan of every conversation.

SQLite (>= 3.34, with FTS5): one contentless FTS5 table with the trigram tokenizer, `search_text`,
holding the three searched columns as separate documents (rowid = row id * 4 + which column). Only
the column is indexed: which customer an address belongs to is read from `identity` at query
time, so merging customers needs no change to the index.

Triggers keep it in step, but through a queue: they append what to add or remove to the plain
table `search_pending`, and hub.db.write_tx moves the queue into `search_text` at the end of the
transaction, in one statement. Written directly by the triggers, FTS5 would flush its pending
terms into a new segment at every later statement of the transaction (it does on each statement
savepoint): ~25 µs more per indexed row on a batched ingest. A transaction that does not go
through write_tx leaves its rows queued for the next one; until then the inbox searches with the
plain query (hub/conversations/search/ looks at the queue first). The triggers fire only when a
searched column is written (never on the ingest's `last_message_at` / status updates) and skip
NULLs (chats and calls have no subject).

PostgreSQL: GIN indexes with pg_trgm's gin_trgm_ops on the same three columns (ILIKE uses them;
hub/conversations/search/ tells the planner to, for that one query).

Where neither is possible (an SQLite without FTS5 or older than 3.34; a PostgreSQL where pg_trgm
cannot be created), the migration logs it and creates nothing; the inbox then keeps searching
with the plain query (hub/conversations/search/ checks what exists).

Every object is named search_*: the model comparison in the tests, and autogenerate, leave such
reflected objects alone (they are not SQLModel tables).
"""
import logging
import sqlite3

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SEARCH_TEXT = "search_text"
SEARCH_PENDING = "search_pending"
# (table, column, its number in search_text's rowid, the PostgreSQL index)
SEARCHED = (
    ("conversation", "subject", 0, "search_conversation_subject_trgm"),
    ("customer", "name", 1, "search_customer_name_trgm"),
    ("identity", "address", 2, "search_identity_address_trgm"),
)
SQLITE_TRIGRAM = (3, 34, 0)


def _sqlite_upgrade(conn) -> None:
    if sqlite3.sqlite_version_info < SQLITE_TRIGRAM:
        log.warning("SQLite %s has no trigram tokenizer (3.34+): inbox search stays a scan", sqlite3.sqlite_version)
        return
    try:
        with conn.begin_nested():
            # contentless: the rows are in their own tables; columnsize=0: no per-row size table
            # (only ranking uses it), one write less per row.
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {SEARCH_TEXT} USING fts5(text, content='', tokenize='trigram', columnsize=0)"
            )
    except Exception as exc:  # an SQLite built without FTS5
        log.warning("no full-text index for inbox search (%s): searches stay a scan", exc)
        return
    # remove = 1: a contentless FTS5 table forgets a document by being told exactly what it indexed.
    op.execute(
        f"CREATE TABLE {SEARCH_PENDING} (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, text TEXT NOT NULL, "
        "remove INTEGER NOT NULL)"
    )
    for table, column, kind, _ in SEARCHED:
        new, old, name = f"new.{column}", f"old.{column}", f"{SEARCH_TEXT}_{table}"
        queue = f"INSERT INTO {SEARCH_PENDING}(n, text, remove)"
        add = f"{queue} SELECT new.id * 4 + {kind}, {new}, 0 WHERE {new} IS NOT NULL;"
        remove = f"{queue} SELECT old.id * 4 + {kind}, {old}, 1 WHERE {old} IS NOT NULL;"
        op.execute(f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {add} END")
        op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {remove} END")
        op.execute(
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {column} ON {table} "
            f"WHEN {old} IS NOT {new} BEGIN {remove} {add} END"
        )
        op.execute(
            f"INSERT INTO {SEARCH_TEXT}(rowid, text) SELECT id * 4 + {kind}, {column} FROM {table} WHERE {column} IS NOT NULL"
        )


def _postgresql_upgrade(conn) -> None:
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # not installed (contrib), or not allowed to create it
        log.warning("pg_trgm is not available (%s): inbox search stays a scan", exc)
        return
    for table, column, _, index in SEARCHED:
        # New entries wait in a pending list that every search reads through; 512 kB instead of
        # the default 4 MB keeps that short (searches took 3-8 ms longer at 10,000 rows).
        op.execute(
            f"CREATE INDEX {index} ON {table} USING gin ({column} gin_trgm_ops) WITH (gin_pending_list_limit = 512)"
        )


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_upgrade(conn)
    elif conn.dialect.name == "postgresql":
        _postgresql_upgrade(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for table, _, _, _ in SEARCHED:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {SEARCH_TEXT}_{table}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {SEARCH_TEXT}")
        op.execute(f"DROP TABLE IF EXISTS {SEARCH_PENDING}")
    elif conn.dialect.name == "postgresql":
        # The pg_trgm extension stays: something else may use it by now.
        for _, _, _, index in SEARCHED:
            op.execute(f"DROP INDEX IF EXISTS {index}")
