"""inbox search: subjects, names and addresses folded for case and accents

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04

The inbox's substring search (hub/conversations/search/substrings.py) compared subjects, customers'
names and addresses case-insensitively but accent by accent: "chloe" did not find "Chloé Martin",
though the message search (migration 0011) folds accents. Now both sides of every comparison are
folded by a function called search_fold, on each database:

SQLite: search_fold is hub/store/fold.py's (compatibility decomposition, combining marks dropped,
FTS5's case folding, a few letters such as ß, ø, æ as unaccent spells them), registered on every
connection the hub opens (hub/store/db.py). The FTS5 index of migration 0003 is built again with
every text folded (and the end mark of 0013 after it): the triggers still queue the texts as
written, and the hub folds them where they move into the index. The triggers do not call the
function, so a session of the sqlite3 shell, which has none, can still write every table.
Cost: one rebuild of the index, as 0013's (0.6-1.3 s at 100,000 conversations), plus the
function, ~0.3 µs a text.

PostgreSQL: search_fold(text) = lower(unaccent('unaccent', text)), an SQL function declared
IMMUTABLE (unaccent() itself is only STABLE, since its dictionary could change: this one is not
changed by the hub) with every name schema-qualified, so that an index may use it whatever the
search_path of a restore or autovacuum; lower() alone where the unaccent extension cannot be
created. pg_trgm's indexes (0003) and the bigram indexes (0014) are made again on
search_fold(column), named *_fold_trgm / *_fold_bigrams (the names substrings.py probes).
Cost: building them, ~5-10 s at 100,000 conversations, writers on those tables waiting.

Every object is named search_* (see migration 0003).
"""
import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

from hub.store import fold

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SEARCH_TEXT = "search_text"
SEARCH_PENDING = "search_pending"
END = "char(1)"  # hub.store.db.SEARCH_END_SQL, as migration 0013 says
FUNCTION = "search_fold"
BIGRAMS = "search_bigrams"
# (table, column, its number in search_text's rowid, the trigram and bigram indexes before, now)
SEARCHED = (
    ("conversation", "subject", 0, "search_conversation_subject"),
    ("customer", "name", 1, "search_customer_name"),
    ("identity", "address", 2, "search_identity_address"),
)
# 512 kB pending lists, as migrations 0003 and 0014's: every search reads through them.
GIN = "WITH (gin_pending_list_limit = 512)"


def _sqlite_rebuild(conn, folding: bool) -> None:
    """The index from the tables, each document folded (or as written) with the end mark."""
    if conn.exec_driver_sql(f"SELECT 1 FROM sqlite_master WHERE name = '{SEARCH_TEXT}'").first() is None:
        return
    fold.register(conn.connection.dbapi_connection)  # whichever connection runs the migration
    op.execute(f"INSERT INTO {SEARCH_TEXT}({SEARCH_TEXT}) VALUES ('delete-all')")
    documents = " UNION ALL ".join(
        f"SELECT id * 4 + {kind} AS n, {f'{FUNCTION}({column})' if folding else column} || {END} "
        f"FROM {table} WHERE {column} IS NOT NULL"
        for table, column, kind, _ in SEARCHED
    )
    op.execute(f"INSERT INTO {SEARCH_TEXT}(rowid, text) {documents} ORDER BY n")
    op.execute(f"DELETE FROM {SEARCH_PENDING}")  # what it held is in the tables


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unaccent_schema(conn) -> str | None:
    """The schema of the unaccent extension (migration 0011 tried to create it), created now if
    it can be; None where it cannot."""
    find = "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'"
    schema = conn.exec_driver_sql(find).scalar()
    if schema is None:
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        except DBAPIError as exc:  # not installed (contrib), or not allowed to create it
            log.warning("unaccent is not available (%s): inbox search folds case, not accents", exc)
            return None
        schema = conn.exec_driver_sql(find).scalar()
    return schema


def _postgresql_upgrade(conn) -> None:
    schema = _unaccent_schema(conn)
    if schema is None:
        body = "pg_catalog.lower(t)"
    else:
        s = _quoted(schema)
        dictionary = f"{s}.unaccent".replace("'", "''")
        body = f"pg_catalog.lower({s}.unaccent('{dictionary}'::regdictionary, t))"
    op.execute(f"CREATE FUNCTION {FUNCTION}(t text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT {body} $$")
    trigrams = conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first() is not None
    bigrams = conn.exec_driver_sql(f"SELECT 1 FROM pg_proc WHERE proname = '{BIGRAMS}'").first() is not None
    for table, column, _, index in SEARCHED:
        if trigrams:
            op.execute(f"DROP INDEX IF EXISTS {index}_trgm")
            op.execute(f"CREATE INDEX {index}_fold_trgm ON {table} USING gin (({FUNCTION}({column})) gin_trgm_ops) {GIN}")
        if bigrams:
            op.execute(f"DROP INDEX IF EXISTS {index}_bigrams")
            op.execute(f"CREATE INDEX {index}_fold_bigrams ON {table} USING gin ({BIGRAMS}({FUNCTION}({column}))) {GIN}")


def _postgresql_downgrade(conn) -> None:
    for table, column, _, index in SEARCHED:
        if conn.exec_driver_sql(f"SELECT 1 FROM pg_indexes WHERE indexname = '{index}_fold_trgm'").first() is not None:
            op.execute(f"DROP INDEX {index}_fold_trgm")
            op.execute(f"CREATE INDEX {index}_trgm ON {table} USING gin ({column} gin_trgm_ops) {GIN}")
        if conn.exec_driver_sql(f"SELECT 1 FROM pg_indexes WHERE indexname = '{index}_fold_bigrams'").first() is not None:
            op.execute(f"DROP INDEX {index}_fold_bigrams")
            op.execute(f"CREATE INDEX {index}_bigrams ON {table} USING gin ({BIGRAMS}({column})) {GIN}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text)")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_rebuild(conn, folding=True)
    elif conn.dialect.name == "postgresql":
        _postgresql_upgrade(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_rebuild(conn, folding=False)
    elif conn.dialect.name == "postgresql":
        _postgresql_downgrade(conn)
