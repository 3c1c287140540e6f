#!/usr/bin/env python
"""What leaving no byte behind costs on SQLite: ingest and spool churn with PRAGMA secure_delete on
(as hub/store/db.py sets it) and off, and the time one erasure takes on a store of some size.

    .venv/bin/python bench/erase.py            # 20,000 messages (a minute or so)
    .venv/bin/python bench/erase.py --messages 100000

Prints:
  1. ingest_many() in batches of 100 (the web app's writer path), messages/s, on and off;
  2. spool churn: a 20 kB raw item spooled then processed (the row's payload cleared, as the spool
     does when done) and later deleted, items/s, on and off;
  3. erase_customer() of one customer with a few conversations, its seconds on a store of that
     size (most of it the search indexes' merge), and the database file's size before and after;
Figures only: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The repository first, this folder last: bench/email.py must not stand in for the stdlib's email.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

from _bench_workload import build_workload  # noqa: E402
from sqlalchemy import delete, event, update  # noqa: E402

from hub.contract.messages import InboundMessage, Sender  # noqa: E402
from hub.ingest.pipeline import ingest_many  # noqa: E402
from hub.ingest.spool import spool  # noqa: E402
from hub.privacy.requests import erase_customer  # noqa: E402
from hub.store.blobs import BlobStore  # noqa: E402
from hub.store.db import make_engine, write_tx  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.models import InboundSpool  # noqa: E402

spool_t = InboundSpool.__table__


def engine_with(path: Path, secure: bool):
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    if not secure:
        @event.listens_for(engine, "connect")
        def _off(dbapi_conn, _record):  # runs after hub/store/db.py's own hook
            dbapi_conn.execute("PRAGMA secure_delete=OFF")
    return engine


def bench_ingest(workdir: Path, n: int, secure: bool) -> float:
    engine = engine_with(workdir / f"ingest-{secure}.db", secure)
    msgs = build_workload(n).messages
    started = time.perf_counter()
    for i in range(0, len(msgs), 100):
        ingest_many(engine, msgs[i:i + 100])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return n / elapsed


def bench_spool(workdir: Path, n: int, secure: bool) -> float:
    engine = engine_with(workdir / f"spool-{secure}.db", secure)
    blobs = BlobStore(workdir / f"blobs-{secure}")
    raw = b"Received: from mx.example\r\n" + b"x" * 20_000
    started = time.perf_counter()
    for i in range(n):
        spool(engine, blobs, "email", f"k{i}", {"from": f"c{i}@example.com", "size": len(raw)}, raw + str(i).encode())
        with write_tx(engine) as conn:
            conn.execute(update(spool_t).where(spool_t.c.key == f"k{i}").values(status="done", payload={}))
        if i % 50 == 49:
            with write_tx(engine) as conn:
                conn.execute(delete(spool_t).where(spool_t.c.status == "done"))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return n / elapsed


def bench_erase(workdir: Path, n: int) -> tuple[float, int, int]:
    path = workdir / "erase.db"
    engine = engine_with(path, True)
    blobs = BlobStore(workdir / "erase-blobs")
    msgs = build_workload(n).messages
    for i in range(0, len(msgs), 200):
        ingest_many(engine, msgs[i:i + 200], blobs=blobs)
    target = ingest_many(engine, [InboundMessage("email", f"<erase-{i}@example.org>", Sender("erase.me@example.org", "Erase Me"),
                                                 f"Message {i} about my order", raw=f"From: erase.me@example.org\r\n\r\n{i}".encode())
                                  for i in range(5)], blobs=blobs)[0]
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    started = time.perf_counter()
    erase_customer(engine, blobs, target.customer_id, "bench")
    elapsed = time.perf_counter() - started
    after = path.stat().st_size
    engine.dispose()
    return elapsed, before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--spool-items", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="servicehub-erase-") as tmp:
        workdir = Path(tmp)
        print(f"SQLite, {args.messages:,} messages; secure_delete on (the hub's setting) vs off")
        for secure in (False, True):
            rate = bench_ingest(workdir, args.messages, secure)
            print(f"  ingest_many, batches of 100, secure_delete {'on ' if secure else 'off'}: {rate:8,.0f} messages/s")
        for secure in (False, True):
            rate = bench_spool(workdir, args.spool_items, secure)
            print(f"  spool churn, 20 kB raw items,  secure_delete {'on ' if secure else 'off'}: {rate:8,.0f} items/s")
        elapsed, before, after = bench_erase(workdir, args.messages)
        print(f"  erase_customer (5 messages with raw files) on that store: {elapsed:.2f} s; "
              f"database file {before / 1e6:.1f} MB before, {after / 1e6:.1f} MB after")


if __name__ == "__main__":
    main()
