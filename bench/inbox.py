"""The agent workspace under 100,000 conversations: the list, a conversation, search, live updates.

Builds the listing benchmark's dataset (bench/_bench_listing.py: 100,000 conversations over a
year, skewed customers and agents) in a fresh SQLite store, gives open and pending conversations
an SLA due time, the benchmark agent read marks on some of them, tags on 5% and snoozes on 1%,
then drives the real app (aiohttp test server in this process, an agent's session cookie):

- GET /inbox: every view, search (across every conversation, and narrowed to the view), sort by
  priority, a tag, a second page; GET /inbox/c/{id} for conversations across the year;
- server-side times (a timing middleware around the handlers) beside what the client saw;
- live: a change made through the API (a tag added) until its event reaches an open
  /inbox/events stream, p50/p95.

The hub starts as `make run` starts it: the knowledge base loads its model and index in a thread.
While that import runs (~20 s), Python's full garbage collections pause the event loop for up to
~0.4 s; once loading is over the hub sets its long-lived objects aside (hub/runtime/heap.py). The
list page is timed over that start-up window on its own line; the table is measured after it.

Targets: list and conversation p95 < 100 ms, search p95 < 200 ms (server-side), live < 1 s.

    .venv/bin/python bench/inbox.py [--conversations 100000] [--messages 300000] [--reps 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The repository first; this folder's helpers last, after the standard library, so that
# bench/email.py never stands in for the stdlib's `email` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _bench_common import percentile, say, table
from _bench_listing import RARE_NAME, build_sqlite

from hub.conversations.search.message_index import index_all_messages
from hub.store.db import index_search_queue

TARGET_P95_MS = 100.0


def prepare(path: str, agent_id: int) -> None:
    """SLA due times on open/pending conversations (some overdue) and read marks for the agent."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.execute(
        "UPDATE conversation SET sla_due_at = strftime('%Y-%m-%d %H:%M:%f', last_message_at, '+' || (id % 12) || ' hours', '-4 hours')"
        " WHERE status IN ('open', 'pending')"
    )
    con.execute(
        "INSERT INTO read_mark (agent_id, conversation_id, read_at) SELECT ?, id, last_message_at FROM conversation"
        " WHERE id % 3 = 0", (agent_id,)
    )
    con.execute(
        "INSERT INTO conversation_tag (conversation_id, tag, created_at) SELECT id, CASE WHEN id % 2 = 0 THEN 'refund' ELSE 'vip' END,"
        " created_at FROM conversation WHERE id % 20 = 0"
    )
    con.execute(
        "UPDATE conversation SET status = 'snoozed', snoozed_until = strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day')"
        " WHERE id % 100 = 7 AND status = 'open'"
    )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


TARGET_SEARCH_P95_MS = 200.0
TARGET_LIVE_MS = 1000.0
SERVER_MS: list[float] = []  # the timing middleware's record of the request in hand


def timing_middleware():
    from aiohttp import web

    @web.middleware
    async def timed(request, handler):
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            if request.path != "/inbox/events":
                SERVER_MS.append((time.perf_counter() - started) * 1000)

    return timed


async def measure(url: str, views: list[tuple[str, str, float]], cookie: str, reps: int) -> list[list]:
    import aiohttp

    rows = []
    async with aiohttp.ClientSession(cookies={"servicehub_session": cookie}) as session:
        for label, path, target in views:
            times, server = [], []
            for i in range(reps + 3):
                paths = path if isinstance(path, list) else [path]
                one = paths[i % len(paths)]
                SERVER_MS.clear()
                started = time.perf_counter()
                async with session.get(url + one, allow_redirects=False) as resp:
                    body = await resp.read()
                    assert resp.status == 200, (one, resp.status, body[:300])
                if i >= 3:  # the first requests warm caches
                    times.append((time.perf_counter() - started) * 1000)
                    server.append(SERVER_MS[-1])
            n_rows = body.count(b"<tr class=")
            rows.append([label, n_rows, f"{percentile(server, 50):.1f}", f"{percentile(server, 95):.1f}",
                         f"{percentile(times, 95):.1f}", f"< {target:.0f}: " + ("yes" if percentile(server, 95) < target else "NO")])
    return rows


async def measure_live(url: str, cookie: str, token: str, ids: list[int]) -> list[float]:
    """A tag added through the API (another client) until the open list's stream carries its event; ms."""
    import json

    import aiohttp

    lags = []
    async with aiohttp.ClientSession(cookies={"servicehub_session": cookie}) as watcher, aiohttp.ClientSession() as actor:
        async with watcher.get(url + "/inbox/events") as stream:
            await stream.content.readline()  # the stream is open (its hello)
            for n, cid in enumerate(ids):
                started = time.perf_counter()
                resp = await actor.post(f"{url}/api/v1/conversations/{cid}/tags", json={"tag": f"live-{n}"},
                                        headers={"Authorization": f"Bearer {token}"})
                assert resp.status == 200, await resp.text()
                while True:
                    line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
                    if line.startswith("data:") and json.loads(line[5:]).get("conversation_id") == cid:
                        break
                lags.append((time.perf_counter() - started) * 1000)
    return lags


