"""The raw ceiling: the rows ingest() writes for a workload, written with the bare driver.

No look-ups and no ORM: identities and conversations are remembered in Python dicts (the plan in
_bench_workload says which message opens what), so what is left is the driver, the SQL engine,
the indexes and the commits. That is the most any ingest path could do on this schema.

Per message: INSERT customer + identity when the sender is new; INSERT conversation when the
message opens one, else UPDATE conversation (status, last_message_at, updated_at); INSERT message.
Committed every `batch` messages (batch=1: one transaction per message).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from _bench_common import SQLITE_TS
from _bench_workload import Workload

_SQLITE = {
    "customer": "INSERT INTO customer (name, segment, merged_into, created_at, updated_at) VALUES (?, 'general', NULL, ?, ?)",
    "identity": "INSERT INTO identity (customer_id, kind, address, display_name, verified, created_at) VALUES (?, ?, ?, ?, 0, ?)",
    "conversation": (
        "INSERT INTO conversation (customer_id, channel, thread_key, subject, status, priority, last_message_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'open', 'normal', ?, ?, ?)"
    ),
    "touch": "UPDATE conversation SET status = 'open', last_message_at = ?, updated_at = ? WHERE id = ?",
    "message": (
        "INSERT INTO message (conversation_id, direction, channel, external_id, identity_id, subject, text, html, sent_at, created_at, metadata)"
        " VALUES (?, 'inbound', ?, ?, ?, ?, ?, NULL, ?, ?, ?)"
    ),
}

_PG = {
    "customer": "INSERT INTO customer (name, segment, merged_into, created_at, updated_at) VALUES (%s, 'general', NULL, %s, %s) RETURNING id",
    "identity": (
        "INSERT INTO identity (customer_id, kind, address, display_name, verified, created_at) VALUES (%s, %s, %s, %s, false, %s) RETURNING id"
    ),
    "conversation": (
        "INSERT INTO conversation (customer_id, channel, thread_key, subject, status, priority, last_message_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, 'open', 'normal', %s, %s, %s) RETURNING id"
    ),
    "touch": "UPDATE conversation SET status = 'open', last_message_at = %s, updated_at = %s WHERE id = %s",
    "message": (
        "INSERT INTO message (conversation_id, direction, channel, external_id, identity_id, subject, text, html, sent_at, created_at, metadata)"
        " VALUES (%s, 'inbound', %s, %s, %s, %s, %s, NULL, %s, %s, %s::json) RETURNING id"
    ),
}


def raw_sqlite(path: str, wl: Workload, batch: int) -> float:
    """Seconds to write the workload with the sqlite3 module (same PRAGMAs as hub.store.db)."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    cur = con.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    idents: dict[tuple[str, str], tuple[int, int]] = {}
    convs: dict[int, int] = {}
    planned = wl.planned
    q = _SQLITE
    utc = UTC
    started = time.perf_counter()
    for start in range(0, len(planned), batch):
        cur.execute("BEGIN IMMEDIATE")
        for p in planned[start : start + batch]:
            msg = p.msg
            now = datetime.now(utc).strftime(SQLITE_TS)
            ids = idents.get(p.ident)
            if ids is None:
                cur.execute(q["customer"], (p.name, now, now))
                customer_id = cur.lastrowid
                cur.execute(q["identity"], (customer_id, p.ident[0], p.ident[1], p.name, now))
                ids = idents[p.ident] = (customer_id, cur.lastrowid)
            if p.conv_new:
                cur.execute(q["conversation"], (ids[0], msg.channel, msg.thread.thread_key, p.conv_subject, now, now, now))
                conversation_id = convs[p.conv_key] = cur.lastrowid
            else:
                conversation_id = convs[p.conv_key]
                cur.execute(q["touch"], (now, now, conversation_id))
            cur.execute(
                q["message"],
                (conversation_id, msg.channel, msg.external_id, ids[1], msg.subject, msg.text, now, now, p.meta_json),
            )
        cur.execute("COMMIT")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def raw_postgres(conninfo: str, wl: Workload, batch: int) -> float:
    """Seconds to write the workload with psycopg (server-side prepared after a few executions)."""
    import psycopg

    idents: dict[tuple[str, str], tuple[int, int]] = {}
    convs: dict[int, int] = {}
    planned = wl.planned
    q = _PG
    utc = UTC
    with psycopg.connect(conninfo) as con:
        cur = con.cursor()
        started = time.perf_counter()
        for start in range(0, len(planned), batch):
            for p in planned[start : start + batch]:
                msg = p.msg
                now = datetime.now(utc)
                ids = idents.get(p.ident)
                if ids is None:
                    customer_id = cur.execute(q["customer"], (p.name, now, now)).fetchone()[0]
                    identity_id = cur.execute(q["identity"], (customer_id, p.ident[0], p.ident[1], p.name, now)).fetchone()[0]
                    ids = idents[p.ident] = (customer_id, identity_id)
                if p.conv_new:
                    conversation_id = cur.execute(
                        q["conversation"], (ids[0], msg.channel, msg.thread.thread_key, p.conv_subject, now, now, now)
                    ).fetchone()[0]
                    convs[p.conv_key] = conversation_id
                else:
                    conversation_id = convs[p.conv_key]
                    cur.execute(q["touch"], (now, now, conversation_id))
                cur.execute(
                    q["message"],
                    (conversation_id, msg.channel, msg.external_id, ids[1], msg.subject, msg.text, now, now, p.meta_json),
                ).fetchone()
            con.commit()
        seconds = time.perf_counter() - started
    return seconds
