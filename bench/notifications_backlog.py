#!/usr/bin/env python
"""What catching up after a long stop costs the notifications sweep (hub/notifications/sweep.py):
N conversations assigned while no hub ran, then swept from the saved watermark in batches, on
SQLite (or the database URL given).

    .venv/bin/python bench/notifications_backlog.py                 # 20,000 assignments, SQLite
    .venv/bin/python bench/notifications_backlog.py --assignments 100000 --url postgresql://...

Prints, per batch size: the passes it took, assignments told per second, and the slowest pass
(what the page's live announcements wait behind at most); then the same backlog with half of it
stale (reassigned since), which is skipped. Figures only: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The repository first, and not this folder: bench/email.py must not stand in for the stdlib's email.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from hub.auth.accounts import create_agent  # noqa: E402
from hub.notifications import sweep  # noqa: E402
from hub.store.db import make_engine, write_tx  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.models import AuditLog, Conversation, Customer, Notification, utcnow  # noqa: E402

conversation_t = Conversation.__table__


def seed(engine, n: int, stale_share: float) -> None:
    mia = create_agent(engine, "mia@example.com", "mia password", name="Mia")
    bo = create_agent(engine, "bo@example.com", "bo password", name="Bo")
    ada = create_agent(engine, "ada@example.com", "ada password", role="admin", name="Ada")
    sweep.start(engine)  # the hub ran once, then stopped
    now = utcnow()
    stale_every = round(1 / stale_share) if stale_share else 0
    with write_tx(engine) as conn:
        customer = conn.execute(Customer.__table__.insert().values(name="C", created_at=now, updated_at=now)).inserted_primary_key[0]
        for start in range(0, n, 5000):
            rows = range(start, min(n, start + 5000))
            conn.execute(conversation_t.insert(), [
                {"customer_id": customer, "channel": "email", "status": "open", "priority": "normal",
                 # a stale one: assigned to Mia in the log, held by Bo now
                 "assignee_id": bo if stale_every and i % stale_every == 0 else mia,
                 "last_message_at": now, "created_at": now, "updated_at": now} for i in rows])
        ids = list(conn.execute(sa.select(conversation_t.c.id).order_by(conversation_t.c.id)).scalars())
        for start in range(0, len(ids), 5000):
            conn.execute(AuditLog.__table__.insert(), [
                {"actor": f"agent:{ada}", "action": "conversation.update", "target": f"conversation:{cid}",
                 "detail": {"assignee_id": mia}, "created_at": now} for cid in ids[start:start + 5000]])


def run(url: str, n: int, batch: int, stale_share: float) -> list:
    engine = make_engine(url)
    seed(engine, n, stale_share)
    marks = sweep.start(engine)
    passes, slowest, told = 0, 0.0, 0
    began = time.monotonic()
    while True:
        t = time.monotonic()
        got = sweep.sweep(engine, marks, batch=batch)
        slowest = max(slowest, time.monotonic() - t)
        passes += 1
        told += got
        if not got and marks.audit >= n:
            break
    took = time.monotonic() - began
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Notification.__table__)).scalar()
    engine.dispose()
    return [batch, f"{stale_share:.0%}", passes, told, stored, f"{n / took:,.0f}", f"{slowest:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=20_000)
    parser.add_argument("--url", help="an empty database to migrate and use (default: a fresh SQLite file per run)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (batch, stale) in enumerate([(100, 0.0), (500, 0.0), (2000, 0.0), (500, 0.5)]):
            url = args.url or f"sqlite:///{tmp}/bench-{i}.db"
            if args.url and i:
                print("(--url: one run only, the store is not emptied between runs)")
                break
            upgrade(url)
            rows.append(run(url, args.assignments, batch, stale))
    print(f"{args.assignments:,} assignments recorded while no hub ran, swept on the next start")
    print(f"{'batch':>6} {'stale':>6} {'passes':>7} {'told':>8} {'stored':>8} {'assignments/s':>14} {'slowest pass s':>15}")
    for r in rows:
        print(f"{r[0]:>6} {r[1]:>6} {r[2]:>7} {r[3]:>8} {r[4]:>8} {r[5]:>14} {r[6]:>15}")


if __name__ == "__main__":
    main()
