"""The reports under 100,000 conversations: time of each report (hub/reports/queries.py) and its chart.

Builds the listing benchmark's dataset (bench/_bench_listing.py: 100,000 conversations and
300,000 messages over a year) in a fresh SQLite store, adds what the reports read (intents, SLA
targets, survey answers on a third of the resolved conversations, stock questions per day), then
times every report over the last 30 days and over the whole year (the worst case: every row in
range), and the SVG chart of each. Target: p95 well under a second for every report.

    .venv/bin/python bench/reports.py [--conversations 100000] [--messages 300000] [--reps 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The repository first; this folder's helpers last (bench/email.py must not shadow the stdlib).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bench_common import percentile, say, table
from _bench_listing import build_sqlite

TARGET_P95_MS = 1000.0
INTENTS = ("order_status", "stock", "delivery", "returns", "billing", "complaint", "other")


def prepare(path: str) -> None:
    """Intents, SLA targets, survey answers and demand on the built dataset (plain SQL, fast)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    cases = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(INTENTS))
    con.execute(f"UPDATE conversation SET intent = CASE id % {len(INTENTS)} {cases} END WHERE id % 5 <> 0")
    con.execute("UPDATE conversation SET first_response_due_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '+' || (id % 8) || ' hours'),"
                " resolution_due_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '+' || (id % 72) || ' hours')")
    con.execute("INSERT INTO csat (conversation_id, score, created_at) SELECT id, 1 + (id * 7) % 5, resolved_at FROM conversation"
                " WHERE resolved_at IS NOT NULL AND id % 3 = 0")
    con.execute("WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 364) "
                "INSERT INTO demand_count (day, sku, product_name, asked, unavailable, pushed_asked, pushed_unavailable, updated_at) "
                "SELECT date('now', '-' || n || ' days'), 'SKU-' || k.k, 'Product ' || k.k, 3 + (n + k.k) % 7, (n * k.k) % 4, 0, 0, "
                "strftime('%Y-%m-%d %H:%M:%f', 'now') FROM d, (SELECT 1 AS k UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 "
                "UNION SELECT 5 UNION SELECT 6 UNION SELECT 7 UNION SELECT 8) AS k")
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


def time_reports(engine, ranges, reps: int) -> list[list]:
    from hub.reports import queries as reports

    rows = []
    for label, rng in ranges:
        for name in reports.REPORTS:
            times, chart_times = [], []
            for i in range(reps + 2):
                started = time.perf_counter()
                report = reports.run(engine, name, rng)
                elapsed = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                reports.to_svg(report)
                charted = (time.perf_counter() - started) * 1000
                if i >= 2:  # the first runs warm the page cache
                    times.append(elapsed)
                    chart_times.append(charted)
            p95 = percentile(times, 95)
            rows.append([label, name, len(report["rows"]), f"{percentile(times, 50):.1f}", f"{p95:.1f}",
                         f"{percentile(chart_times, 50):.1f}", "yes" if p95 <= TARGET_P95_MS else "NO"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()

    from hub.reports import queries as reports
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    tmp = tempfile.mkdtemp(prefix="servicehub-bench-reports-")
    try:
        path = str(Path(tmp) / "servicehub.db")
        url = f"sqlite:///{path}"
        upgrade(url)
        say(f"building {args.conversations:,} conversations, {args.messages:,} messages ...")
        info = build_sqlite(path, args.conversations, args.messages)
        prepare(path)
        say(f"built in {info.build_seconds:.1f} s")
        engine = make_engine(url)
        ranges = [("last 30 days", reports.parse_range(None, None, "Europe/Berlin")),
                  ("last 365 days", reports.parse_range((reports.utcnow() - reports.timedelta(days=365)).date().isoformat(),
                                                        None, "Europe/Berlin"))]
        rows = time_reports(engine, ranges, args.reps)
        say(table(["range", "report", "rows", "p50 ms", "p95 ms", "chart p50 ms", f"p95 <= {TARGET_P95_MS:.0f} ms"], rows))
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
