"""The inbound spool: store before acknowledging, process after with retries, reject with a reason."""

from __future__ import annotations

from sqlalchemy import select

from channels.base import PermanentFailure, TemporaryFailure
from hub.blobs import BlobStore
from hub.channel_registry import ChannelRegistry
from hub.models import InboundSpool
from hub.spool import SpoolWorker, counts, reject, rejected, spool
from hub.workqueue import RetryPolicy

spool_t = InboundSpool.__table__


class Recorder:
    name = "fake"

    def __init__(self, failures=(), broken=()):
        self.failures = list(failures)
        self.broken = set(broken)  # payload numbers that always fail
        self.processed = []

    async def start(self, hub):
        pass

    async def stop(self):
        pass

    async def send(self, message):
        raise PermanentFailure("receive only")

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
    from hub.spool import load_state, save_state

    assert load_state(engine, "email", "imap:support") is None
    save_state(engine, "email", "imap:support", {"uidvalidity": 7, "last_uid": 10})
    save_state(engine, "email", "imap:support", {"uidvalidity": 7, "last_uid": 12})
    assert load_state(engine, "email", "imap:support") == {"uidvalidity": 7, "last_uid": 12}
