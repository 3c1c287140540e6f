"""Elected singletons (hub/runtime/leases.py) against a real store: one holder at a time, taken over
when the holder dies or is cut off, released at a clean stop, fenced by generation."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from hub.runtime import leases
from hub.runtime.leases import Elections, LeaseLost
from hub.store.db import is_sqlite

# Short timings so a takeover takes about a second; the same proportions as the defaults.
FAST = dict(lease_seconds=1.2, renew_seconds=0.3, retry_seconds=0.1, safety_seconds=0.3)


class Runs:
    """What elected loops did: (holder, start, end) per run, by the monotonic clock."""

    def __init__(self):
        self.spans: list[list] = []

    def loop(self, holder: str, *, batches: list | None = None):
        async def run():
            span = [holder, time.monotonic(), None]
            self.spans.append(span)
            try:
                while True:
                    leases.check()
                    if batches is not None:
                        batches.append(holder)
                    await asyncio.sleep(0.02)
            finally:
                span[2] = time.monotonic()
        return run

    def running(self) -> list[str]:
        return [s[0] for s in self.spans if s[2] is None]

    def assert_never_twice(self):
        spans = sorted(self.spans, key=lambda s: s[1])
        for a, b in zip(spans, spans[1:]):
            assert a[2] is not None and a[2] <= b[1], f"{a[0]} still ran when {b[0]} started"


async def _until(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _cancel(*tasks):
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_sqlite_single_process_always_holds(engine):
    if not is_sqlite(engine):
        pytest.skip("the PostgreSQL behaviour is tested below")

    async def scenario():
        elections = Elections(engine, **FAST)
        runs = Runs()
        task = asyncio.create_task(elections.run("imap:support", runs.loop("a")))
        await _until(lambda: runs.running() == ["a"], 2)
        assert elections.holds("imap:support") and elections.held() == ["imap:support"]
        await _cancel(task)
        assert elections.held() == []

    asyncio.run(scenario())


def _postgres_only(engine):
    if is_sqlite(engine):
        pytest.skip("on SQLite the hub is one process and holds every lease")


def test_one_holder_and_takeover_when_it_is_cut_off(engine):
    _postgres_only(engine)

    async def scenario():
        a, b = Elections(engine, holder="a", **FAST), Elections(engine, holder="b", **FAST)
        runs = Runs()
        ta = asyncio.create_task(a.run("telegram-poll:shop", runs.loop("a")))
        await _until(lambda: runs.running() == ["a"], 3)
        tb = asyncio.create_task(b.run("telegram-poll:shop", runs.loop("b")))
        await asyncio.sleep(3 * FAST["lease_seconds"])
        assert runs.running() == ["a"] and a.held() == ["telegram-poll:shop"] and b.held() == []

        # a is cut off from the store: its renewals fail. It stops on its own deadline, before
        # the store lets b take the lease; b takes it within a lease period and a retry.
        def unreachable(*args, **kwargs):
            raise OSError("network is unreachable")

        a._statement = unreachable
        cut = time.monotonic()
        await _until(lambda: runs.running() == ["b"], FAST["lease_seconds"] + 1.5)
        takeover = time.monotonic() - cut
        assert takeover <= FAST["lease_seconds"] + FAST["retry_seconds"] + 1.0
        runs.assert_never_twice()
        assert b.held() == ["telegram-poll:shop"] and not a.holds("telegram-poll:shop")
        await _cancel(ta, tb)

    asyncio.run(scenario())


def test_a_dead_holder_is_replaced_and_a_clean_stop_hands_over_at_once(engine):
    _postgres_only(engine)

    async def scenario():
        a, b = Elections(engine, holder="a", **FAST), Elections(engine, holder="b", **FAST)
        runs = Runs()
        ta = asyncio.create_task(a.run("segments", runs.loop("a")))
        await _until(lambda: runs.running() == ["a"], 3)
        tb = asyncio.create_task(b.run("segments", runs.loop("b")))
        # A clean stop (SIGTERM) releases the lease: b takes it on its next try.
        await _cancel(ta)
        waited = await _until(lambda: runs.running() == ["b"], 2)
        assert waited < FAST["lease_seconds"], "a released lease is taken without waiting for it to expire"
        # b dies without a word (kill -9: its row stays as it was): c takes over after expiry.
        with engine.begin() as conn:
            generation = conn.execute(text("SELECT generation FROM lease WHERE name = 'segments'")).scalar()
        b._release = _nothing
        await _cancel(tb)
        died = time.monotonic()
        c = Elections(engine, holder="c", **FAST)
        tc = asyncio.create_task(c.run("segments", runs.loop("c")))
        await _until(lambda: "c" in runs.running(), FAST["lease_seconds"] + 1.5)
        assert time.monotonic() - died >= FAST["lease_seconds"] - FAST["safety_seconds"], "taken before it expired"
        runs.assert_never_twice()
        with engine.begin() as conn:
            row = conn.execute(text("SELECT holder, generation FROM lease WHERE name = 'segments'")).one()
        assert row.holder == "c" and row.generation > generation
        await _cancel(tc)

    asyncio.run(scenario())


async def _nothing(*args):
    return None


def test_a_stale_generation_cannot_renew(engine):
    """Fencing: a holder that was away while another took the lease cannot extend it."""
    _postgres_only(engine)

    async def scenario():
        a, b = Elections(engine, holder="a", **FAST), Elections(engine, holder="b", **FAST)
        assert await a._acquire("demand-push")
        stale = a._held["demand-push"].generation
        with engine.begin() as conn:  # the lease ran out while a was away
            conn.execute(text("UPDATE lease SET expires_at = now() - interval '1 second'"))
        assert await b._acquire("demand-push")
        # a comes back with time left on its own clock: its renewal names its old generation.
        a._held["demand-push"].deadline = time.monotonic() + 5
        assert not await a._renew("demand-push")
        assert not a.holds("demand-push") and b.holds("demand-push")
        assert b._held["demand-push"].generation == stale + 1

    asyncio.run(scenario())


def test_check_stops_a_batch_once_the_lease_is_gone(engine):
    _postgres_only(engine)

    async def scenario():
        # Renewals far apart: the lease runs out on the holder's own clock between two of them.
        a = Elections(engine, holder="a", lease_seconds=30, renew_seconds=20, retry_seconds=5, safety_seconds=1)
        batches: list = []
        stopped: list = []

        async def loop():
            try:
                await Runs().loop("a", batches=batches)()
            except LeaseLost:
                stopped.append(True)
                raise

        task = asyncio.create_task(a.run("demand-push", loop))
        await _until(lambda: batches, 3)
        a._held["demand-push"].deadline = time.monotonic()  # its time is up (the process was paused, say)
        await _until(lambda: stopped, 2)
        count = len(batches)
        await asyncio.sleep(0.2)
        assert len(batches) == count
        await _cancel(task)
        a.close()

    asyncio.run(scenario())


def test_a_web_process_never_runs_elected_loops(engine):
    async def scenario():
        web = Elections(engine, runs_loops=False, **FAST)
        runs = Runs()
        task = asyncio.create_task(web.run("imap:support", runs.loop("web")))
        await asyncio.sleep(0.3)
        assert runs.spans == [] and web.held() == []
        await _cancel(task)

    asyncio.run(scenario())


def test_stopping_releases_even_when_the_loop_is_cancelled_at_once(engine):
    """SIGTERM: the app stops the elections and then cancels the loops' tasks straight away; the
    leases must still be given back before the process exits (else others wait for expiry)."""
    _postgres_only(engine)

    async def scenario():
        a = Elections(engine, holder="a", **FAST)
        runs = Runs()
        task = asyncio.create_task(a.run("segments", runs.loop("a")))
        await _until(lambda: runs.running() == ["a"], 3)
        a.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with engine.begin() as conn:
            live = conn.execute(text("SELECT expires_at > now() FROM lease WHERE name = 'segments'")).scalar()
        assert live is False
        a.close()

    asyncio.run(scenario())
