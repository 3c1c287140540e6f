#!/usr/bin/env python
"""Ingest and inbox-listing benchmark, on SQLite and on a throw-away PostgreSQL cluster.

    .venv/bin/python bench/ingest.py                 # full run, both backends (a few minutes)
    .venv/bin/python bench/ingest.py --quick         # smaller, for a smoke run
    .venv/bin/python bench/ingest.py --backend sqlite --conversations 100000 --messages 1000000

Per backend it prints (and writes to bench/results/ingest-<backend>.json):
  1. in-process ingest(): one message per call and transaction; ingest_many() in batches (the
     group-commit path the web app's writer uses), over a realistic mix of senders and threads;
  2. POST /api/v1/messages with 32 concurrent clients against `servicehub serve` in its own process;
  3. the raw ceiling: the same rows written with the bare driver (sqlite3 / psycopg), batched the
     same way and one transaction per message, and the ratios ingest / raw;
  4. list_conversations() latency per filter over a bulk-built store (100k conversations,
     1M messages by default), with the query plan of each filter;
  5. peak RSS of this process and of the server process.
Figures only: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# The repository first; this folder's helpers last, after the standard library, so that
# bench/email.py never stands in for the stdlib's `email` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

from _bench_common import Timer, fmt_num, loadavg, peak_rss_mb, phase_peak_rss_mb, rate, reset_peak_rss, say, table  # noqa: E402
from _bench_workload import build_workload, http_bodies  # noqa: E402

RESULTS = BENCH / "results"
TARGET_INGEST_RATE = 3000.0
TARGET_RAW_RATIO = 0.30
TARGET_LIST_P95_MS = 50.0
# The embedded default, SQLite. On PostgreSQL on the same two cores the database server's own
# processes share them, and raw psycopg inserts alone stay under this rate (its ratio is printed).
TARGET_HTTP_RATE = 1500.0


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    ap.add_argument("--conversations", type=int, help="listing dataset conversations (default 100000; quick 10000)")
    ap.add_argument("--messages", type=int, help="listing dataset messages (default 1000000; quick 100000)")
    ap.add_argument("--ingest-messages", type=int, help="messages per in-process ingest run (default 20000; quick 3000)")
    ap.add_argument("--http-messages", type=int, help="timed POSTs (default 10000; quick 2000)")
    ap.add_argument("--senders", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100, help="ingest_many / raw batch size")
    ap.add_argument("--concurrency", type=int, default=32, help="concurrent HTTP clients")
    ap.add_argument("--reps", type=int, help="listing repetitions per filter (default 200; quick 50)")
    ap.add_argument("--list-budget", type=float, default=20.0, help="max seconds per listing filter")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: inprocess,raw,http,listing")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of ingest_many (top functions)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    quick = args.quick
    args.conversations = args.conversations or (10_000 if quick else 100_000)
    args.messages = args.messages or (100_000 if quick else 1_000_000)
    args.ingest_messages = args.ingest_messages or (3_000 if quick else 20_000)
    args.http_messages = args.http_messages or (2_000 if quick else 10_000)
    args.reps = args.reps or (50 if quick else 200)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


# --- databases -------------------------------------------------------------------------------


class SqliteStore:
    name = "sqlite"

    def __init__(self, workdir: Path):
        from hub.store.migrate import upgrade

        self.dir = workdir / "sqlite"
        self.dir.mkdir(parents=True)
        self.template = self.dir / "template.db"
        upgrade(f"sqlite:///{self.template}")

    def fresh(self, label: str) -> dict:
        path = self.dir / f"{label}.db"
        shutil.copy(self.template, path)
        return {"url": f"sqlite:///{path}", "path": str(path)}

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"


class PostgresStore:
    name = "postgresql"

    def __init__(self, cluster):
        from hub.store.migrate import upgrade

        self.cluster = cluster
        upgrade(cluster.create_database("bench_template"))

    def fresh(self, label: str) -> dict:
        name = f"bench_{label}"
        url = self.cluster.create_database(name, template="bench_template")
        return {"url": url, "conninfo": f"host=127.0.0.1 port={self.cluster.port} user=postgres dbname={name}"}

    def version(self) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.cluster.port} user=postgres dbname=postgres") as con:
            return "PostgreSQL " + con.execute("SHOW server_version").fetchone()[0]


def count_rows(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from hub.store.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("customer", "identity", "conversation", "message")}
    finally:
        engine.dispose()


def rows_check(url: str, expected: dict[str, int]) -> str:
    got = count_rows(url)
    if got == expected:
        return "ok"
    return "MISMATCH " + ", ".join(f"{t} {got[t]} (expected {expected[t]})" for t in expected if got[t] != expected[t])


# --- the parts -----------------------------------------------------------------------------------


def part_inprocess(store, wl, args) -> dict:
    from sqlalchemy import event

    from hub.contract.errors import HubError
    from hub.ingest.pipeline import ingest, ingest_many
    from hub.store.db import make_engine

    out = {}
    msgs = wl.messages

    db = store.fresh("ingest_single")
    engine = make_engine(db["url"])
    with Timer() as t:
        for m in msgs:
            ingest(engine, m)
    engine.dispose()
    out["ingest_single"] = {
        "messages": len(msgs), "seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "msgs_per_s": rate(len(msgs), t.seconds),
        "rows": rows_check(db["url"], wl.expected),
    }
    say(f"  {'ingest() one per call:':<30}{rate(len(msgs), t.seconds):9,.0f} msg/s  ({t.seconds:.2f} s, cpu {t.cpu_seconds:.2f} s)  rows {out['ingest_single']['rows']}")

    db = store.fresh("ingest_many")
    engine = make_engine(db["url"])
    errors = 0
    with Timer() as t:
        for i in range(0, len(msgs), args.batch):
            errors += sum(isinstance(r, HubError) for r in ingest_many(engine, msgs[i : i + args.batch]))
    engine.dispose()
    out["ingest_many"] = {
        "messages": len(msgs), "batch": args.batch, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
        "msgs_per_s": rate(len(msgs), t.seconds), "rejected": errors, "rows": rows_check(db["url"], wl.expected),
    }
    say(f"  {'ingest_many() batch ' + str(args.batch) + ':':<30}{rate(len(msgs), t.seconds):9,.0f} msg/s  ({t.seconds:.2f} s, cpu {t.cpu_seconds:.2f} s)  rows {out['ingest_many']['rows']}")

    # SQL statements per message, counted on a separate short run (the listener costs time).
    sample = msgs[: min(len(msgs), 1000)]
    stmts = {}
    for label in ("ingest_single", "ingest_many"):
        db = store.fresh(f"stmts_{label}")
        engine = make_engine(db["url"])
        counter = [0]

        def count(*_a, counter=counter):
            counter[0] += 1

        event.listen(engine, "before_cursor_execute", count)
        if label == "ingest_single":
            for m in sample:
                ingest(engine, m)
        else:
            for i in range(0, len(sample), args.batch):
                ingest_many(engine, sample[i : i + args.batch])
        engine.dispose()
        stmts[label] = counter[0] / len(sample)
    out["statements_per_message"] = stmts
    say(
        f"  SQL statements per message (SQLAlchemy-level, COMMIT and pool pre-ping not counted): "
        f"ingest() {stmts['ingest_single']:.2f}, ingest_many() {stmts['ingest_many']:.2f}"
    )

    if args.profile:
        db = store.fresh("ingest_profile")
        engine = make_engine(db["url"])
        prof = cProfile.Profile()
        sample = msgs[: min(len(msgs), 5000)]
        prof.enable()
        for i in range(0, len(sample), args.batch):
            ingest_many(engine, sample[i : i + args.batch])
        prof.disable()
        engine.dispose()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        out["profile_tottime_top30"] = buf.getvalue()
        say(f"  cProfile of ingest_many over {len(sample)} messages (by own time):")
        say("\n".join("    " + line for line in buf.getvalue().splitlines()[:60]))
    return out


def part_raw(store, wl, args) -> dict:
    from _bench_raw import raw_postgres, raw_sqlite

    n = len(wl)
    # Statements per message of the ceiling: customer + identity per new sender, conversation
    # insert-or-update and message insert per message.
    out = {"statements_per_message": (2 * wl.expected["customer"] + 2 * n) / n}
    say(f"  raw ceiling: {out['statements_per_message']:.2f} SQL statements per message (no look-ups)")
    for label, batch in (("raw_batch", args.batch), ("raw_single", 1)):
        db = store.fresh(label)
        with Timer() as t:  # for the CPU time; `seconds` is the loop alone
            if store.name == "sqlite":
                seconds = raw_sqlite(db["path"], wl, batch)
            else:
                seconds = raw_postgres(db["conninfo"], wl, batch)
        out[label] = {
            "messages": n, "batch": batch, "seconds": seconds, "cpu_seconds": t.cpu_seconds, "msgs_per_s": rate(n, seconds),
            "rows": rows_check(db["url"], wl.expected),
        }
        driver = "sqlite3" if store.name == "sqlite" else "psycopg"
        what = f"batch {batch}" if batch > 1 else "one tx/message"
        say(f"  raw {driver} {what:<16} {rate(n, seconds):9,.0f} msg/s  ({seconds:.2f} s, cpu {t.cpu_seconds:.2f} s)  rows {out[label]['rows']}")
    return out


def part_http(store, args, workdir: Path) -> dict:
    from _bench_http import run_framework_ceiling, run_http

    db = store.fresh("http")
    bodies = http_bodies(args.http_messages, senders=args.senders)
    warmup = http_bodies(min(500, max(50, args.http_messages // 20)), senders=args.senders, seed=99, prefix="warm")
    res = run_http(db["url"], workdir / f"http-{store.name}", bodies, warmup, concurrency=args.concurrency)
    stored = count_rows(db["url"])["message"]
    res["messages_in_db"] = stored
    res["messages_in_db_expected"] = res["status_201"] + res["warmup_statuses"].get("201", 0)
    lat = res["latency_ms"]
    say(
        f"  POST /api/v1/messages x{args.concurrency}:  {res['msgs_per_s']:9,.0f} msg/s  ({res['seconds']:.2f} s)  "
        f"p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms  non-201 {res['non_201']}  statuses {res['statuses']}"
    )
    if res["non_201"] or res["messages_in_db"] != res["messages_in_db_expected"]:
        say(f"  !! {res['non_201']} non-201 responses; {stored} messages stored, {res['messages_in_db_expected']} expected")
        if res["server_log_tail"]:
            say("  server log tail:\n" + "\n".join("    " + line for line in res["server_log_tail"].splitlines()))
    ceiling = res["framework_ceiling"] = run_framework_ceiling(workdir / f"http-bare-{store.name}", bodies, warmup, concurrency=args.concurrency)
    say(
        f"  the same posts to aiohttp alone:  {ceiling['requests_per_s']:9,.0f} req/s (JSON read, 201 answered, nothing stored; "
        f"the HTTP ceiling): the hub at {res['msgs_per_s'] / ceiling['requests_per_s'] * 100:.0f}%"
    )
    if ceiling["non_201"]:  # failed posts are quick: the ceiling would be too high
        say(f"  !! aiohttp alone answered {ceiling['non_201']} posts with other than 201: {ceiling['statuses']}; its rate is not a ceiling")
    return res


def part_listing(store, args) -> dict:
    from _bench_listing import build_postgres, build_sqlite, check_pagination, check_search, time_listing

    from hub.store.db import make_engine

    db = store.fresh("listing")
    say(f"  building the listing dataset: {args.conversations:,} conversations, {args.messages:,} messages ...")
    if store.name == "sqlite":
        info = build_sqlite(db["path"], args.conversations, args.messages)
    else:
        info = build_postgres(db["conninfo"], args.conversations, args.messages)
    # The bulk load wrote around write_tx: move what the search triggers queued into the index,
    # and index the messages as the hub's background indexer would (SQLite).
    from hub.conversations.search.message_index import index_all_messages
    from hub.store.db import index_search_queue

    engine = make_engine(db["url"])
    started = time.perf_counter()
    index_search_queue(engine)
    index_all_messages(engine)
    info.search_index_seconds = time.perf_counter() - started
    engine.dispose()
    rows = count_rows(db["url"])
    say(
        f"  built in {info.build_seconds:.1f} s (+ ANALYZE {info.analyze_seconds:.1f} s, + search index "
        f"{info.search_index_seconds:.1f} s): {rows['conversation']:,} conversations, "
        f"{rows['message']:,} messages, {rows['customer']:,} customers, {rows['identity']:,} identities"
    )
    say(f"  status mix {info.status_counts}; channels {info.channel_counts}")
    engine = make_engine(db["url"])
    try:
        problems = check_pagination(engine) + check_search(engine, info)
        for p in problems:
            say(f"  !! {p}")
        results = time_listing(engine, info, args.reps, args.list_budget)
    finally:
        engine.dispose()
    size_mb = None
    if store.name == "sqlite":
        size_mb = os.path.getsize(db["path"]) / 1_048_576
    return {
        "dataset": {**info.__dict__, "rows": rows, "size_mb": size_mb},
        "pagination_problems": problems,
        "filters": results,
    }


# --- reporting ---------------------------------------------------------------------------------


def print_backend_table(res: dict) -> None:
    name = res["backend"]
    say(f"\n=== {name}: {res['version']} ===")
    rows = []
    ip, raw, http = res.get("inprocess", {}), res.get("raw", {}), res.get("http")
    def line(label, r):
        return [label, fmt_num(r["msgs_per_s"]), fmt_num(rate(r["messages"], r["cpu_seconds"])), f"{r['seconds']:.2f}", r["rows"], ""]

    if ip:
        rows.append(line("ingest() one msg/tx", ip["ingest_single"]))
        rows.append(line(f"ingest_many() batch {ip['ingest_many']['batch']}", ip["ingest_many"]))
    if raw:
        drv = "sqlite3" if name == "sqlite" else "psycopg"
        rows.append(line(f"raw {drv} one msg/tx", raw["raw_single"]))
        rows.append(line(f"raw {drv} batch {raw['raw_batch']['batch']}", raw["raw_batch"]))
    if http:
        lat = http["latency_ms"]
        cpu = http.get("server_cpu_s")
        rows.append([
            f"HTTP POST x{http['concurrency']} clients", fmt_num(http["msgs_per_s"]), fmt_num(rate(http["requests"], cpu)) + " (server)" if cpu else "-",
            f"{http['seconds']:.2f}", f"{http['status_201']}/{http['requests']} 201",
            f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms",
        ])
    if rows:
        say(table(["ingest path", "msg/s", "msg/CPU-s", "seconds", "rows/status", "latency"], rows, "lrrrll"))
        say("(msg/CPU-s: messages per CPU-second of the process doing the work -- this one, or the server for HTTP;"
            " on PostgreSQL the server backends' CPU is not in it. It moves less than msg/s when the machine is shared.)")
    ratios = res.get("ratios", {})
    if ratios:
        say("ratios: " + "; ".join(f"{k} {v * 100:.0f}%" for k, v in ratios.items()))
    if http:
        cpu = http.get("server_cpu_s")
        per = f"{cpu / http['requests'] * 1e3:.2f} ms server CPU/request" if cpu else "n/a"
        say(f"server: {per}; client CPU {http['client_cpu_s']:.1f} s; server peak RSS (VmHWM) {fmt_num(http['server_vm_hwm_mb'], 1)} MiB")
        bare = http.get("framework_ceiling")
        if bare:
            bare_cpu = f", {bare['server_cpu_s'] / bare['requests'] * 1e3:.2f} ms server CPU/request" if bare.get("server_cpu_s") else ""
            say(f"aiohttp alone (the HTTP ceiling): {fmt_num(bare['requests_per_s'])} req/s{bare_cpu}")
    listing = res.get("listing")
    if listing:
        ds = listing["dataset"]
        say(
            f"listing dataset: {ds['rows']['conversation']:,} conversations / {ds['rows']['message']:,} messages, built in "
            f"{ds['build_seconds']:.1f} s + ANALYZE {ds['analyze_seconds']:.1f} s" + (f", file {ds['size_mb']:.0f} MiB" if ds.get("size_mb") else "")
        )
        lrows = []
        for f in listing["filters"]:
            flag = "" if f["p95_ms"] <= TARGET_LIST_P95_MS else "  > 50 ms"
            if f["filter"].endswith("[no index]"):
                flag = "  (reference: the plain query)"
            lrows.append([f["filter"], f["reps"], f["items"], f"{f['p50_ms']:.2f}", f"{f['p95_ms']:.2f}", f"{f['max_ms']:.2f}", flag])
        say(table(["list_conversations(limit=50)", "reps", "items", "p50 ms", "p95 ms", "max ms", ""], lrows, "lrrrrrl"))
        say("query plans (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE without buffer lines; all in the JSON):")
        for f in listing["filters"]:
            plan = f["plan"]
            if name == "sqlite":
                say(f"  {f['filter']:<34} " + " | ".join(plan))
            else:
                say(f"  {f['filter']}:")
                for line in plan:
                    if line.strip().startswith(("Buffers:", "Planning:", "Cache Mode:", "Hits:", "Sort Method:")):
                        continue
                    say(f"      {line}")
    phases = ", ".join(f"{k} {v:.0f}" for k, v in res.get("phase_peak_rss_mb", {}).items() if v)
    say(f"benchmark process peak RSS (max of getrusage and the phases): {res['peak_rss_mb']:.0f} MiB; per phase (VmHWM, MiB): {phases or 'n/a'}")


def compute_ratios(res: dict) -> dict:
    ip, raw = res.get("inprocess"), res.get("raw")
    if not (ip and raw):
        return {}
    out = {
        "ingest()/raw one-tx": ip["ingest_single"]["msgs_per_s"] / raw["raw_single"]["msgs_per_s"],
        "ingest_many()/raw batch": ip["ingest_many"]["msgs_per_s"] / raw["raw_batch"]["msgs_per_s"],
    }
    if res["backend"] == "sqlite":  # all the work is in this process: CPU time compares too
        out["ingest()/raw one-tx by CPU"] = raw["raw_single"]["cpu_seconds"] / ip["ingest_single"]["cpu_seconds"]
        out["ingest_many()/raw batch by CPU"] = raw["raw_batch"]["cpu_seconds"] / ip["ingest_many"]["cpu_seconds"]
    return out


def summary(all_results: list[dict]) -> None:
    say("\n" + "=" * 100)
    say("SUMMARY (targets: in-process ingest >= 3,000 msg/s and >= 30% of the raw ceiling; HTTP >= 1,500 msg/s on SQLite; listing p95 <= 50 ms)")
    say("=" * 100)
    for res in all_results:
        name = res["backend"]
        la0, la1 = res.get("loadavg_start"), res.get("loadavg_end")
        load = f"; load avg 1-min {la0[0]:.2f} at start, {la1[0]:.2f} at end" if la0 and la1 else ""
        say(f"[{name}] {res['version']}  (wall {res['wall_seconds']:.0f} s{load})")
        if res.get("error"):
            say(f"  FAILED: {res['error']}")
        ip, raw, http, listing = res.get("inprocess"), res.get("raw"), res.get("http"), res.get("listing")
        ratios = res.get("ratios", {})

        def mark(ok: bool) -> str:
            return "ok" if ok else "MISS"

        if ip:
            s, m = ip["ingest_single"]["msgs_per_s"], ip["ingest_many"]["msgs_per_s"]
            line = f"  ingest():      {s:8,.0f} msg/s [{mark(s >= TARGET_INGEST_RATE)}]"
            if raw:
                r = ratios["ingest()/raw one-tx"]
                line += f"   raw one-tx {raw['raw_single']['msgs_per_s']:8,.0f} msg/s   ratio {r * 100:4.0f}% [{mark(r >= TARGET_RAW_RATIO)}]"
            say(line)
            line = f"  ingest_many(): {m:8,.0f} msg/s [{mark(m >= TARGET_INGEST_RATE)}]"
            if raw:
                r = ratios["ingest_many()/raw batch"]
                line += f"   raw batch  {raw['raw_batch']['msgs_per_s']:8,.0f} msg/s   ratio {r * 100:4.0f}% [{mark(r >= TARGET_RAW_RATIO)}]"
            say(line)
        if http:
            lat = http["latency_ms"]
            target = f" [{mark(http['msgs_per_s'] >= TARGET_HTTP_RATE)}]" if name == "sqlite" else ""
            bare = http.get("framework_ceiling")
            ceiling = f"   aiohttp alone {bare['requests_per_s']:8,.0f} req/s   ratio {http['msgs_per_s'] / bare['requests_per_s'] * 100:4.0f}%" if bare else ""
            say(
                f"  HTTP POST x{http['concurrency']}: {http['msgs_per_s']:8,.0f} msg/s{target}   p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms   "
                f"non-201: {http['non_201']}   server VmHWM {fmt_num(http['server_vm_hwm_mb'], 0)} MiB{ceiling}"
            )
        if listing:
            # "[no index]" rows are the reference without migration 0003's indexes, not the hub.
            served = [f for f in listing["filters"] if not f["filter"].endswith("[no index]")]
            worst = max(served, key=lambda f: f["p95_ms"])
            slow = [f["filter"] for f in served if f["p95_ms"] > TARGET_LIST_P95_MS]
            ds = listing["dataset"]
            say(
                f"  listing: {ds['rows']['conversation']:,} conv / {ds['rows']['message']:,} msg built in {ds['build_seconds']:.1f} s; "
                f"worst p95 {worst['p95_ms']:.1f} ms ({worst['filter']}) [{mark(not slow)}]"
                + (f"; over 50 ms: {', '.join(slow)}" if slow else "")
            )
        phases = ", ".join(f"{k} {v:.0f}" for k, v in res.get("phase_peak_rss_mb", {}).items() if v)
        say(f"  benchmark peak RSS {res['peak_rss_mb']:.0f} MiB; per phase VmHWM MiB: {phases or 'n/a'}")
    say("=" * 100)


def write_json(res: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ingest-{res['backend']}.json"
    path.write_text(json.dumps(res, indent=2, default=str))
    return path


# --- main ------------------------------------------------------------------------------------------


def _load() -> str:
    la = loadavg()
    return "/".join(f"{x:.2f}" for x in la) if la else "n/a"


def run_backend(store, args, wl, workdir: Path) -> dict:
    started = time.perf_counter()
    res: dict = {
        "backend": store.name,
        "version": store.version(),
        "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "workload": {"messages": len(wl), "senders": args.senders, "channels": wl.channel_counts, "expected_rows": wl.expected},
    }
    res["loadavg_start"] = loadavg()
    say(f"\n--- {store.name} ({res['version']}); load average {_load()} ---")
    phase_rss = res["phase_peak_rss_mb"] = {}

    def phase(name, fn, *fargs):
        reset_peak_rss()
        try:
            return fn(*fargs)
        finally:
            phase_rss[name] = phase_peak_rss_mb()

    try:
        if "inprocess" not in args.skip:
            res["inprocess"] = phase("inprocess", part_inprocess, store, wl, args)
        if "raw" not in args.skip:
            res["raw"] = phase("raw", part_raw, store, wl, args)
        res["ratios"] = compute_ratios(res)
        if "http" not in args.skip:
            res["http"] = phase("http client", part_http, store, args, workdir)
        if "listing" not in args.skip:
            res["listing"] = phase("listing build+queries", part_listing, store, args)
    except Exception as exc:  # report what we have, then the failure
        res["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    res["loadavg_end"] = loadavg()
    # Resetting VmHWM per phase also resets what getrusage reports: the run's peak is the max.
    res["peak_rss_mb"] = max([peak_rss_mb()] + [v for v in phase_rss.values() if v])
    res["wall_seconds"] = time.perf_counter() - started
    print_backend_table(res)
    say(f"(written to {write_json(res)})")
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="servicehub-bench-"))
    say(
        f"servicehub ingest benchmark: {', '.join(backends)}; {args.ingest_messages:,} messages in-process, "
        f"{args.http_messages:,} over HTTP; listing {args.conversations:,} conversations / {args.messages:,} messages; "
        f"{os.cpu_count()} CPUs; workdir {workdir}"
    )
    with Timer() as t:
        wl = build_workload(args.ingest_messages, senders=args.senders)
    say(
        f"workload: {len(wl):,} messages from {args.senders:,} senders {wl.channel_counts}; it opens {wl.expected['conversation']:,} "
        f"conversations for {wl.expected['customer']:,} customers (built in {t.seconds:.1f} s)"
    )
    results = []
    cluster = None
    try:
        for backend in backends:
            try:
                if backend == "sqlite":
                    store = SqliteStore(workdir)
                else:
                    from tests.support.pgcluster import start_cluster

                    say("starting a throw-away PostgreSQL cluster ...")
                    cluster = start_cluster()
                    store = PostgresStore(cluster)
            except Exception as exc:
                traceback.print_exc()
                results.append({"backend": backend, "version": "?", "error": f"setup failed: {type(exc).__name__}: {exc}",
                                "wall_seconds": 0.0, "peak_rss_mb": peak_rss_mb()})
                continue
            results.append(run_backend(store, args, wl, workdir))
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary(results)
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
