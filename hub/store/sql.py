"""Small SQL building blocks shared by the store's write paths (both dialects), and two ways to
run the ingest's statements: CoreStatements (through SQLAlchemy) and DriverStatements (the same
statements on the bare DBAPI cursor, for the hot path)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Connection, DateTime, Table, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError


def like_pattern(text: str) -> str:
    """'%text%' for LIKE ... ESCAPE '\\', the text's own % _ \\ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@contextmanager
def planner_off(conn: Connection, *methods: str) -> Iterator[None]:
    """PostgreSQL: the statements inside planned without these methods ("bitmapscan",
    "hashjoin", ...: enable_<method> off for the transaction), then back to what they were.
    Nothing elsewhere, or without methods. One round trip each way: a listing may do this
    three times, and a statement apiece cost it ~2 ms."""
    if conn.dialect.name != "postgresql" or not methods:
        yield
        return
    names = [f"enable_{m}" for m in methods]
    # The select list is evaluated left to right: each setting is read before it is changed.
    before = conn.execute(
        text("SELECT " + ", ".join(f"current_setting('{n}'), set_config('{n}', 'off', true)" for n in names))
    ).one()[::2]
    try:
        yield
    finally:
        restore = ", ".join(f"set_config('{n}', :v{i}, true)" for i, n in enumerate(names))
        conn.execute(text("SELECT " + restore), {f"v{i}": value for i, value in enumerate(before)})


@cache
def _insert_ignoring_conflict(dialect: str, table: Table):
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


def insert_ignoring_conflict(conn: Connection, table: Table, params: dict) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: None means the row existed.

    On PostgreSQL a conflicting insert waits for the other transaction and then reports the
    conflict, which is what makes concurrent ingest of the same input safe.
    """
    return conn.execute(_insert_ignoring_conflict(conn.dialect.name, table), params).scalar()


@cache
def _lock(table: Table):
    return table.select().with_only_columns(table.c.id).where(table.c.id == bindparam("id")).with_for_update()


def lock_row(conn: Connection, table: Table, row_id: int) -> None:
    """Serialise writers per row on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises all)."""
    if conn.dialect.name != "sqlite":
        conn.execute(_lock(table), {"id": row_id})


class CoreStatements:
    """The same interface as DriverStatements, through Connection.execute: for the careful path
    (savepoints, conflicts, merges), where SQLAlchemy's per-statement cost does not matter."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def first(self, stmt, params: dict):
        return self.conn.execute(stmt, params).first()

    def execute(self, stmt, params: dict) -> int:
        return self.conn.execute(stmt, params).rowcount

    def insert(self, table: Table, params: dict) -> int:
        return self.conn.execute(_plain_insert(table), params).inserted_primary_key[0]

    def insert_ignoring_conflict(self, table: Table, params: dict) -> int | None:
        return insert_ignoring_conflict(self.conn, table, params)

    def lock_row(self, table: Table, row_id: int) -> None:
        lock_row(self.conn, table, row_id)


# --- statements on the bare driver -------------------------------------------------------------
#
# SQLAlchemy Core costs ~20 µs per execute (cache lookup, execution context, parameter and result
# objects) where the statement itself takes 3-10 µs on SQLite: on the ingest hot path, which runs
# ~4.6 statements per message, that overhead was most of the time. The same Core statements,
# compiled once per dialect, run on the transaction's own DBAPI cursor cost ~1 µs of Python each.
# Only simple statements qualify (no expanding IN, no Python-side defaults that need a context);
# anything else falls back to Connection.execute, so callers never need to know.

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class _Compiled:
    """One statement compiled for one dialect: SQL text, how to order and convert the parameters,
    how to convert the result columns."""

    __slots__ = ("stmt", "sql", "positional", "names", "fixed", "binds", "results", "returns_id", "core_only")

    def __init__(self, stmt, dialect, keys: tuple[str, ...]):
        self.stmt = stmt  # keeps the statement alive: the cache is keyed on its id()
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        self.sql = compiled.string
        self.core_only = bool(compiled.post_compile_params or compiled.literal_execute_params or compiled.update_prefetch)
        by_name = {name: bp for bp, name in compiled.bind_names.items()}
        if compiled.positiontup is not None:
            self.positional, self.names = True, tuple(compiled.positiontup)
        else:
            self.positional, self.names = False, tuple(dict.fromkeys(_PLACEHOLDER.findall(self.sql)))
        # Values fixed in the statement (.values(status="open")) and scalar column defaults.
        self.fixed = {name: bp.value for name, bp in by_name.items() if not bp.required}
        if any(bp.callable is not None for bp in by_name.values()):
            self.core_only = True  # a value computed at execution time
        for col in compiled.insert_prefetch:
            if col.default is not None and col.default.is_scalar:
                self.fixed[col.key] = col.default.arg
            else:
                self.core_only = True  # a callable default needs SQLAlchemy's execution context
        self.binds = tuple(
            (name, _bind_processor(by_name[name].type, dialect))
            if name in by_name
            else (name, None)
            for name in self.names
        )
        self.returns_id = bool(stmt.is_insert and compiled.effective_returning)
        self.results = None
        if stmt.is_select or compiled.effective_returning:
            cols = stmt.selected_columns if stmt.is_select else compiled.effective_returning
            procs = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in cols)
            self.results = procs if any(procs) else None

    def args(self, params: dict):
        fixed = self.fixed
        values = [
            proc(params[name] if name in params else fixed[name]) if proc else (params[name] if name in params else fixed[name])
            for name, proc in self.binds
        ]
        return values if self.positional else dict(zip(self.names, values))

    def row(self, raw):
        if raw is None or self.results is None:
            return raw
        return tuple(proc(v) if proc else v for proc, v in zip(self.results, raw))


