"""Engines and transactions for SQLite (embedded default) and PostgreSQL (scale-out).

Writes go through write_tx(): on SQLite it opens the transaction with BEGIN IMMEDIATE so two
writers never deadlock upgrading a read lock (SQLITE_BUSY mid-transaction); on PostgreSQL it is an
ordinary READ COMMITTED transaction and callers lock rows explicitly where races matter.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from hub.store import fold
from hub.store.fold import search_fold as search_fold  # the one folding of searched text, for the search

log = logging.getLogger(__name__)


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    # No pre-ping (a round trip per checkout); after a server restart the first statement on a
    # stale connection fails, SQLAlchemy drops the pool, and the caller's retry succeeds.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy (not the sqlite3 module) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash; only a power
        # loss can roll back the last few commits. That is the usual server trade-off.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Statement journals (and temporary tables) in memory: a statement on a table with
        # triggers keeps one, and spilled to a temporary file it cost ~15 µs per insert into a
        # table with the inbox's six indexes (the search triggers of migration 0003).
        cur.execute("PRAGMA temp_store=MEMORY")
        # What is deleted or overwritten is zeroed in the file, not left in free space where a
        # copy of the file would still show it: an erased customer must leave no byte behind
        # (hub/privacy/requests.py), nor may a processed raw mail or a merged search segment.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()
        # search_fold(text) for the inbox search's index and queries (hub/store/fold.py). Only the
        # hub's statements call it: the triggers do not, so a session of the sqlite3 shell (which
        # has no such function) can still write every table.
        fold.register(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN"
        # On the bare connection: through exec_driver_sql this cost ~25 µs a transaction, a
        # tenth of a one-message ingest. Errors are raised as SQLAlchemy's, as they would be.
        dbapi_conn = conn.connection.dbapi_connection
        try:
            dbapi_conn.execute(begin)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(begin, (), exc, sqlite3.Error, dialect=conn.dialect) from exc


# SQLite writers of one process queue on a lock of their own before BEGIN IMMEDIATE. SQLite's
# busy handler polls with sleeps of 1, 2, 5, 10... ms: a writer that finds the database locked by
# a sibling thread (the ingest writer and the outbox worker, say) would sleep for milliseconds
# after a transaction that took a fraction of one. Other processes still meet the busy timeout.
_WRITE_LOCK_WAIT = 30.0  # seconds; then go ahead and let SQLite's busy timeout decide
_write_locks: dict[str, threading.Lock] = {}
_engine_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: Engine) -> threading.Lock:
    lock = _engine_locks.get(engine)
    if lock is None:
        database = engine.url.database or ""
        key = os.path.realpath(database) if database and database != ":memory:" else f"{id(engine)}:memory"
        with _locks_guard:
            lock = _engine_locks[engine] = _write_locks.setdefault(key, threading.Lock())
    return lock


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed on normal exit and rolled back on an exception.

    On SQLite, after the commit, it also moves the rows the search triggers queued into the
    full-text index once there are enough of them (see _move_search_queue)."""
    if not is_sqlite(engine):
        with engine.connect() as conn, conn.begin():
            yield conn
        return
    lock = _sqlite_write_lock(engine)
    held = lock.acquire(timeout=_WRITE_LOCK_WAIT)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn
            # Committed (an exception above skips this): still holding the lock, move the
            # search queue into the index once it is long enough.
            _move_search_queue(engine, conn.connection.dbapi_connection, SEARCH_QUEUE_ROWS)
    finally:
        if held:
            lock.release()


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        with conn.begin():
            yield conn


