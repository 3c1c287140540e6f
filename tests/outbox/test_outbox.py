"""The outbox on SQLite and PostgreSQL: atomic enqueue with the reply, delivery through the channel
registry, backoff with jitter, retry-after, dead letters, lease recovery, and one delivery per
row with several workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from channels.base import Delivery, PermanentFailure, TemporaryFailure
from channels.log import LogChannel
from hub.auth.accounts import create_agent
from hub.contract.messages import InboundMessage, Sender, ThreadHints
from hub.contract.principal import Principal
from hub.conversations.queries import get_conversation
from hub.conversations.replies import reply
from hub.gateway.registry import ChannelRegistry
from hub.ingest.pipeline import ingest
from hub.outbox.queue import claim, enqueue
from hub.outbox.worker import OutboxWorker
from hub.store.db import write_tx
from hub.store.models import Outbox, utcnow
from hub.store.workqueue import RetryPolicy

outbox_t = Outbox.__table__
AGENT = Principal("agent", 1, "agent", "agent@example.com")


@pytest.fixture(autouse=True)
def _agent(engine):
    assert create_agent(engine, "agent@example.com", "a long password") == AGENT.id


class ScriptedChannel:
    """Fails as scripted, then delivers; records every attempt."""

    def __init__(self, name="log", failures=()):
        self.name = name
        self.failures = list(failures)
        self.attempts = []
        self.delivered = []

    async def start(self, ingest):
        pass

    async def stop(self):
        pass

    async def send(self, message):
        self.attempts.append(message.idempotency_key)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(message)
        return Delivery(external_id=f"ext-{message.idempotency_key}")


def registry_with(channel) -> ChannelRegistry:
    reg = ChannelRegistry()
    reg.register(channel)
    return reg


def seed_conversation(engine, channel="log"):
    r = ingest(engine, InboundMessage(channel, "in-1", Sender("ana@example.com", "Ana"), "where is my order?",
                                      subject="Order", thread=ThreadHints(thread_key="chat-9")))
    return r.conversation_id


def outbox_rows(engine):
    with engine.connect() as conn:
        return conn.execute(select(outbox_t).order_by(outbox_t.c.id)).all()


def make_due(engine):
    with engine.begin() as conn:
        conn.execute(update(outbox_t).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


FAST = RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.02)


def test_reply_and_its_outbox_row_are_written_together(engine):
    cid = seed_conversation(engine)
    msg = reply(engine, cid, AGENT, "It ships today.")
    rows = outbox_rows(engine)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.channel, row.message_id, row.status) == ("message", "log", msg["id"], "pending")
    assert row.payload["recipient"] == "ana@example.com"
    assert row.payload["thread_key"] == "chat-9"
    assert row.payload["reply_to"] == ["in-1"]
    assert msg["delivery"]["state"] == "queued"
    conv = get_conversation(engine, cid)
    assert conv["status"] == "pending" and conv["first_response_at"] is not None


def test_a_failed_transaction_leaves_no_outbox_row(engine):
    cid = seed_conversation(engine)
    with pytest.raises(RuntimeError):
        with write_tx(engine) as conn:
            enqueue(conn, kind="message", payload={}, idempotency_key="k1", channel="log")
            raise RuntimeError("the change that caused it failed")
    assert outbox_rows(engine) == []
    assert cid


def test_enqueue_is_idempotent_on_its_key(engine):
    with write_tx(engine) as conn:
        first = enqueue(conn, kind="escalation", payload={"n": 1}, idempotency_key="esc:1")
        again = enqueue(conn, kind="escalation", payload={"n": 2}, idempotency_key="esc:1")
    assert first is not None and again is None
    assert [r.payload for r in outbox_rows(engine)] == [{"n": 1}]


async def test_worker_delivers_through_the_registry_and_records_the_channel_id(engine):
    channel = LogChannel("log")
    cid = seed_conversation(engine)
    msg = reply(engine, cid, AGENT, "On its way.")
    worker = OutboxWorker(engine, registry_with(channel), policy=FAST)
    assert await worker.run_once() == 1
    assert [m.text for m in channel.sent] == ["On its way."]
    sent = channel.sent[0]
    assert (sent.recipient, sent.conversation_id, sent.message_id) == ("ana@example.com", cid, msg["id"])
    stored = next(m for m in get_conversation(engine, cid)["messages"] if m["id"] == msg["id"])
    assert stored["delivery"]["state"] == "sent" and stored["delivery"]["attempts"] == 1
    assert stored["external_id"] == f"log:message:{msg['id']}"
    assert await worker.run_once() == 0  # nothing delivered twice


async def test_temporary_failure_backs_off_then_delivers(engine):
    channel = ScriptedChannel(failures=[TemporaryFailure("SMTP 451 try later")])
    cid = seed_conversation(engine)
    reply(engine, cid, AGENT, "hello")
    worker = OutboxWorker(engine, registry_with(channel), policy=RetryPolicy(max_attempts=5, base_seconds=30, max_seconds=60))
    await worker.run_once()
    row = outbox_rows(engine)[0]
    assert row.status == "pending" and row.attempts == 1 and "451" in row.last_error
    # Backoff with jitter: between half and the whole of base * 2^0 seconds from now.
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 14 <= wait <= 31
    assert await worker.run_once() == 0  # not due yet
    make_due(engine)
    await worker.run_once()
    row = outbox_rows(engine)[0]
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None
    assert len(channel.delivered) == 1


async def test_backend_retry_after_wins_over_backoff(engine):
    channel = ScriptedChannel(failures=[TemporaryFailure("429 Too Many Requests", retry_after=600)])
    reply(engine, seed_conversation(engine), AGENT, "hello")
    await OutboxWorker(engine, registry_with(channel), policy=FAST).run_once()
    wait = (outbox_rows(engine)[0].next_attempt_at - utcnow()).total_seconds()
    assert 590 <= wait <= 600


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(base_seconds=2, max_seconds=100)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (6, 64), (7, 100), (20, 100)]:
        samples = [policy.backoff(attempts) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not lockstep


async def test_row_goes_dead_after_max_attempts_with_the_reason_visible(engine):
    channel = ScriptedChannel(failures=[TemporaryFailure(f"timeout {i}") for i in range(10)])
    cid = seed_conversation(engine)
    msg = reply(engine, cid, AGENT, "hello")
    worker = OutboxWorker(engine, registry_with(channel), policy=FAST)
    for _ in range(FAST.max_attempts):
        make_due(engine)
        await worker.run_once()
    row = outbox_rows(engine)[0]
    assert row.status == "dead" and row.attempts == 3 and row.last_error == "timeout 2"
    delivery = next(m for m in get_conversation(engine, cid)["messages"] if m["id"] == msg["id"])["delivery"]
    assert delivery == {"state": "failed", "attempts": 3, "last_error": "timeout 2", "next_attempt_at": None, "sent_at": None}
    make_due(engine)
    assert await worker.run_once() == 0


async def test_permanent_failure_is_dead_at_once(engine):
    channel = ScriptedChannel(failures=[PermanentFailure("Forbidden: bot was blocked by the user")])
    reply(engine, seed_conversation(engine), AGENT, "hello")
    await OutboxWorker(engine, registry_with(channel), policy=FAST).run_once()
    row = outbox_rows(engine)[0]
    assert row.status == "dead" and row.attempts == 1 and "blocked" in row.last_error


async def test_unconfigured_channel_fails_with_a_clear_reason(engine):
    reply(engine, seed_conversation(engine, channel="log"), AGENT, "hello")
    await OutboxWorker(engine, ChannelRegistry(), policy=FAST).run_once()
    row = outbox_rows(engine)[0]
    assert row.status == "dead" and "no adapter is configured for channel 'log'" in row.last_error


async def test_a_crashed_workers_lease_expires_and_the_row_is_delivered(engine):
    reply(engine, seed_conversation(engine), AGENT, "hello")
    policy = RetryPolicy(lease_seconds=60)
    claimed = claim(engine, limit=10, policy=policy)  # ...and the worker dies here
    assert len(claimed) == 1
    assert claim(engine, limit=10, policy=policy) == []  # leased: nobody else takes it
    later = utcnow() + timedelta(seconds=61)
    again = claim(engine, limit=10, policy=policy, now=later)
    assert [r.id for r in again] == [claimed[0].id] and again[0].attempts == 2


async def test_several_workers_deliver_each_row_once(engine):
    cid = seed_conversation(engine)
    for i in range(120):
        reply(engine, cid, AGENT, f"reply {i}")
    channel = ScriptedChannel()

    class Slow(ScriptedChannel):
        async def send(self, message):
            await asyncio.sleep(0.001)
            return await channel.send(message)

    workers = [
        OutboxWorker(engine, registry_with(Slow()), policy=FAST, batch_size=5) for _ in range(4)
    ]

    async def drain(worker):
        while await worker.run_once():
            pass

    await asyncio.gather(*(drain(w) for w in workers))
    keys = Counter(channel.attempts)
    assert len(keys) == 120 and set(keys.values()) == {1}
    assert {r.status for r in outbox_rows(engine)} == {"sent"}


class SlowChannel(ScriptedChannel):
    """Delivers once `go` is set: a send in progress when the worker is told to stop."""

    def __init__(self):
        super().__init__()
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def send(self, message):
        self.started.set()
        await self.go.wait()
        return await super().send(message)


async def test_a_stopping_worker_finishes_the_send_in_hand_and_gives_back_the_rest(engine):
    channel = SlowChannel()
    cid = seed_conversation(engine)
    for n in range(3):
        reply(engine, cid, AGENT, f"answer {n}")
    worker = OutboxWorker(engine, registry_with(channel), batch_size=10)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(channel.started.wait(), 10)
    task.cancel()  # SIGTERM arrives while the first reply is being sent
    await asyncio.sleep(0.05)
    channel.go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    first, *rest = outbox_rows(engine)
    # The send in hand was finished and recorded: it is never sent a second time.
    assert [m.text for m in channel.delivered] == ["answer 0"]
    assert (first.status, first.attempts) == ("sent", 1)
    # The others were not started: back in the queue, due now, the attempt not counted.
    assert [(r.status, r.attempts, r.locked_until) for r in rest] == [("pending", 0, None)] * 2
    again = OutboxWorker(engine, registry_with(channel), batch_size=10)
    assert await again.run_once() == 2
    assert [m.text for m in channel.delivered] == ["answer 0", "answer 1", "answer 2"]
