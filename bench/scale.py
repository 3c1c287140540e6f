"""Several processes on one PostgreSQL: HTTP ingest and listing latency with one and with two web
processes (and a worker), the CPU each process spends per message, and how long each elected
loop takes to move to another worker when its holder is killed (kill -9) or stopped (SIGTERM).

    .venv/bin/python bench/scale.py [--messages 1500] [--clients 16]

Starts its own throw-away PostgreSQL cluster (tests/support/pgcluster.py) and a stand-in Telegram
(the bot's poller is one of the elected loops). Prints figures; asserts nothing.

On two cores shared with PostgreSQL the throughput cannot grow much with a second web process:
the figure to read is CPU per message per process. With C cores, ingest can go up to about
C / (CPU seconds per message summed over the web processes, the worker and PostgreSQL) messages
per second, until PostgreSQL's own share (one commit per group of messages) is the limit; the
script prints that estimate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# bench/ holds email.py: off the front of the path (it would shadow the standard library's email),
# at its end for the shared helpers.
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

import aiohttp  # noqa: E402
from _bench_common import percentile, proc_cpu_seconds  # noqa: E402

TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
LEASES = ("telegram-poll:default", "segments", "sla", "demand-push")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1500, help="messages posted per phase")
    ap.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    ap.add_argument("--listings", type=int, default=200, help="inbox listings timed per phase")
    return ap.parse_args(argv)


def _postgres_cpu(cluster) -> float:
    """CPU seconds of every PostgreSQL process of the cluster (postmaster's children)."""
    total = 0.0
    pid_file = Path(cluster.datadir) / "postmaster.pid"
    try:
        master = int(pid_file.read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if int(entry) == master or ppid == master:
            total += proc_cpu_seconds(int(entry)) or 0.0
    return total


async def _load(webs, token: str, run: str, messages: int, clients: int, listings: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    listing: list[float] = []
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)

    async def client(session):
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            web = webs[i % len(webs)]
            body = {"channel": "api", "external_id": f"{run}-{i}", "subject": f"Order {i}", "text": f"message {i}",
                    "sender": {"address": f"{run}-c{i % 200}@example.com", "name": f"Customer {i % 200}"}}
            started = time.perf_counter()
            async with session.post(f"{web.url}/api/v1/messages", json=body, headers=headers) as resp:
                await resp.read()
                assert resp.status in (200, 201), resp.status
            latencies.append(time.perf_counter() - started)

    async def lister(session):
        for n in range(listings):
            web = webs[n % len(webs)]
            started = time.perf_counter()
            async with session.get(f"{web.url}/api/v1/conversations?limit=50", headers=headers) as resp:
                await resp.read()
            listing.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 2)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)), lister(session))
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "listing": listing}


