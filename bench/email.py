#!/usr/bin/env python
"""Email channel benchmark: channels.email.parse.parse() alone, and parse + hub ingest end to end.

    .venv/bin/python bench/email.py                  # ~3,000 messages
    .venv/bin/python bench/email.py --messages 10000 --batch 200
    .venv/bin/python bench/email.py --profile        # also a cProfile of parse()
    .venv/bin/python bench/email.py --only-smtp --backend both   # part 3 alone, SQLite and PostgreSQL

The corpus is every fixture email in ../shared/fixtures/email (and CPython's email test data when
the interpreter has it), repeated to --messages with a unique Message-ID per copy (the header is
rewritten, or added where a message has none), so every copy is a new message to the hub.

Prints, in one run:
  1. parse alone: emails/s, MB/s, and per-email parse time p50/p95/p99/max;
  2. parse + ingest: parse, then hub.ingest.ingest_many() in batches into a fresh migrated SQLite
     database (hub.store.migrate.upgrade, hub.store.db.make_engine) with a hub.store.blobs.BlobStore in a temporary
     directory (raw bytes and attachments stored): emails/s end to end, and the time spent
     parsing and ingesting (ingest alone: emails / ingest seconds). Twice: sequential (one
     process: parse a batch, ingest it) and pipelined (a second process parses the next batch
     meanwhile, as a receiver and the hub's writer would run on two cores);
  3. SMTP in, stored out: `servicehub serve` in its own process with the SMTP receiver on, the
     workload sent over --connections SMTP sessions at once (after one warm-up mail); the accept
     rate (every 250 received) and the stored rate (until the spool has processed every mail:
     parsed by the spool worker and stored by the hub's ingest), the CPU per mail of the hub's
     process and of its parser processes, beside the parse-only and ingest-only (sequential) rates
     of 1 and 2. --backend postgresql|both runs it on a throw-away PostgreSQL cluster too.
Figures only: nothing here asserts on timing. Target: >= 300 emails/s end to end on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path, and this file is named like the
# stdlib's email package: take the folder off the path before anything imports `email`.
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The helpers beside this file last, after the standard library: `email` stays the stdlib's.
sys.path.append(str(BENCH))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

_spec = importlib.util.spec_from_file_location("_bench_common", BENCH / "_bench_common.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
fmt_num, loadavg, peak_rss_mb, percentile, say, table = (
    _common.fmt_num, _common.loadavg, _common.peak_rss_mb, _common.percentile, _common.say, _common.table
)

from channels.email.parse import parse  # noqa: E402
from hub.contract.errors import HubError, RejectedInput  # noqa: E402

TARGET_END_TO_END = 300.0
OWN = ("support@shop.example",)
_SKIP_DIRS = {"crisp", "zapier", "html_replies"}
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n", re.I | re.M)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def fixtures_dir() -> Path:
    for candidate in (ROOT.parent / "shared" / "fixtures" / "email", ROOT / ".." / "shared" / "fixtures" / "email"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("no ../shared/fixtures/email next to the repository")


def corpus_files() -> list[Path]:
    files = [
        p
        for p in sorted(fixtures_dir().rglob("*"))
        if p.is_file() and not _SKIP_DIRS.intersection(p.parts) and not p.name.endswith("_reply_text")
    ]
    try:
        import test.test_email as cpython_tests

        data = Path(os.path.dirname(cpython_tests.__file__)) / "data"
        files += sorted(data.glob("msg_*.txt"))
    except ImportError:
        pass
    return files


def load_corpus() -> list[bytes]:
    """The fixture emails that parse (Outlook .msg files and header-less bodies are refused)."""
    out = []
    for path in corpus_files():
        raw = path.read_bytes()
        try:
            parse(raw)
        except RejectedInput:
            continue
        out.append(raw)
    return out


def with_message_id(raw: bytes, new_id: bytes) -> bytes:
    """The same email with its Message-ID replaced (or added at the top of the header)."""
    end = _HEADER_END.search(raw)
    head, rest = (raw[: end.start() + 1], raw[end.start() + 1 :]) if end else (raw, b"")
    line = b"Message-ID: " + new_id + (b"\r\n" if b"\r\n" in head[:2000] else b"\n")
    head, n = _MESSAGE_ID.subn(lambda _m: line, head, count=1)
    if n == 0:
        if head.startswith(b"From ") and b"\n" in head:  # an mbox envelope line stays first
            first, _, others = head.partition(b"\n")
            head = first + b"\n" + line + others
        else:
            head = line + head
    return head + rest


def build_workload(corpus: list[bytes], n: int) -> list[bytes]:
    out = []
    for i in range(n):
        raw = corpus[i % len(corpus)]
        digest = hashlib.sha1(raw).hexdigest()[:10]
        out.append(with_message_id(raw, f"<bench-{i}-{digest}@bench.invalid>".encode()))
    return out


def bench_parse(workload: list[bytes]) -> dict:
    times = []
    started = time.perf_counter()
    for raw in workload:
        t0 = time.perf_counter()
        parse(raw, own_addresses=OWN)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    mb = sum(map(len, workload)) / 1e6
    return {
        "emails": len(workload),
        "seconds": total,
        "rate": len(workload) / total,
        "mb_per_s": mb / total,
        "p50_ms": percentile(times, 50) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "p99_ms": percentile(times, 99) * 1000,
        "max_ms": max(times) * 1000,
    }


def _parse_many(raws: list[bytes]) -> tuple[list, float]:
    t0 = time.perf_counter()
    msgs = [parse(raw, own_addresses=OWN) for raw in raws]
    return msgs, time.perf_counter() - t0


def _fresh_store(workdir: Path):
    from hub.store.blobs import BlobStore
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    url = f"sqlite:///{workdir / 'servicehub.db'}"
    upgrade(url)
    return make_engine(url), BlobStore(workdir / "blobs")


def bench_end_to_end(workload: list[bytes], batch: int, workdir: Path, *, pipelined: bool) -> dict:
    """Sequential: parse a batch, then ingest it, in one process. Pipelined: a second process
    parses the next batch while this one ingests, as a receiver and the hub's group-committing
    writer run side by side on two cores."""
    from hub.ingest.pipeline import ingest_many

    engine, blobs = _fresh_store(workdir)
    counts = {"stored": 0, "duplicates": 0, "rejected": 0}
    reasons: dict[str, int] = {}
    timing = {"parse": 0.0, "ingest": 0.0}

    def parse_batch(start: int) -> list:
        t0 = time.perf_counter()
        msgs = [parse(raw, own_addresses=OWN) for raw in workload[start : start + batch]]
        timing["parse"] += time.perf_counter() - t0
        return msgs

    def store(msgs: list) -> None:
        t0 = time.perf_counter()
        results = ingest_many(engine, msgs, blobs=blobs)
        timing["ingest"] += time.perf_counter() - t0
        for result in results:
            if isinstance(result, HubError):
                counts["rejected"] += 1
                key = result.message.split(":")[0][:60]
                reasons[key] = reasons.get(key, 0) + 1
            elif result.created:
                counts["stored"] += 1
            else:
                counts["duplicates"] += 1

    starts = list(range(0, len(workload), batch))
    started = time.perf_counter()
    try:
        if not pipelined:
            for start in starts:
                store(parse_batch(start))
        else:
            # One parsing process runs a batch ahead of the ingesting one (threads would not
            # overlap: parsing holds the GIL the ingest thread needs).
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(_parse_many, workload[starts[0] : starts[0] + batch])
                for k in range(len(starts)):
                    msgs, seconds = pending.result()
                    timing["parse"] += seconds
                    if k + 1 < len(starts):
                        pending = pool.submit(_parse_many, workload[starts[k + 1] : starts[k + 1] + batch])
                    store(msgs)
    finally:
        engine.dispose()
    total = time.perf_counter() - started
    return {
        "emails": len(workload),
        "seconds": total,
        "rate": len(workload) / total,
        "parse_seconds": timing["parse"],
        "ingest_seconds": timing["ingest"],
        **counts,
        "reasons": reasons,
        "db_mb": (workdir / "servicehub.db").stat().st_size / 1e6,
    }


SMTP_SENDER = "bench@example.com"


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of a process, and of its children (the hub's parser processes)."""
    children = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
            children += _common.proc_cpu_seconds(int(stat.parent.name)) or 0.0
    return _common.proc_cpu_seconds(pid) or 0.0, children


