#!/usr/bin/env python
"""The customer panel's and the mentions' costs, printed: what the conversation page adds per view
(the panel's notes, attributes and tags; the duplicate suggestions) on a store of N customers who
asked about orders, and @mention parsing of long notes full of "@".

    .venv/bin/python bench/customer_panel.py                 # 5,000 customers
    .venv/bin/python bench/customer_panel.py --customers 20000

Times are CPU seconds of this process (time.process_time), median and p95 of the repeats: the
machine is shared, and wall time would measure the neighbours. Figures only: nothing asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and bench/email.py is named like the
# stdlib's email package: take the folder off the path before anything imports `email`.
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from hub.conversations.mentions import directory, find  # noqa: E402
from hub.customers import duplicates, panel  # noqa: E402
from hub.store.db import make_engine, write_tx  # noqa: E402
from hub.store.migrate import upgrade  # noqa: E402
from hub.store.models import Conversation, Customer, Identity, Message, ScmFact, utcnow  # noqa: E402


def seed(engine, n: int) -> None:
    now = utcnow()
    with write_tx(engine) as conn:
        conn.execute(insert(Customer.__table__), [{"id": i, "name": f"Customer {i % (n // 2)}", "segment": "general",
                                                   "created_at": now, "updated_at": now} for i in range(1, n + 1)])
        conn.execute(insert(Identity.__table__), [{"id": i, "customer_id": i, "kind": "email", "address": f"c{i}@example.com",
                                                   "verified": True, "created_at": now} for i in range(1, n + 1)])
        conn.execute(insert(Conversation.__table__), [{"id": i, "customer_id": i, "channel": "email", "status": "open",
                                                       "priority": "normal", "created_at": now, "updated_at": now,
                                                       "last_message_at": now} for i in range(1, n + 1)])
        conn.execute(insert(Message.__table__), [{"id": i, "conversation_id": i, "direction": "inbound", "channel": "email",
                                                  "identity_id": i, "text": "where is my order?", "sent_at": now,
                                                  "created_at": now, "metadata": {}} for i in range(1, n + 1)])
        # Two customers per order, as the namesakes above: every customer has a duplicate to find.
        conn.execute(insert(ScmFact.__table__), [{"conversation_id": i, "message_id": i, "kind": "order",
                                                  "subject": f"SO-{i % (n // 2)}", "created_at": now,
                                                  "payload": {"ref": f"SO-{i % (n // 2)}", "owner_email": f"c{i}@example.com"}}
                                                 for i in range(1, n + 1)])


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        runs.append(time.process_time() - t)
    runs.sort()
    return statistics.median(runs) * 1000, runs[int(len(runs) * 0.95) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        engine = make_engine(url)
        seed(engine, args.customers)
        mid = args.customers // 2 + 1
        print(f"store: {args.customers:,} customers, each with an order fact shared with a namesake (SQLite)")
        for name, fn in (("panel.panel (notes, attributes, tags)", lambda: panel.panel(engine, mid)),
                         ("duplicates.suggestions", lambda: duplicates.suggestions(engine, mid))):
            med, p95 = timed(fn, args.repeat)
            print(f"  {name:42s} median {med:7.2f} ms   p95 {p95:7.2f} ms")
        engine.dispose()
    keys = directory([{"id": i, "name": f"Agent Number{i}", "email": f"a{i}@example.com"} for i in range(50)])
    print("mentions.find, 50 agents, a note of '@Agent Number7 hello @nobody x' repeated:")
    for size in (10_000, 100_000):
        text = ("@Agent Number7 hello @nobody x " * (size // 30 + 1))[:size]
        med, p95 = timed(lambda text=text: find(text, keys), 5)
        print(f"  {size:>9,} characters  median {med:8.1f} ms   ({med / size * 1000:.2f} ms per 1,000 characters)")


if __name__ == "__main__":
    main()