async def _settle(procs, *, idle: float = 0.15, limit: float = 90.0) -> None:
    """Wait until every process spends less than `idle` CPU seconds a second (start-up work done)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = [proc_cpu_seconds(p.proc.pid) or 0.0 for p in procs]
        await asyncio.sleep(1.0)
        after = [proc_cpu_seconds(p.proc.pid) or 0.0 for p in procs]
        if all(b - a < idle for a, b in zip(before, after)):
            return


async def _phase(name, webs, worker, cluster, token, args) -> None:
    procs = [*webs, worker]
    # Warm-up, not counted: a process's first requests pay for imports, caches and connections,
    # and a new web process loads the knowledge base's model in the background (seconds of CPU).
    await _load(webs, token, name.replace(" ", "") + "-warm", 50 * len(webs), args.clients, 0)
    await _settle(procs)
    before = {p.port: proc_cpu_seconds(p.proc.pid) or 0.0 for p in procs}
    pg_before = _postgres_cpu(cluster)
    out = await _load(webs, token, name.replace(" ", ""), args.messages, args.clients, args.listings)
    await asyncio.sleep(1.0)  # the worker finishes what the load queued (routing, SLA)
    cpu = {p.port: (proc_cpu_seconds(p.proc.pid) or 0.0) - before[p.port] for p in procs}
    pg = _postgres_cpu(cluster) - pg_before
    n = args.messages
    lat = out["latencies"]
    print(f"\n{name}: {n} messages by {args.clients} clients in {out['elapsed']:.1f} s = {n / out['elapsed']:.0f} msg/s")
    print(f"  ingest latency p50 {percentile(lat, 50) * 1000:.1f} ms, p95 {percentile(lat, 95) * 1000:.1f} ms, "
          f"p99 {percentile(lat, 99) * 1000:.1f} ms")
    li = out["listing"]
    print(f"  listing (50 conversations) during the load: p50 {percentile(li, 50) * 1000:.1f} ms, "
          f"p95 {percentile(li, 95) * 1000:.1f} ms")
    total = 0.0
    for p in procs:
        per = cpu[p.port] / n * 1000
        total += per
        print(f"  CPU per message, {p.role} :{p.port}: {per:.2f} ms")
    print(f"  CPU per message, PostgreSQL: {pg / n * 1000:.2f} ms")
    total += pg / n * 1000
    print(f"  all processes: {total:.2f} ms CPU per message -> about {1000 / total:.0f} msg/s per core "
          f"({2000 / total:.0f} on 2 cores, {4000 / total:.0f} on 4, {8000 / total:.0f} on 8, if nothing else limits)")


async def _held(session, proc) -> list[str]:
    try:
        async with session.get(f"{proc.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return (await resp.json()).get("leases", [])
    except (TimeoutError, aiohttp.ClientError, OSError):
        return []


async def _failover(workers, how: str) -> None:
    async with aiohttp.ClientSession() as session:
        holder = None
        deadline = time.monotonic() + 30
        while holder is None and time.monotonic() < deadline:
            for w in workers:
                if set(LEASES) <= set(await _held(session, w)):
                    holder = w
            await asyncio.sleep(0.1)
        if holder is None:
            print(f"  {how}: no worker holds every lease; skipped")
            return
        other = next(w for w in workers if w is not holder)
        started = time.monotonic()
        if how == "kill -9":
            holder.kill()
        else:
            await asyncio.to_thread(holder.stop, 30)
        taken: dict[str, float] = {}
        while len(taken) < len(LEASES) and time.monotonic() - started < 40:
            now_held = await _held(session, other)
            for name in now_held:
                if name in LEASES:
                    taken.setdefault(name, time.monotonic() - started)
            await asyncio.sleep(0.05)
        figures = ", ".join(f"{name} {taken[name]:.1f} s" if name in taken else f"{name} not taken" for name in LEASES)
        print(f"  after {how} of the holder: {figures}")
        holder.start()
        await asyncio.to_thread(holder.wait_healthy, 60)


async def main_async(args) -> int:
    from hub.auth.accounts import create_token
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade
    from tests.support.fake_telegram import FakeTelegram
    from tests.support.pgcluster import start_cluster
    from tests.support.serverproc import HubProcess, free_port

    cluster = start_cluster()
    telegram = FakeTelegram()
    await telegram.start()
    telegram.add_bot(TOKEN, id=110201543, username="ShopHelpBot")
    procs = []
    try:
        url = cluster.create_database("scale")
        upgrade(url)
        engine = make_engine(url)
        token = create_token(engine, "bench", role="integration")
        engine.dispose()
        root = Path(tempfile.mkdtemp(prefix="servicehub-scale-"))
        config = root / "servicehub.toml"
        config.write_text(textwrap.dedent(f"""
            [[telegram_bots]]
            name = "default"
            token = "{TOKEN}"
            mode = "polling"
            api_url = "{telegram.url}"
            [kb]
            warm_up = false
        """))
        env = {"SERVICEHUB_CONFIG": str(config)}

        def process(role):
            proc = HubProcess(root / "data", url, free_port(), env=env, role=role)
            procs.append(proc)
            return proc

        web1, web2, worker1, worker2 = process("web"), process("web"), process("worker"), process("worker")
        for proc in (web1, worker1):
            proc.start()
        for proc in (web1, worker1):
            await asyncio.to_thread(proc.wait_healthy, 60)
        print(f"PostgreSQL {cluster.url('scale').split('@')[-1]}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f} at the start; {args.messages} messages a phase")
        await _phase("one web process", [web1], worker1, cluster, token, args)
        web2.start()
        await asyncio.to_thread(web2.wait_healthy, 60)
        await _phase("two web processes", [web1, web2], worker1, cluster, token, args)

        print("\nfailover of the elected loops (lease 10 s, renewed every 3 s, tried every 2 s):")
        worker2.start()
        await asyncio.to_thread(worker2.wait_healthy, 60)
        await _failover([worker1, worker2], "kill -9")
        await _failover([worker1, worker2], "SIGTERM")
    finally:
        for proc in procs:
            proc.stop()
        await telegram.close()
        cluster.stop()
    return 0


def main(argv=None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
