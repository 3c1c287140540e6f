"""Crash recovery end to end: the hub is SIGKILLed in the middle of an ingest load and restarted
on the same port and database, while clients keep retrying what was not acknowledged.

The contract under test is the one an integration relies on: retry a message (same external_id,
same body) until the hub answers 200 or 201, and it is then stored exactly once; a replay of a
stored message answers 200 with "created": false and the ids of the first answer. A crash between
"stored" and "answered" must not lose or duplicate anything.

Runs on SQLite and on PostgreSQL (through the db_url fixture), against real server processes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import pytest
from sqlalchemy import text

from hub.auth.accounts import create_token
from hub.store.db import make_engine
from hub.store.migrate import upgrade
from tests.support.serverproc import HubProcess, free_port

pytestmark = pytest.mark.slow

TOTAL = 600  # messages, each with its own external_id
CLIENTS = 16  # concurrent client tasks
KILL_AFTER = 150  # acknowledgements before the SIGKILL
DOWNTIME = 0.5  # seconds between the kill and the restart
SENDERS = 25  # distinct customers the messages come from (identity/customer races too)
LOAD_TIMEOUT = 180.0  # the whole load, both servers' start-up included
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass
class Outcome:
    """What the client saw for one message, up to its acknowledgement."""

    index: int
    external_id: str
    body: dict
    status: int | None = None  # 200 or 201 once acknowledged
    answer: dict | None = None
    attempts: int = 0
    failures: Counter = field(default_factory=Counter)  # why attempts failed: "ServerDisconnectedError", "503", ...


def message_body(run: str, i: int) -> dict:
    sender = i % SENDERS
    return {
        "channel": "api",
        "external_id": f"crash-{run}-{i:04d}",
        "sender": {"address": f"crash-{run}-customer{sender}@example.com", "name": f"Customer {sender}"},
        "subject": f"Order {i}",
        "text": f"message {i} from customer {sender}",
        "metadata": {"i": i},
    }


class Load:
    def __init__(self, server: HubProcess, token: str, run: str):
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}
        self.outcomes = [Outcome(i, f"crash-{run}-{i:04d}", message_body(run, i)) for i in range(TOTAL)]
        self.acked = 0
        self.kill_point = asyncio.Event()
        self.acked_at_kill: int | None = None
        self.acked_at_restart: int | None = None
        self.restart_seconds: float | None = None

    async def post_until_acknowledged(self, session: aiohttp.ClientSession, out: Outcome) -> None:
        delay = 0.02
        while True:
            out.attempts += 1
            try:
                async with session.post(f"{self.server.url}/api/v1/messages", json=out.body, headers=self.headers) as resp:
                    if resp.status in (200, 201):
                        out.status, out.answer = resp.status, await resp.json()
                        self.acked += 1
                        if self.acked >= KILL_AFTER:
                            self.kill_point.set()
                        return
                    # Anything but 5xx is a contract failure, not something to retry.
                    assert resp.status >= 500, f"{out.external_id}: HTTP {resp.status}: {await resp.text()}"
                    out.failures[str(resp.status)] += 1
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                out.failures[type(exc).__name__] += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)

    async def client(self, session: aiohttp.ClientSession, queue: asyncio.Queue) -> None:
        while True:
            try:
                out = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await self.post_until_acknowledged(session, out)

    async def crash_and_restart(self) -> None:
        await self.kill_point.wait()
        self.server.kill()
        self.acked_at_kill = self.acked
        await asyncio.sleep(DOWNTIME)
        started = time.monotonic()
        self.server.start()
        await asyncio.to_thread(self.server.wait_healthy, 60)
        self.restart_seconds = round(time.monotonic() - started, 2)
        self.acked_at_restart = self.acked

    async def run(self) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for out in self.outcomes:
            queue.put_nowait(out)
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, connector=connector) as session:
            crash = asyncio.create_task(self.crash_and_restart(), name="crash-and-restart")
            clients = [asyncio.create_task(self.client(session, queue), name=f"client-{i}") for i in range(CLIENTS)]
            try:
                # A failed restart or a client's contract failure ends the load at once.
                await asyncio.wait([crash, *clients], return_when=asyncio.FIRST_EXCEPTION)
                for task in (crash, *clients):
                    if task.done() and task.exception() is not None:
                        raise task.exception()
                await asyncio.gather(*clients)
                await crash  # the restart must have happened (and finished) by now
            finally:
                for task in (crash, *clients):
                    task.cancel()
                await asyncio.gather(crash, *clients, return_exceptions=True)

    async def replay_all(self) -> list[tuple[Outcome, int, dict]]:
        """Post every message once more: each is a duplicate now."""
        sem = asyncio.Semaphore(CLIENTS)

        async def one(session, out: Outcome):
            async with sem:
                async with session.post(f"{self.server.url}/api/v1/messages", json=out.body, headers=self.headers) as resp:
                    return out, resp.status, await resp.json()

        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            return await asyncio.gather(*(one(session, out) for out in self.outcomes))


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


async def test_sigkill_mid_load_loses_nothing_and_stores_nothing_twice(db_url, tmp_path):
    run = f"{random.getrandbits(32):08x}"
    upgrade(db_url)  # already migrated by the fixture; a no-op that keeps the test self-contained
    engine = make_engine(db_url, pool_size=2)
    server = HubProcess(tmp_path / "data", db_url, free_port())
    try:
        token = create_token(engine, "crash-recovery", role="integration")
        server.start()
        await asyncio.to_thread(server.wait_healthy, 60)

        load = Load(server, token, run)
        try:
            await asyncio.wait_for(load.run(), LOAD_TIMEOUT)
        except TimeoutError:
            pending = [o.external_id for o in load.outcomes if o.status is None]
            pytest.fail(
                f"the load did not finish within {LOAD_TIMEOUT}s: {len(pending)} unacknowledged "
                f"(acked at kill: {load.acked_at_kill}, server starts: {server.starts})\n{server.log_tail()}"
            )

        failures = sum((o.failures for o in load.outcomes), Counter())
        # Shown by pytest when a later assertion fails.
        print(
            f"acked at kill: {load.acked_at_kill}; acked when healthy again: {load.acked_at_restart}; "
            f"restart took {load.restart_seconds}s; answered 200 during the load: "
            f"{sum(o.status == 200 for o in load.outcomes)}; failed attempts: {dict(failures)}"
        )
        # The crash really happened in the middle of the load.
        assert server.starts == 2, server.log_tail()
        assert load.acked_at_kill is not None and KILL_AFTER <= load.acked_at_kill < TOTAL
        assert failures, "no request failed: the kill did not interrupt the load"

        # Every message was acknowledged, and the answer says what happened.
        assert all(o.status in (200, 201) for o in load.outcomes)
        for o in load.outcomes:
            assert set(o.answer) == {"customer_id", "conversation_id", "message_id", "created"}, o.answer
            # 201 = stored by this request; 200 = stored by an earlier attempt whose answer was lost.
            assert o.answer["created"] is (o.status == 201), (o.external_id, o.status, o.answer)
            assert o.status == 201 or o.attempts > 1, (o.external_id, o.status, o.attempts)

        # The store: every external_id exactly once, nothing else, with the acknowledged ids.
        stored = rows(
            engine,
            "SELECT m.external_id, m.id, m.conversation_id, m.direction, c.customer_id "
            "FROM message m JOIN conversation c ON c.id = m.conversation_id "
            "WHERE m.channel = 'api' AND m.external_id LIKE :prefix",
            prefix=f"crash-{run}-%",
        )
        per_id = Counter(r.external_id for r in stored)
        twice = {k: n for k, n in per_id.items() if n != 1}
        assert not twice, f"stored more than once: {sorted(twice.items())[:20]}"
        posted = {o.external_id for o in load.outcomes}
        assert len(posted) == TOTAL
        assert set(per_id) == posted, f"lost: {sorted(posted - set(per_id))[:20]}; unexpected: {sorted(set(per_id) - posted)[:20]}"
        assert all(r.direction == "inbound" for r in stored)
        inbound_total = rows(engine, "SELECT count(*) AS n FROM message WHERE direction = 'inbound'")[0].n
        assert inbound_total == len(posted), "inbound rows other than the posted messages exist"
        by_id = {r.external_id: r for r in stored}
        for o in load.outcomes:
            row = by_id[o.external_id]
            assert (row.id, row.conversation_id, row.customer_id) == (
                o.answer["message_id"], o.answer["conversation_id"], o.answer["customer_id"],
            ), (o.external_id, o.answer, tuple(row))

        # One identity, hence one customer, per sender address: no race left a second one behind.
        idents = rows(
            engine,
            "SELECT address, count(*) AS n, count(DISTINCT customer_id) AS customers FROM identity "
            "WHERE address LIKE :prefix GROUP BY address",
            prefix=f"crash-{run}-customer%",
        )
        assert len(idents) == SENDERS and all(r.n == 1 and r.customers == 1 for r in idents), [tuple(r) for r in idents]
        customers_seen = {o.answer["customer_id"] for o in load.outcomes}
        assert len(customers_seen) == SENDERS

        # Replays after recovery: 200, created false, the same ids, and still nothing stored twice.
        replies = await asyncio.wait_for(load.replay_all(), 60)
        for o, status, answer in replies:
            assert status == 200, (o.external_id, status, answer)
            assert answer == {**o.answer, "created": False}, (o.external_id, o.answer, answer)
        count_after = rows(
            engine, "SELECT count(*) AS n FROM message WHERE channel = 'api' AND external_id LIKE :prefix", prefix=f"crash-{run}-%"
        )[0].n
        assert count_after == TOTAL
    finally:
        server.stop()
        engine.dispose()


# --- the inbound spool ---------------------------------------------------------------------------

SPOOLED = 800  # real mails in the spool when the hub starts


async def test_sigkill_while_the_spool_is_processing_stores_every_item_once(db_url, tmp_path):
    """Mail acknowledged by the receivers is in the spool; the hub is killed while it works through
    it, items in flight in several lanes' batches; after the restart every item is processed and
    every mail stored exactly once."""
    from hub.ingest.spool import counts, spool
    from hub.store.blobs import BlobStore
    from tests.support.email_corpus import copies, real_mails

    data = tmp_path / "data"
    engine = make_engine(db_url, pool_size=2)
    blobs = BlobStore(data / "blobs")
    mails = copies(real_mails(), 0, SPOOLED)
    for i, raw in enumerate(mails):
        spool(engine, blobs, "email", f"smtp:crash-{i}", {"source": "smtp", "rcpt_tos": ["support@shop.example"]}, raw)
    env = {"SERVICEHUB_EMAIL__ADDRESSES": '["support@shop.example"]', "SERVICEHUB_EMAIL__RECEIVER__ENABLED": "true",
           "SERVICEHUB_EMAIL__RECEIVER__PORT": str(free_port()),
           # What was in flight at the kill is taken up again once its lease runs out.
           "SERVICEHUB_OUTBOX_LEASE_SECONDS": "3"}
    server = HubProcess(data, db_url, free_port(), env=env)

    def processed() -> int:
        found = counts(engine)
        return found.get("done", 0) + found.get("rejected", 0)

    try:
        server.start()
        deadline = time.monotonic() + LOAD_TIMEOUT
        # Killed in the middle of a batch: some items done, others claimed and in flight.
        while processed() < SPOOLED // 5 or not counts(engine).get("processing"):
            assert time.monotonic() < deadline and processed() < SPOOLED, f"{counts(engine)}\n{server.log_tail()}"
            await asyncio.sleep(0.01)
        server.kill()
        at_kill = counts(engine)
        assert at_kill.get("processing") and processed() < SPOOLED, at_kill

        server.start()
        while processed() < SPOOLED:
            assert time.monotonic() < deadline, f"{counts(engine)}\n{server.log_tail()}"
            await asyncio.sleep(0.1)
        print(f"spool at the kill: {at_kill}")
        assert counts(engine) == {"done": SPOOLED}
        stored = rows(engine, "SELECT external_id, count(*) AS n FROM message WHERE channel = 'email' "
                              "AND direction = 'inbound' GROUP BY external_id")
        assert len(stored) == SPOOLED and all(r.n == 1 for r in stored)
        # Items in flight at the kill were processed again (their done marks lost), changing nothing.
        assert max(r.attempts for r in rows(engine, "SELECT attempts FROM inbound_spool")) <= 2
    finally:
        server.stop()
        engine.dispose()