def bench_smtp(workload: list[bytes], workdir: Path, *, connections: int, database_url: str | None = None) -> dict:
    """The workload sent to `servicehub serve` over `connections` SMTP sessions at once. Accepted:
    every 250 received (the mail is in the spool). Stored: the spool has processed every accepted
    mail (stored by ingest, or rejected with its reason)."""
    import asyncio

    import aiosmtplib
    from _bench_http import Server, free_port
    from sqlalchemy import text

    from hub.store.db import make_engine

    url = database_url or f"sqlite:///{workdir / 'servicehub.db'}"
    smtp_port = free_port()
    saved = dict(os.environ)
    os.environ.update(
        SERVICEHUB_EMAIL__ADDRESSES=f'["{OWN[0]}"]',
        SERVICEHUB_EMAIL__RECEIVER__ENABLED="true",
        SERVICEHUB_EMAIL__RECEIVER__HOST="127.0.0.1",
        SERVICEHUB_EMAIL__RECEIVER__PORT=str(smtp_port),
    )
    server = Server(url, workdir / "data")
    try:
        server.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    server.wait_quiet()
    engine = make_engine(url, pool_size=1)

    def processed() -> tuple[int, int, int]:
        """(spool items processed, of which rejected, email messages stored)"""
        with engine.connect() as conn:
            counts = dict(conn.execute(text("SELECT status, count(*) FROM inbound_spool GROUP BY status")).all())
            stored = conn.execute(text("SELECT count(*) FROM message WHERE channel = 'email' AND direction = 'inbound'")).scalar()
        return counts.get("done", 0) + counts.get("rejected", 0), counts.get("rejected", 0), stored

    refused: dict[str, int] = {}

    async def warm_up() -> None:
        """One mail through, so that what is started on first use (the parser processes) is
        running before the clock starts."""
        await aiosmtplib.send(with_message_id(workload[0], b"<warm-up@bench.invalid>"), sender=SMTP_SENDER,
                              recipients=[OWN[0]], hostname="127.0.0.1", port=smtp_port, timeout=60)
        while (await asyncio.to_thread(processed))[0] < 1:
            await asyncio.sleep(0.05)

    async def run() -> tuple[float, float, int]:
        queue = list(reversed(workload))
        accepted = 0

        async def session() -> None:
            nonlocal accepted
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=120) as smtp:
                while queue:
                    raw = queue.pop()
                    try:
                        await smtp.sendmail(SMTP_SENDER, [OWN[0]], raw)
                        accepted += 1
                    except aiosmtplib.SMTPResponseException as exc:
                        key = f"{exc.code} {exc.message[:60]}"
                        refused[key] = refused.get(key, 0) + 1
                        if exc.code == 421 or not smtp.is_connected:
                            await smtp.connect()

        started = time.perf_counter()
        await asyncio.gather(*(session() for _ in range(connections)))
        accept_seconds = time.perf_counter() - started
        while True:
            done, _, _ = await asyncio.to_thread(processed)
            if done - 1 >= accepted:  # the warm-up mail too
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"the spool processed {done} of {accepted} mails in 10 minutes:\n{server.log_tail()}")
            await asyncio.sleep(0.05)
        return accept_seconds, time.perf_counter() - started, accepted

    asyncio.run(warm_up())
    cpu_before = tree_cpu_seconds(server.proc.pid)
    try:
        accept_seconds, stored_seconds, accepted = asyncio.run(run())
        cpu_after = tree_cpu_seconds(server.proc.pid)
        cpu, children_cpu = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
        _, rejected, stored = processed()
        stored -= 1  # the warm-up mail
    finally:
        server.stop()
        engine.dispose()
    return {
        "emails": len(workload),
        "accepted": accepted,
        "refused": refused,
        "accept_seconds": accept_seconds,
        "accept_rate": accepted / accept_seconds,
        "stored_seconds": stored_seconds,
        "stored_rate": accepted / stored_seconds,
        "stored": stored,
        "rejected": rejected,
        "server_cpu_seconds": cpu,
        "parsers_cpu_seconds": children_cpu,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000, help="emails per run (default 3000)")
    ap.add_argument("--batch", type=int, default=100, help="ingest_many batch size (default 100)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of parse() over the workload")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--connections", type=int, default=8, help="SMTP sessions at once in part 3 (default 8)")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite",
                    help="store of part 3 (postgresql: a throw-away cluster, needs the Debian package)")
    ap.add_argument("--only-smtp", action="store_true", help="part 3 alone")
    args = ap.parse_args(argv)

    say(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load {loadavg()}")
    corpus = load_corpus()
    workload = build_workload(corpus, args.messages)
    say(
        f"corpus: {len(corpus)} fixture emails ({sum(map(len, corpus)) / 1e6:.2f} MB), "
        f"workload: {len(workload)} emails ({sum(map(len, workload)) / 1e6:.1f} MB) with unique Message-IDs"
    )
    for raw in corpus[:50]:  # warm imports and caches
        parse(raw)

    p = rows = results = None
    if not args.only_smtp:
        p = bench_parse(workload)
        say("\n1. parse() alone")
        say(
            table(
                ["emails", "seconds", "emails/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[p["emails"], fmt_num(p["seconds"], 2), fmt_num(p["rate"]), fmt_num(p["mb_per_s"], 1),
                  fmt_num(p["p50_ms"], 2), fmt_num(p["p95_ms"], 2), fmt_num(p["p99_ms"], 2), fmt_num(p["max_ms"], 1)]],
            )
        )

        rows, results = [], {}
        for mode in ("sequential", "pipelined"):
            workdir = Path(tempfile.mkdtemp(prefix=f"servicehub-email-bench-{mode}-"))
            try:
                e = results[mode] = bench_end_to_end(workload, args.batch, workdir, pipelined=mode == "pipelined")
            finally:
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    say(f"kept {workdir}")
            rows.append([mode, e["emails"], fmt_num(e["seconds"], 2), fmt_num(e["rate"]), fmt_num(e["parse_seconds"], 2),
                         fmt_num(e["ingest_seconds"], 2), fmt_num(e["emails"] / e["ingest_seconds"]), e["stored"], e["rejected"],
                         fmt_num(e["db_mb"], 1)])
        say(f"\n2. parse + ingest_many (batches of {args.batch}) into a fresh SQLite database each")
        say(table(["mode", "emails", "seconds", "emails/s", "parse s", "ingest s", "ingest-only/s", "stored", "rejected", "db MB"],
                  rows))
        for reason, count in sorted(results["sequential"]["reasons"].items(), key=lambda kv: -kv[1]):
            say(f"   rejected x{count}: {reason}  (fixtures without any sender address / without content)")
        for mode, e in results.items():
            verdict = "met" if e["rate"] >= TARGET_END_TO_END else "NOT met"
            say(f"target >= {TARGET_END_TO_END:.0f} emails/s parse + ingest in process, {mode}: {verdict} ({e['rate']:.0f}/s)")

    smtp_rows = []
    smtp_results = {}
    cluster = None
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    try:
        for backend in backends:
            workdir = Path(tempfile.mkdtemp(prefix=f"servicehub-email-bench-smtp-{backend}-"))
            url = None
            if backend == "postgresql":
                if cluster is None:
                    from tests.support.pgcluster import start_cluster

                    cluster = start_cluster()
                url = cluster.create_database("email_bench")
            try:
                e = smtp_results[backend] = bench_smtp(workload, workdir, connections=args.connections, database_url=url)
            finally:
                if not args.keep:
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    say(f"kept {workdir}")
            smtp_rows.append([backend, e["accepted"], fmt_num(e["accept_rate"]), fmt_num(e["stored_rate"]), e["stored"],
                              e["rejected"], fmt_num(e["server_cpu_seconds"] * 1000 / max(1, e["accepted"]), 2),
                              fmt_num(e["parsers_cpu_seconds"] * 1000 / max(1, e["accepted"]), 2),
                              fmt_num(p["rate"]) if p else "-",
                              fmt_num(results["sequential"]["emails"] / results["sequential"]["ingest_seconds"]) if results else "-"])
    finally:
        if cluster is not None:
            cluster.stop()
    say(f"\n3. SMTP in over {args.connections} connections to `servicehub serve`, stored out by its spool worker")
    say(table(["store", "accepted", "accepted/s", "stored/s", "stored", "rejected", "hub CPU ms/mail", "parsers CPU ms/mail",
               "parse-only/s", "ingest-only/s"],
              smtp_rows))
    for backend, e in smtp_results.items():
        for reason, count in sorted(e["refused"].items(), key=lambda kv: -kv[1]):
            say(f"   {backend}: refused x{count} by the receiver: {reason}")
        verdict = "met" if e["stored_rate"] >= TARGET_END_TO_END else "NOT met"
        say(f"target >= {TARGET_END_TO_END:.0f} emails/s stored end to end (SMTP in, parsed, stored), {backend}: "
            f"{verdict} ({e['stored_rate']:.0f}/s)")
    say(f"peak RSS {peak_rss_mb():.0f} MB")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for raw in workload:
            parse(raw, own_addresses=OWN)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
        say(out.getvalue())


if __name__ == "__main__":
    main()
