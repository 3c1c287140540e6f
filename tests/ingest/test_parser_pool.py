"""The worker processes the channels' parsers run in (hub/runtime/parser_pool.py): answers and errors come
back, a call cancelled (an item over its time budget) has its process killed and a fresh one takes
its place, a process that dies fails only its own call, and the time spent waiting for a free
process is not charged to the caller's budget."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from hub.contract.errors import RejectedInput
from hub.runtime.budget import Budget, paused
from hub.runtime.parser_pool import ParserDied, ParserPool, share
from tests.support.workload import spin

pytestmark = pytest.mark.timeout(60)


# Run in the worker processes: module-level, so they travel by reference.
def refuse(text: str) -> None:
    raise RejectedInput(f"not an email: {text}")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def unpicklable_answer():
    return lambda: None


@pytest.fixture
async def pool():
    p = ParserPool(2, preload=[__name__, "tests.support.workload"])
    yield p
    await asyncio.to_thread(p.close)


async def test_answers_and_exceptions_come_back(pool):
    from channels.email.parse import parse
    from tests.support.email import mail

    message = await pool.run(parse, mail(message_id="<pool@example.com>"), own_addresses=("support@shop.example",))
    assert message.external_id == "<pool@example.com>" and message.sender.address == "ana@example.com"
    with pytest.raises(RejectedInput, match="not an email: bytes"):
        await pool.run(refuse, "bytes")
    with pytest.raises(RuntimeError, match="could not be sent back"):
        await pool.run(unpicklable_answer)
    assert await pool.run(spin, 0) != os.getpid()  # it ran elsewhere, and the pool still works


async def test_a_call_over_its_budget_is_stopped_and_its_process_replaced(pool):
    before = set(await asyncio.gather(pool.run(spin, 0.2), pool.run(spin, 0.2)))
    assert len(before) == 2
    other = asyncio.ensure_future(pool.run(spin, 0.5))  # the other process stays busy meanwhile
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with Budget(0.5) as budget:
            await pool.run(spin, 60)
    assert budget.exceeded and time.monotonic() - started < 5
    survivor = await other  # not disturbed
    killed = (before - {survivor}).pop()
    # Both slots work again, one of them in a fresh process (once it has started).
    after: set[int] = set()
    for _ in range(50):
        after |= set(await asyncio.gather(pool.run(spin, 0.1), pool.run(spin, 0.1)))
        if len(after) == 2:
            break
    assert len(after) == 2 and survivor in after and killed not in after
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # gone (and reaped)


async def test_a_process_that_dies_fails_only_its_own_call(pool):
    with pytest.raises(ParserDied, match="SIGKILL"):
        await pool.run(die)
    assert await asyncio.gather(*(pool.run(spin, 0.01) for _ in range(4)))


async def test_waiting_for_a_free_process_is_not_charged_to_the_budget(pool):
    # Both processes busy for 1.5 s; a call with a budget of 1 s waits for one, then runs in 0.1 s.
    busy = [asyncio.ensure_future(pool.run(spin, 1.5)) for _ in range(2)]
    await asyncio.sleep(0.2)
    async with Budget(1.0) as budget:
        await pool.run(spin, 0.1)
    assert not budget.exceeded
    await asyncio.gather(*busy)


async def test_a_paused_budget_resumes_with_what_was_left():
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with Budget(0.4):
            with paused():
                await asyncio.sleep(0.6)  # not charged
            await asyncio.sleep(0.3)  # 0.3 of 0.4 charged: still in budget
            await asyncio.sleep(0.3)  # now over
    assert 1.0 <= time.monotonic() - started < 3


async def test_one_channel_grinding_never_takes_every_process():
    pool = ParserPool(3, preload=[__name__, "tests.support.workload"])
    try:
        await pool.run(spin, 0)  # started

        async def as_channel(name: str, seconds: float) -> float:
            share.set(name)  # (this task's own context)
            await pool.run(spin, seconds)
            return time.monotonic()

        started = time.monotonic()
        grinding = [asyncio.ensure_future(as_channel("email", 2.0)) for _ in range(3)]
        await asyncio.sleep(0.2)
        call_done = await as_channel("voice", 0.1)
        email_done = sorted(await asyncio.gather(*grinding))
        # The call went through while two mails were grinding; the third mail waited for one of them.
        assert call_done < email_done[0]
        assert email_done[2] - started >= 3.9
    finally:
        await asyncio.to_thread(pool.close)