_shared_processors: dict[tuple, object] = {}


def _bind_processor(type_, dialect):
    """SQLAlchemy's bind processor for a type; for timestamps one shared per dialect that
    remembers its last input: a message binds the same `now` four to six times over several
    statements, and SQLite's datetime formatting is the costliest processor there is."""
    proc = type_.dialect_impl(dialect).bind_processor(dialect)
    if proc is None or type_._type_affinity is not DateTime:
        return proc
    key = (dialect.name, dialect.driver, repr(type_))
    if key not in _shared_processors:
        _shared_processors[key] = _last_value_memo(proc)
    return _shared_processors[key]


def _last_value_memo(proc):
    last = [(None, None)]  # (value, processed): swapped as one reference, so threads never tear it

    def process(value):
        seen, done = last[0]
        if value is seen and value is not None:
            return done
        done = proc(value)
        last[0] = (value, done)  # holding `value` keeps its id() from being reused
        return done

    return process


_compiled_cache: dict[tuple, _Compiled] = {}


def _compiled(stmt, dialect, keys: tuple[str, ...]) -> _Compiled:
    key = (id(stmt), dialect.name, dialect.driver, keys)
    found = _compiled_cache.get(key)
    if found is None or found.stmt is not stmt:
        found = _compiled_cache[key] = _Compiled(stmt, dialect, keys)
    return found


class DriverStatements:
    """Runs Core statements on a connection's DBAPI cursor, inside the connection's transaction.

    first() returns a plain tuple (values converted as SQLAlchemy would), insert() the new row's
    id. DBAPI errors are raised as SQLAlchemy's exceptions (IntegrityError, OperationalError...),
    and a lost connection is invalidated, exactly as Connection.execute does."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = conn.dialect.name == "sqlite"
        self._dbapi_conn = conn.connection.dbapi_connection
        self._cursor = self._dbapi_conn.cursor()
        self._error = conn.dialect.loaded_dbapi.Error
        self._locked: set[tuple[str, int]] = set()

    def _run(self, c: _Compiled, params: dict):
        args = c.args(params)
        cur = self._cursor
        try:
            cur.execute(c.sql, args)
        except self._error as exc:
            gone = self.dialect.is_disconnect(exc, self._dbapi_conn, cur)
            if gone:
                self.conn.invalidate(exc)
            raise DBAPIError.instance(
                c.sql, args, exc, self._error, connection_invalidated=gone, dialect=self.dialect
            ) from exc
        return cur

    def first(self, stmt, params: dict):
        c = _compiled(stmt, self.dialect, ())
        if c.core_only:
            return self.conn.execute(stmt, params).first()
        return c.row(self._run(c, params).fetchone())

    def execute(self, stmt, params: dict) -> int:
        """Run an UPDATE/DELETE; the number of rows it touched."""
        c = _compiled(stmt, self.dialect, ())
        if c.core_only:
            return self.conn.execute(stmt, params).rowcount
        return self._run(c, params).rowcount

    def insert(self, table: Table, params: dict) -> int:
        """INSERT one row; its id."""
        c = _compiled(_plain_insert(table), self.dialect, tuple(params))
        if c.core_only:
            return self.conn.execute(_plain_insert(table), params).inserted_primary_key[0]
        cur = self._run(c, params)
        return cur.fetchone()[0] if c.returns_id else cur.lastrowid

    def insert_ignoring_conflict(self, table: Table, params: dict) -> int | None:
        """INSERT ... ON CONFLICT DO NOTHING: the new id, or None when the row existed."""
        if not self.sqlite:
            c = _compiled(_insert_ignoring_conflict(self.dialect.name, table), self.dialect, tuple(params))
            row = self._run(c, params).fetchone()
            return row[0] if row is not None else None
        # SQLite: no RETURNING needed, the cursor says whether a row went in and its rowid.
        c = _compiled(_insert_or_nothing_sqlite(table), self.dialect, tuple(params))
        cur = self._run(c, params)
        return cur.lastrowid if cur.rowcount == 1 else None

    def lock_row(self, table: Table, row_id: int) -> None:
        # A row lock holds until the transaction ends (no savepoints on this path): once is enough.
        if not self.sqlite and (table.name, row_id) not in self._locked:
            self.first(_lock(table), {"id": row_id})
            self._locked.add((table.name, row_id))


def statements_for(conn: Connection) -> CoreStatements | DriverStatements:
    """The bare driver for a transaction without savepoints, unless something listens to the
    engine's cursor events (a query counter, tracing): then every statement goes through
    SQLAlchemy as before, so the listener sees it."""
    dispatch = conn.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return CoreStatements(conn)
    return DriverStatements(conn)


@cache
def _plain_insert(table: Table):
    return table.insert()


@cache
def _insert_or_nothing_sqlite(table: Table):
    return sqlite_insert(table).on_conflict_do_nothing()