async def wait_until_loaded(base: str, token: str) -> tuple[float, list[float]]:
    """Seconds until the knowledge base answers a search (its model and index loaded), and the
    server-side times of the default list page requested meanwhile."""
    import aiohttp

    started, during = time.perf_counter(), []
    async with aiohttp.ClientSession(cookies={"servicehub_session": token}) as session:
        while True:
            async with session.get(base + "/api/v1/kb/search?q=refund", headers={"Authorization": f"Bearer {token}"}) as resp:
                await resp.read()
                if resp.status == 200:
                    return time.perf_counter() - started, during
                assert resp.status == 503, resp.status
            for _ in range(5):
                SERVER_MS.clear()
                async with session.get(base + "/inbox") as resp:
                    await resp.read()
                during.append(SERVER_MS[-1])


async def run(args) -> None:
    from aiohttp.test_utils import TestServer

    from hub.auth.accounts import create_agent, login
    from hub.config.settings import Settings
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade
    from hub.web.app import create_app

    work = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
    try:
        path = str(work / "servicehub.db")
        url = f"sqlite:///{path}"
        upgrade(url)
        say(f"building {args.conversations:,} conversations / {args.messages:,} messages ...")
        info = build_sqlite(path, args.conversations, args.messages)
        say(f"built in {info.build_seconds:.1f} s (+ {info.analyze_seconds:.1f} s ANALYZE)")
        engine = make_engine(url)
        index_search_queue(engine)  # the bulk load went around write_tx and the background indexer
        index_all_messages(engine)
        agent_id = create_agent(engine, "bench-agent@example.com", "bench password", role="agent", name="Bench Agent")
        with engine.begin() as conn:  # the benchmark agent gets the busiest agent's conversations
            from sqlalchemy import text

            conn.execute(text("UPDATE conversation SET assignee_id = :me WHERE assignee_id = :busy"),
                         {"me": agent_id, "busy": info.busy_agent})
        prepare(path, agent_id)
        token = login(engine, "bench-agent@example.com", "bench password", days=1).token
        engine.dispose()
        settings = Settings(data_dir=work / "data", database_url=url, outbox_inline_worker=False)
        app = create_app(settings, migrate=False)
        app.middlewares.insert(0, timing_middleware())
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        try:
            base = f"http://127.0.0.1:{server.port}"
            loading_s, during = await wait_until_loaded(base, token)
            rare = RARE_NAME.split()[1].lower()[:6]
            L, S = TARGET_P95_MS, TARGET_SEARCH_P95_MS
            views = [
                ("All open (default)", "/inbox", L),
                ("Mine", "/inbox?view=mine", L),
                ("Unassigned", "/inbox?view=unassigned", L),
                ("All", "/inbox?view=all", L),
                ("SLA due soon", "/inbox?view=sla", L),
                ("Snoozed", "/inbox?view=snoozed", L),
                ("by channel: telegram", "/inbox?view=all&channel=telegram", L),
                ("by status: pending", "/inbox?view=all&status=pending", L),
                ("by tag: refund", "/inbox?view=all&tag=refund", L),
                ("All open, by priority", "/inbox?sort=priority", L),
                ("All, by priority", "/inbox?view=all&sort=priority", L),
                ("search: common term", "/inbox?q=kowal", S),
                ("search: common term, only in All open", "/inbox?q=kowal&within=view", S),
                (f"search: rare term ({rare})", f"/inbox?q={rare}", S),
                ("search: message words, rare", "/inbox?q=grinding+noise", S),
                ("search: message words, common", "/inbox?q=refund+payments", S),
                ("search: phone digits", "/inbox?q=%2B44+20", S),
            ]
            # a second page, through the link the first one gives
            import aiohttp

            async with aiohttp.ClientSession(cookies={"servicehub_session": token}) as session:
                async with session.get(base + "/inbox?view=all") as resp:
                    html = await resp.text()
            import html as html_lib
            import re

            nxt = re.search(r'class="next" href="([^"]+)"', html)
            if nxt:
                views.append(("All, page 2", html_lib.unescape(nxt.group(1)), L))
            step = max(1, args.conversations // 50)
            views.append(("conversation page (50 across the year)", [f"/inbox/c/{i}" for i in range(1, args.conversations, step)], L))
            rows = await measure(base, views, token, args.reps)
            lags = await measure_live(base, token, token, list(range(1, args.conversations, max(1, args.conversations // 40))))
        finally:
            await server.close()
        say()
        say(f"start-up: the knowledge base loaded in {loading_s:.1f} s; the default list page meanwhile, {len(during)} requests: "
            f"server p50 {percentile(during, 50):.1f} ms, p95 {percentile(during, 95):.1f} ms (the table below is after it)")
        say(f"The workspace, {args.conversations:,} conversations, SQLite, {args.reps} requests each "
            f"(server-side handler time; the client's p95 beside it, server and client in one process; ms)")
        say(table(["request", "rows", "server p50", "server p95", "client p95", "target (server p95)"], rows))
        say()
        say(f"live: a change through the API until the open list's /inbox/events carries it, {len(lags)} changes: "
            f"p50 {percentile(lags, 50):.1f} ms, p95 {percentile(lags, 95):.1f} ms "
            f"(< {TARGET_LIVE_MS:.0f}: {'yes' if percentile(lags, 95) < TARGET_LIVE_MS else 'NO'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--reps", type=int, default=40)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
