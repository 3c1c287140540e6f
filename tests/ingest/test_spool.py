"""The inbound spool: store before acknowledging, process after with retries, reject with a reason;
one lane per channel, several items at once in each, a time budget per item."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from sqlalchemy import select

from channels.base import PermanentFailure, TemporaryFailure
from hub.contract.errors import Conflict, NotFound
from hub.gateway.registry import ChannelRegistry
from hub.ingest.spool import QUEUE, SpoolWorker, counts, reject, rejected, retry, spool
from hub.runtime.parser_pool import ParserPool
from hub.store.blobs import BlobStore
from hub.store.models import AuditLog, InboundSpool
from hub.store.workqueue import RetryPolicy
from tests.support.workload import spin

spool_t = InboundSpool.__table__


class ReceiveOnly:
    """A channel that only receives: process() is what the tests vary."""

    name = "fake"

    async def start(self, hub):
        pass

    async def stop(self):
        pass

    async def send(self, message):
        raise PermanentFailure("receive only")


class Recorder(ReceiveOnly):

    def __init__(self, failures=(), broken=()):
        self.failures = list(failures)
        self.broken = set(broken)  # payload numbers that always fail
        self.processed = []

    async def process(self, payload, raw):
        if payload["n"] in self.broken:
            raise ValueError("parser bug")
        if self.failures:
            raise self.failures.pop(0)
        self.processed.append((payload, raw))


def worker(engine, channel, tmp_path):
    reg = ChannelRegistry()
    reg.register(channel)
    return SpoolWorker(engine, reg, BlobStore(tmp_path / "blobs"), policy=RetryPolicy(max_attempts=3, base_seconds=0, max_seconds=0))


async def test_spooled_items_are_processed_once_and_redeliveries_ignored(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    assert spool(engine, blobs, "fake", "uid-1", {"n": 1}, raw=b"raw bytes")
    assert not spool(engine, blobs, "fake", "uid-1", {"n": 1}, raw=b"raw bytes")
    channel = Recorder()
    w = worker(engine, channel, tmp_path)
    assert await w.run_once() == 1
    assert channel.processed == [({"n": 1}, b"raw bytes")]
    assert await w.run_once() == 0
    assert counts(engine) == {"done": 1}


async def test_temporary_failures_retry_and_permanent_ones_reject_with_the_reason(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    spool(engine, blobs, "fake", "a", {"n": 1})
    spool(engine, blobs, "fake", "b", {"n": 2})
    channel = Recorder([TemporaryFailure("file server busy"), PermanentFailure("not an email: no headers")])
    w = worker(engine, channel, tmp_path)
    await w.run_once()
    await w.run_once()
    assert channel.processed == [({"n": 1}, None)]
    assert counts(engine) == {"done": 1, "rejected": 1}
    [item] = rejected(engine)
    assert (item["key"], item["reason"], item["attempts"]) == ("b", "not an email: no headers", 1)


async def test_one_broken_item_never_blocks_the_others(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    for i in range(5):
        spool(engine, blobs, "fake", f"k{i}", {"n": i})
    channel = Recorder(broken={0})  # k0 fails every time: three attempts, then rejected
    w = worker(engine, channel, tmp_path)
    for _ in range(4):
        await w.run_once()
    assert sorted(p["n"] for p, _ in channel.processed) == [1, 2, 3, 4]
    [item] = rejected(engine)
    assert item["key"] == "k0" and "ValueError: parser bug" in item["reason"] and item["attempts"] == 3


def test_input_refused_on_arrival_is_recorded_with_what_was_received(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    reject(engine, blobs, "fake", "uid-7", "message is 40 MB, over the 25 MB limit", {"uid": 7}, raw=b"headers only")
    [item] = rejected(engine, channel="fake")
    assert item["reason"].startswith("message is 40 MB")
    assert blobs.get(item["raw_sha256"]) == b"headers only"
    with engine.connect() as conn:
        assert conn.execute(select(spool_t.c.status)).scalar_one() == "rejected"


def test_channel_state_round_trips_and_overwrites(engine):
    from hub.store.state import load_state, save_state

    assert load_state(engine, "email", "imap:support") is None
    save_state(engine, "email", "imap:support", {"uidvalidity": 7, "last_uid": 10})
    save_state(engine, "email", "imap:support", {"uidvalidity": 7, "last_uid": 12})
    assert load_state(engine, "email", "imap:support") == {"uidvalidity": 7, "last_uid": 12}


# --- one item never holds up the others --------------------------------------------------------


class Gated(ReceiveOnly):
    """A channel whose items wait for a gate (a mail the parser grinds on, a file server that
    hangs) when their payload says so; the others go straight through."""

    def __init__(self, name: str):
        self.name = name
        self.gate = asyncio.Event()
        self.processed: list[int] = []

    async def process(self, payload, raw):
        if payload.get("gated"):
            await self.gate.wait()
        self.processed.append(payload["n"])


def lanes_worker(engine, tmp_path, *channels, **options) -> SpoolWorker:
    reg = ChannelRegistry()
    for channel in channels:
        reg.register(channel)
    options.setdefault("policy", RetryPolicy(max_attempts=3, base_seconds=0, max_seconds=0))
    return SpoolWorker(engine, reg, BlobStore(tmp_path / "blobs"), poll_seconds=0.05, **options)


@contextlib.asynccontextmanager
async def running(worker: SpoolWorker):
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_channel_with_stuck_items_never_delays_another_channel(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    email, telegram = Gated("email"), Gated("telegram")
    # A backlog of email, every slot of the email lane stuck on its first items.
    for i in range(100):
        spool(engine, blobs, "email", f"e{i}", {"n": i, "gated": True})
    w = lanes_worker(engine, tmp_path, email, telegram, concurrency=4)
    async with running(w):
        spool(engine, blobs, "telegram", "t1", {"n": 1})
        w.wake("telegram")
        await wait_for(lambda: telegram.processed == [1], "the Telegram update behind 100 stuck mails")
        assert email.processed == []
        email.gate.set()
        await wait_for(lambda: len(email.processed) == 100, "the mails once unstuck")
    assert counts(engine) == {"done": 101}


async def test_a_stuck_item_never_delays_the_next_ones_of_its_own_channel(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    email = Gated("email")
    spool(engine, blobs, "email", "stuck", {"n": 0, "gated": True})
    for i in range(1, 50):
        spool(engine, blobs, "email", f"e{i}", {"n": i})
    w = lanes_worker(engine, tmp_path, email, concurrency=4)
    async with running(w):
        await wait_for(lambda: len(email.processed) == 49, "the 49 mails behind the stuck one")
        email.gate.set()
        await wait_for(lambda: len(email.processed) == 50, "the stuck one")
    assert sorted(email.processed) == list(range(50))


class Grinding(ReceiveOnly):
    """A channel whose parser (in the pool's worker processes) takes payload["seconds"]."""

    name = "email"

    def __init__(self, pool: ParserPool):
        self.pool = pool
        self.processed: list[int] = []

    async def process(self, payload, raw):
        await self.pool.run(spin, payload["seconds"])
        self.processed.append(payload["n"])


async def test_an_item_over_its_budget_is_stopped_rejected_and_can_be_retried_with_more(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    pool = ParserPool(2, preload=["tests.support.workload"])
    channel = Grinding(pool)
    try:
        spool(engine, blobs, "email", "hostile", {"n": 0, "seconds": 3600})  # would grind for an hour
        spool(engine, blobs, "email", "big", {"n": 1, "seconds": 1.5})  # legitimate, but over the budget
        for i in range(2, 12):
            spool(engine, blobs, "email", f"m{i}", {"n": i, "seconds": 0.01})
        w = lanes_worker(engine, tmp_path, channel, budget_seconds=0.5)
        started = time.monotonic()
        async with running(w):
            await wait_for(lambda: len(rejected(engine)) == 2 and len(channel.processed) == 10, "two rejected, ten stored")
            assert time.monotonic() - started < 30  # nobody waited for the hour
            by_key = {item["key"]: item for item in rejected(engine)}
            assert set(by_key) == {"hostile", "big"}
            for item in by_key.values():
                assert "longer than its time budget of 0.5 s" in item["reason"], item
                assert f"/api/v1/inbound/rejected/{item['id']}/retry" in item["reason"]
                assert item["attempts"] == 1  # never retried on its own: it would only grind again

            # An admin gives the legitimate one more time.
            again = retry(engine, by_key["big"]["id"], actor="agent:1", budget_seconds=10)
            assert (again["status"], again["budget_seconds"], again["attempts"]) == ("pending", 10.0, 0)
            w.wake("email")
            await wait_for(lambda: 1 in channel.processed, "the retried item")
        assert counts(engine) == {"done": 11, "rejected": 1}
        assert [i["key"] for i in rejected(engine)] == ["hostile"]
    finally:
        await asyncio.to_thread(pool.close)


def test_retrying_needs_a_rejected_item_and_is_audit_logged(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    reject(engine, blobs, "email", "k1", "not an email: no headers", {"uid": 1}, raw=b"junk")
    spool(engine, blobs, "email", "k2", {"uid": 2})
    [item] = rejected(engine)
    with pytest.raises(NotFound):
        retry(engine, 999_999, actor="agent:1")
    pending_id = item["id"] + 1
    with pytest.raises(Conflict, match="is pending, not rejected"):
        retry(engine, pending_id, actor="agent:1")
    again = retry(engine, item["id"], actor="agent:1")
    assert again["status"] == "pending" and again["reason"] == "not an email: no headers"  # kept until it succeeds
    with pytest.raises(Conflict):
        retry(engine, item["id"], actor="agent:1")  # twice: it is pending now
    with engine.connect() as conn:
        logged = conn.execute(select(AuditLog.__table__).where(AuditLog.__table__.c.action == "inbound.retry")).all()
    assert [(r.actor, r.target, r.detail["key"]) for r in logged] == [("agent:1", f"inbound:{item['id']}", "k1")]


async def test_stopping_hands_unfinished_items_back_at_once(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    email = Gated("email")
    for i in range(6):
        spool(engine, blobs, "email", f"e{i}", {"n": i, "gated": i >= 3})
    w = lanes_worker(engine, tmp_path, email, concurrency=8)
    async with running(w):
        await wait_for(lambda: len(email.processed) == 3, "the three ungated items")
    # Stopped with three items in flight: they are due again now, their attempt not counted,
    # and the three done are marked done (not processed a second time at the next start).
    with engine.connect() as conn:
        rows = conn.execute(select(spool_t.c.key, spool_t.c.status, spool_t.c.attempts).order_by(spool_t.c.id)).all()
    assert [(r.status, r.attempts) for r in rows] == [("done", 1)] * 3 + [("pending", 0)] * 3
    email.gate.set()
    assert await lanes_worker(engine, tmp_path, email).run_once() == 3
    assert sorted(email.processed) == list(range(6))


async def test_long_running_items_keep_their_lease(engine, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    email = Gated("email")
    spool(engine, blobs, "email", "slow", {"n": 0, "gated": True})
    policy = RetryPolicy(max_attempts=3, base_seconds=0, max_seconds=0, lease_seconds=0.3)
    w = lanes_worker(engine, tmp_path, email, policy=policy)
    async with running(w):
        await asyncio.sleep(1.2)  # four leases long
        # Renewed all along: another worker finds nothing to take over.
        assert QUEUE.claim(engine, limit=10, policy=policy) == []
        email.gate.set()
        await wait_for(lambda: email.processed == [0], "the slow item")
    assert counts(engine) == {"done": 1}


class Counting(ReceiveOnly):
    """Records how many raw bytes its items hold at once."""

    name = "email"

    def __init__(self):
        self.holding = 0
        self.seen: set[int] = set()  # bytes held at once, at each item's start
        self.processed: list[int] = []

    async def process(self, payload, raw):
        self.holding += len(raw)
        self.seen.add(self.holding)
        await asyncio.sleep(0.05)
        self.holding -= len(raw)
        self.processed.append(payload["n"])


async def test_a_burst_of_large_items_is_not_read_into_memory_at_once(engine, tmp_path, monkeypatch):
    from hub.ingest import spool as spool_module

    monkeypatch.setattr(spool_module, "LANE_BYTES", 1000)
    blobs = BlobStore(tmp_path / "blobs")
    for i in range(6):
        spool(engine, blobs, "email", f"m{i}", {"n": i}, raw=bytes([i]) * 400)
    spool(engine, blobs, "email", "huge", {"n": 6}, raw=b"x" * 5000)  # over the limit on its own: let in alone
    channel = Counting()
    w = lanes_worker(engine, tmp_path, channel, concurrency=8)
    assert await w.run_once() == 7
    assert sorted(channel.processed) == list(range(7))
    # The huge one alone; never three of the others at once (1,200 bytes), but two side by side.
    assert 5000 in channel.seen and max(channel.seen - {5000}) == 800