# --- the inbox's full-text index on SQLite (migration 0003) -----------------------------------
#
# The triggers queue what to add to or remove from the FTS5 table in a plain table (committed
# with the change itself), and write_tx moves the queue into the index in one statement once it
# holds SEARCH_QUEUE_ROWS rows; searches read the queue too, so nothing queued is missed. Written
# by the triggers directly, FTS5 would flush a new segment at every later statement savepoint of
# a transaction, and every one-message transaction would write a segment of its own: ~100 µs each.
SEARCH_TEXT = "search_text"
SEARCH_QUEUE = "search_pending"
SEARCH_QUEUE_ROWS = 256
# (table, column, its number in a search_text rowid: row id * 4 + number), as migration 0003 made them
SEARCH_COLUMNS = (("conversation", "subject", 0), ("customer", "name", 1), ("identity", "address", 2))
# Every document is indexed with this character after its text (migration 0013): then every
# occurrence of two characters, the document's last two included, starts a trigram of the index,
# and a text of two characters is found through the index's terms (hub/conversations/search/substrings.py). No
# query holds it (a text that does is searched without the index). The queue keeps the text as
# it is (searches read it with LIKE): the mark is added where the text goes into the index, and a
# 'delete' passes it too (a contentless table forgets a document only when given what it indexed).
# So is the folding (search_fold, hub/store/fold.py: case, accents, compatibility forms; migration
# 0025): the index holds each text folded, the insert and the 'delete' fold it alike, and searches
# fold both sides of their LIKE on the queue.
SEARCH_END = "\x01"
SEARCH_END_SQL = "char(1)"
# The index's vocabulary (fts5vocab, migration 0013): its terms, found by range.
SEARCH_TERMS = "search_text_terms"
_search_queue_present: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
# Rows are numbered from 1 again once the queue is empty: the highest number is its length.
_QUEUE_LENGTH = f"SELECT max(seq) FROM {SEARCH_QUEUE}"
_MOVE_QUEUE = (
    f"INSERT INTO {SEARCH_TEXT}({SEARCH_TEXT}, rowid, text) "
    f"SELECT CASE WHEN remove THEN 'delete' END, n, search_fold(text) || {SEARCH_END_SQL} FROM {SEARCH_QUEUE} ORDER BY seq"
)
# Building the index again from the tables, for an index out of step with them. One statement in
# row id order, as FTS5 writes best: column by column (their numbers interleave) it took ~10 s
# for the 138,000 documents of a 100,000-conversation store, against ~0.6 s.
_REBUILD = (
    f"INSERT INTO {SEARCH_TEXT}({SEARCH_TEXT}) VALUES ('delete-all')",
    f"INSERT INTO {SEARCH_TEXT}(rowid, text) "
    + " UNION ALL ".join(
        f"SELECT id * 4 + {kind} AS n, search_fold({column}) || {SEARCH_END_SQL} FROM {table} WHERE {column} IS NOT NULL"
        for table, column, kind in SEARCH_COLUMNS
    )
    + " ORDER BY n",
    f"DELETE FROM {SEARCH_QUEUE}",  # what it held is in the tables
)


def _move_search_queue(engine: Engine, dbapi_conn, at_least: int) -> None:
    """Move the queued rows into the index in a transaction of its own, after the writer's
    committed: nothing that goes wrong here can undo a write. What is not moved stays queued
    (and found by searches) for the next time."""
    try:
        # Only a queue found is remembered: an engine made before `migrate` finds it later.
        if not _search_queue_present.get(engine):
            if dbapi_conn.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{SEARCH_QUEUE}'").fetchone() is None:
                return
            _search_queue_present[engine] = True
        queued = dbapi_conn.execute(_QUEUE_LENGTH).fetchone()[0]
        if not queued or queued < at_least:
            return
        _in_transaction(dbapi_conn, _MOVE_QUEUE, f"DELETE FROM {SEARCH_QUEUE}")
    except sqlite3.DatabaseError as exc:
        # A contentless FTS5 table forgets a document only when told exactly what it indexed:
        # a change made without the triggers (a table restored on its own, a hand edit) leaves
        # it out of step, and FTS5 may then fail. Build it again from the tables.
        log.error("the inbox search index is out of step with the store (%s); rebuilding it", exc)
        try:
            _in_transaction(dbapi_conn, *_REBUILD)
        except sqlite3.Error:
            log.exception("rebuilding the inbox search index failed; searches may miss conversations")
    except sqlite3.Error as exc:  # busy for 30 s (another process writing), say: next time
        log.warning("could not move the search queue into the index now: %s", exc)


def _in_transaction(dbapi_conn, *statements: str) -> None:
    dbapi_conn.execute("BEGIN IMMEDIATE")
    try:
        for sql in statements:
            dbapi_conn.execute(sql)
        dbapi_conn.execute("COMMIT")
    except BaseException:
        if dbapi_conn.in_transaction:
            dbapi_conn.execute("ROLLBACK")
        raise


def index_search_queue(engine: Engine) -> None:
    """Move every queued search row into the full-text index now (SQLite with the search index
    only; a no-op elsewhere). For bulk loads that write without write_tx."""
    if not is_sqlite(engine):
        return
    with engine.connect() as conn:
        _move_search_queue(engine, conn.connection.dbapi_connection, 1)


# Objects the store keeps outside the SQLModel metadata on purpose: the inbox's search indexes
# (migration 0003: FTS5 tables and their shadow tables on SQLite, pg_trgm indexes on PostgreSQL).
SEARCH_OBJECT_PREFIX = "search_"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object hook: compare and autogenerate leave the search indexes alone
    (they exist in the database but in no model)."""
    return not (reflected and compare_to is None and (name or "").startswith(SEARCH_OBJECT_PREFIX))
