#!/usr/bin/env python
"""Routing benchmark: what routing order and stock questions costs ingest, and how soon
an order question gets its automatic answer, against the local `sql` back end (the demo SCM
database the hub seeds in its data dir).

    .venv/bin/python bench/scm.py                    # SQLite, a few minutes
    .venv/bin/python bench/scm.py --quick            # smaller, for a smoke run
    .venv/bin/python bench/scm.py --backend both     # SQLite and a throw-away PostgreSQL cluster

Per store it prints:
  1. ingest throughput, POST /api/v1/messages with 32 concurrent clients against `servicehub
     serve` in its own process, with routing off (SERVICEHUB_SCM__ENABLED=false) and on, in
     alternating rounds on fresh databases; the ratio on/off (the target: routing costs ingest at
     most 10%); and how long routing took to work through what arrived;
  2. the time from an order question's arrival to its automatic answer being queued in the
     outbox, p50/p95: questions from a customer with a verified address, paced at --rate per
     second; "sent" is when the client sent the POST, "stored" is the message's created_at,
     "queued" the answer's outbox row created_at (one clock: the same machine).
Figures only: nothing here asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

from _bench_common import fmt_num, loadavg, percentile, say, table  # noqa: E402
from _bench_http import Server, _post_all, make_token  # noqa: E402
from _bench_workload import FIRST, LAST, TEXTS  # noqa: E402

TARGET_RATIO = 0.90
ORDER_QUESTIONS = (
    "Hello, where is my order {ref}? It has not arrived yet.",
    "Could you tell me the status of order {ref} please?",
    "When will my order {ref} be delivered?",
)
STOCK_QUESTIONS = (
    "Do you have the {sku} in stock?",
    "Is the {sku} available? I would like to buy 2.",
)
ORDER_REFS = ["A1001", "A1002", "A1005", "SO-4711", "SO-4702", "SO-4705", "SO-4720", "SO-9999"]
SKUS = ["KET-BLUE", "KET-STEEL", "X200-BLK", "X200-WHT", "LMP-AERO", "GRD-100"]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    ap.add_argument("--messages", type=int, help="timed POSTs per throughput run (default 6000; quick 1500)")
    ap.add_argument("--rounds", type=int, help="throughput rounds, each routing off then on (default 2; quick 1)")
    ap.add_argument("--scm-share", type=float, default=0.3, help="share of order and stock questions in the mix")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--questions", type=int, help="order questions for the latency part (default 300; quick 80)")
    ap.add_argument("--rate", type=float, default=10.0, help="order questions per second in the latency part")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.messages = args.messages or (1500 if args.quick else 6000)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.questions = args.questions or (80 if args.quick else 300)
    return args


# --- stores --------------------------------------------------------------------------------------


class SqliteStore:
    name = "sqlite"

    def __init__(self, workdir: Path):
        from hub.store.migrate import upgrade

        self.dir = workdir / "sqlite"
        self.dir.mkdir(parents=True)
        self.template = self.dir / "template.db"
        upgrade(f"sqlite:///{self.template}")

    def fresh(self, label: str) -> str:
        path = self.dir / f"{label}.db"
        shutil.copy(self.template, path)
        return f"sqlite:///{path}"


class PostgresStore:
    name = "postgresql"

    def __init__(self, cluster):
        from hub.store.migrate import upgrade

        self.cluster = cluster
        upgrade(cluster.create_database("scm_bench_template"))

    def fresh(self, label: str) -> str:
        return self.cluster.create_database(f"scm_bench_{label}", template="scm_bench_template")


# --- workload ------------------------------------------------------------------------------------


def bodies(n: int, *, prefix: str, scm_share: float, senders: int = 2000, seed: int = 11) -> list[bytes]:
    """Email-channel messages from many customers: the ordinary support mix, with `scm_share` of
    order questions (known and unknown references) and stock questions (in and out of stock)."""
    rng = random.Random(seed)
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(senders)]
    out = []
    for i in range(n):
        s = rng.randrange(senders)
        r = rng.random()
        if r < scm_share / 2:
            text = rng.choice(ORDER_QUESTIONS).format(ref=rng.choice(ORDER_REFS))
        elif r < scm_share:
            text = rng.choice(STOCK_QUESTIONS).format(sku=rng.choice(SKUS))
        else:
            text = rng.choice(TEXTS)
        out.append(json.dumps({
            "channel": "email", "external_id": f"<{prefix}-{i}@bench.example>",
            "sender": {"address": f"customer{s}@example.com", "name": names[s]},
            "subject": "Question", "text": text,
        }).encode())
    return out


def unrouted(url: str) -> int:
    from sqlalchemy import text

    from hub.store.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FROM message WHERE routed_at IS NULL AND direction = 'inbound'")).scalar_one()
    finally:
        engine.dispose()


def routing_counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from hub.store.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            one = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
            return {
                "facts": one("SELECT count(*) FROM scm_fact"),
                "drafts": one("SELECT count(*) FROM reply_draft"),
                "demand_questions": one("SELECT coalesce(sum(asked), 0) FROM demand_count"),
            }
    finally:
        engine.dispose()


def start(url: str, data_dir: Path, routing: bool) -> Server:
    os.environ["SERVICEHUB_SCM__ENABLED"] = "true" if routing else "false"
    server = Server(url, data_dir)
    server.start()
    return server


# --- part 1: ingest with routing off and on -----------------------------------------------------------


def throughput_run(store, args, workdir: Path, label: str, routing: bool) -> dict:
    url = store.fresh(label)
    token = make_token(url)
    timed = bodies(args.messages, prefix=f"{label}-t", scm_share=args.scm_share)
    warm = bodies(max(50, args.messages // 20), prefix=f"{label}-w", scm_share=args.scm_share, seed=99)
    server = start(url, workdir / label, routing)
    try:
        server.wait_quiet()
        asyncio.run(_post_all(server.port, token, warm, args.concurrency))
        server.wait_quiet()  # what the warm-up set off (routing it) settles first
        cpu_before = server.cpu_seconds()
        latencies, statuses, seconds = asyncio.run(_post_all(server.port, token, timed, args.concurrency))
        ended = time.perf_counter()
        cpu_after = server.cpu_seconds()
        drain = None
        if routing:
            deadline = time.monotonic() + 600
            while unrouted(url) and time.monotonic() < deadline:
                time.sleep(0.2)
            drain = time.perf_counter() - ended if not unrouted(url) else float("nan")
    finally:
        server.stop()
    ok = statuses.get(201, 0)
    cpu = (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None
    out = {
        "routing": routing, "messages": len(timed), "ok": ok, "seconds": seconds, "msgs_per_s": ok / seconds,
        "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
        "drain_after_s": drain, "server_cpu_ms_per_msg": cpu / len(timed) * 1000 if cpu is not None else None,
    }
    if routing:
        out.update(routing_counts(url))
    say(f"  {label:<10} routing {'on ' if routing else 'off'}  {out['msgs_per_s']:8,.0f} msg/s  "
        f"p50 {out['p50_ms']:6.1f} ms  p95 {out['p95_ms']:6.1f} ms  server CPU {fmt_num(out['server_cpu_ms_per_msg'], 2)} ms/msg"
        f"  {ok}/{len(timed)} stored"
        + (f"  routing done {drain:.1f} s after the last POST" if drain is not None else ""))
    return out


def part_throughput(store, args, workdir: Path) -> dict:
    runs = []
    for r in range(args.rounds):
        # Alternate the order so a machine that slows down or speeds up over time favours neither.
        modes = (False, True) if r % 2 == 0 else (True, False)
        for routing in modes:
            runs.append(throughput_run(store, args, workdir, f"tp{r}-{'on' if routing else 'off'}", routing))
    off = [x["msgs_per_s"] for x in runs if not x["routing"]]
    on = [x["msgs_per_s"] for x in runs if x["routing"]]
    # Each round's on/off pair ran back to back: their ratio is less exposed to the machine's
    # drift (other work on it) than the ratio of the medians.
    pairs = [runs[i + 1]["msgs_per_s"] / runs[i]["msgs_per_s"] if runs[i + 1]["routing"] else
             runs[i]["msgs_per_s"] / runs[i + 1]["msgs_per_s"] for i in range(0, len(runs), 2)]
    cpu_off = [x["server_cpu_ms_per_msg"] for x in runs if not x["routing"] and x["server_cpu_ms_per_msg"]]
    cpu_on = [x["server_cpu_ms_per_msg"] for x in runs if x["routing"] and x["server_cpu_ms_per_msg"]]
    return {"runs": runs, "off_msgs_per_s": statistics.median(off), "on_msgs_per_s": statistics.median(on),
            "ratio": statistics.median(on) / statistics.median(off), "pair_ratios": pairs,
            "pair_ratio_median": statistics.median(pairs),
            "cpu_ms_per_msg_off": statistics.median(cpu_off) if cpu_off else None,
            "cpu_ms_per_msg_on": statistics.median(cpu_on) if cpu_on else None}


# --- part 2: question to automatic answer ------------------------------------------------------------


def seed_verified_customer(url: str) -> None:
    """Chloé, whose address the channel verified: her order questions may be answered automatically."""
    from hub.contract.messages import InboundMessage, Sender
    from hub.ingest.pipeline import ingest
    from hub.store.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        ingest(engine, InboundMessage("email", "<bench-verify@bench.example>", Sender("chloe.martin@example.com", "Chloé Martin"),
                                      "Hello!", verified_identities=(Sender("chloe.martin@example.com", kind="email"),)))
    finally:
        engine.dispose()


async def _paced(port: int, token: str, payloads: list[bytes], rate: float) -> dict[str, float]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/api/v1/messages"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:

        async def one(body: bytes) -> None:
            key = json.loads(body)["external_id"]
            sent[key] = time.time()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()

        tasks = []
        for body in payloads:
            tasks.append(asyncio.create_task(one(body)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return sent


def answer_times(url: str) -> list[tuple[str, datetime, datetime]]:
    """(question external id, stored at, answer queued at) for every automatic answer."""
    from sqlalchemy import select

    from hub.store.db import make_engine
    from hub.store.models import Message, Outbox

    m, o = Message.__table__, Outbox.__table__
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            questions = {r.id: r for r in conn.execute(select(m.c.id, m.c.external_id, m.c.created_at).where(m.c.direction == "inbound"))}
            out = []
            for r in conn.execute(select(m.c.metadata, o.c.created_at).join(o, o.c.message_id == m.c.id).where(m.c.direction == "outbound")):
                q = questions.get((r.metadata or {}).get("question_message_id"))
                if (r.metadata or {}).get("automatic") and q is not None:
                    out.append((q.external_id, _aware(q.created_at), _aware(r.created_at)))
            return out
    finally:
        engine.dispose()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def part_latency(store, args, workdir: Path) -> dict:
    url = store.fresh("latency")
    token = make_token(url)
    seed_verified_customer(url)
    questions = [
        json.dumps({"channel": "email", "external_id": f"<lat-{i}@bench.example>",
                    "sender": {"address": "chloe.martin@example.com", "name": "Chloé Martin"},
                    "subject": "Order SO-4711", "text": random.Random(i).choice(ORDER_QUESTIONS).format(ref="SO-4711")}).encode()
        for i in range(args.questions)
    ]
    server = start(url, workdir / "latency", True)
    try:
        server.wait_quiet()
        sent = asyncio.run(_paced(server.port, token, questions, args.rate))
        deadline = time.monotonic() + 300
        while unrouted(url) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()
    times = [t for t in answer_times(url) if t[0] in sent]
    from_sent = [(queued.timestamp() - sent[key]) * 1000 for key, _stored, queued in times]
    from_stored = [(queued - stored).total_seconds() * 1000 for _key, stored, queued in times]
    out = {
        "questions": len(questions), "answered": len(times), "rate_per_s": args.rate,
        "sent_to_queued_ms": {"p50": percentile(from_sent, 50), "p95": percentile(from_sent, 95), "max": max(from_sent, default=float("nan"))},
        "stored_to_queued_ms": {"p50": percentile(from_stored, 50), "p95": percentile(from_stored, 95), "max": max(from_stored, default=float("nan"))},
    }
    say(f"  {len(times)}/{len(questions)} order questions answered automatically ({args.rate:g}/s)")
    return out


# --- main --------------------------------------------------------------------------------------------


def report(res: dict) -> None:
    tp, lat = res.get("throughput"), res.get("latency")
    say(f"\n=== {res['backend']} ===")
    if tp:
        rows = [[("on" if r["routing"] else "off"), fmt_num(r["msgs_per_s"]), f"{r['p95_ms']:.1f}",
                 fmt_num(r["server_cpu_ms_per_msg"], 2),
                 "-" if r["drain_after_s"] is None else f"{r['drain_after_s']:.1f}",
                 r.get("facts", "-"), r.get("drafts", "-"), r.get("demand_questions", "-")] for r in tp["runs"]]
        say(table(["routing", "ingest msg/s", "POST p95 ms", "server CPU ms/msg", "routing done after (s)", "facts", "drafts",
                   "stock questions"], rows))
        verdict = "met" if tp["pair_ratio_median"] >= TARGET_RATIO else "NOT met"
        say(f"ingest with routing on / off: medians {fmt_num(tp['on_msgs_per_s'])} / {fmt_num(tp['off_msgs_per_s'])} msg/s "
            f"= {tp['ratio']:.1%}; back-to-back pairs {', '.join(f'{r:.0%}' for r in tp['pair_ratios'])}, "
            f"median {tp['pair_ratio_median']:.1%} (target >= {TARGET_RATIO:.0%}: {verdict})")
        if tp["cpu_ms_per_msg_off"] and tp["cpu_ms_per_msg_on"]:
            say(f"server CPU per message while ingesting: {tp['cpu_ms_per_msg_on']:.2f} ms with routing / "
                f"{tp['cpu_ms_per_msg_off']:.2f} ms without (routing's share is capped during bursts, the rest runs after)")
    if lat:
        s, t = lat["sent_to_queued_ms"], lat["stored_to_queued_ms"]
        say(f"order question -> automatic answer queued ({lat['answered']}/{lat['questions']} at {lat['rate_per_s']:g}/s):")
        say(f"  from the POST being sent:     p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  max {s['max']:7.1f} ms")
        say(f"  from the message being stored: p50 {t['p50']:7.1f} ms  p95 {t['p95']:7.1f} ms  max {t['max']:7.1f} ms")
    if res.get("error"):
        say(f"ERROR: {res['error']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="servicehub-scm-bench-"))
    la = loadavg()
    say(f"servicehub routing benchmark: {', '.join(backends)}; {args.rounds} round(s) of {args.messages:,} POSTs "
        f"({args.scm_share:.0%} order/stock questions) x{args.concurrency} clients, routing off and on; "
        f"{args.questions} order questions at {args.rate:g}/s; {os.cpu_count()} CPUs; load {la and '/'.join(f'{x:.2f}' for x in la)}")
    results, cluster = [], None
    try:
        for backend in backends:
            res: dict = {"backend": backend}
            try:
                if backend == "sqlite":
                    store = SqliteStore(workdir)
                else:
                    from tests.support.pgcluster import start_cluster

                    say("starting a throw-away PostgreSQL cluster ...")
                    cluster = start_cluster()
                    store = PostgresStore(cluster)
                say(f"\n--- {backend}: ingest with routing off and on ---")
                res["throughput"] = part_throughput(store, args, workdir)
                say(f"--- {backend}: order question to automatic answer ---")
                res["latency"] = part_latency(store, args, workdir)
            except Exception as exc:
                traceback.print_exc()
                res["error"] = f"{type(exc).__name__}: {exc}"
            results.append(res)
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for res in results:
        report(res)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
