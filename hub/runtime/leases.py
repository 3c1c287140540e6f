"""Elected singletons: a loop that must run in exactly one of the hub's processes (an IMAP mailbox's
poller, a Telegram bot's poller, segment recomputation, demand push) runs wherever the lease of
its name is held, and moves to another process when its holder dies or is cut off.

The contract, on PostgreSQL (a row per lease in the `lease` table, times by the database's clock):
- A process takes a lease that is free or expired, in one statement; the generation then grows
  (a fencing token: a renewal names the generation it holds, so a holder that was away cannot
  extend a lease another process took meanwhile).
- The holder renews every RENEW_SECONDS for LEASE_SECONDS. It counts its lease as held only until
  LEASE_SECONDS - SAFETY_SECONDS after it *sent* the last successful renewal, by its own monotonic
  clock: that ends before the database lets anyone else take the lease, whatever the network did
  to the renewal. When that moment passes without a renewal (the database is unreachable, the
  process was paused), the loop is cancelled: a holder that lost its lease stops before acting.
  Loops also ask `check()` before each batch, so work never starts on a lease about to run out.
- A holder that dies stops renewing; its lease expires within LEASE_SECONDS, and the others try
  every RETRY_SECONDS: the loop runs again elsewhere within LEASE_SECONDS + RETRY_SECONDS (12 s).
- A holder that stops cleanly (SIGTERM) releases its leases at once: another process takes over
  on its next try.
A loop that returns or fails gives its lease back; it is started again after RETRY_SECONDS, here or
in whichever process takes the lease.

On SQLite the hub is one process: every lease is held, the loop simply runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, text

from hub.store.db import is_sqlite, make_engine, write_tx

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
RETRY_SECONDS = 2.0
# Between the holder's own end of its lease and the database's: covers clocks that run at slightly
# different rates and the time the loop needs to notice its cancellation.
SAFETY_SECONDS = 1.5


class LeaseLost(Exception):
    """This process no longer holds the lease its loop runs under: stop; another process goes on."""


@dataclass
class _Held:
    generation: int
    deadline: float  # time.monotonic() after which this process must not act under the lease


_ACQUIRE = text(
    "INSERT INTO lease (name, holder, generation, acquired_at, expires_at) "
    "VALUES (:name, :holder, 1, now(), now() + make_interval(secs => :seconds)) "
    "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, generation = lease.generation + 1, "
    "acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at "
    "WHERE lease.expires_at < now() "
    "RETURNING generation"
)
_RENEW = text(
    "UPDATE lease SET expires_at = now() + make_interval(secs => :seconds) "
    "WHERE name = :name AND holder = :holder AND generation = :generation AND expires_at > now()"
)
# Expired, not deleted: the generation keeps growing across holders.
_RELEASE = text(
    "UPDATE lease SET expires_at = now() - interval '1 second' "
    "WHERE name = :name AND holder = :holder AND generation = :generation"
)

# The lease the current task runs under (None outside an election): check() reads it.
_current: contextvars.ContextVar[tuple[Elections, str] | None] = contextvars.ContextVar("lease", default=None)


def check() -> None:
    """Raise LeaseLost unless the loop calling it still holds its lease (a no-op outside an
    elected loop and on SQLite). Called before each batch of an elected loop's work."""
    current = _current.get()
    if current is not None and not current[0].holds(current[1]):
        raise LeaseLost(f"the lease {current[1]!r} is no longer held by this process")


class Elections:
    """This process's part in the elections: the leases it holds and the loops that run under them.

    `runs_loops` False (a web-only process): no lease is ever taken, elected loops never start
    here. One instance per process; all methods are called from its event loop."""

    def __init__(self, engine: Engine, *, runs_loops: bool = True, holder: str | None = None,
                 lease_seconds: float = LEASE_SECONDS, renew_seconds: float = RENEW_SECONDS,
                 retry_seconds: float = RETRY_SECONDS, safety_seconds: float = SAFETY_SECONDS):
        if renew_seconds >= lease_seconds - safety_seconds:
            raise ValueError("a lease must be renewed well before it runs out")
        self.engine = engine
        self.single = is_sqlite(engine)
        self.runs_loops = runs_loops
        # Renewals have connections and a thread of their own: queued behind a burst of ingest
        # (the shared pool, the default executor) one would miss its deadline and the loop would
        # move for nothing.
        self._own_engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        # Unique per process start: a restarted process on the same host is another holder.
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.retry_seconds = retry_seconds
        self.safety_seconds = safety_seconds
        self._held: dict[str, _Held] = {}
        self._running: set[str] = set()  # names of the elected loops running here
        self.takeovers = 0  # leases taken since the start (a figure for /metrics)
        self._stopping = False
        self._stop_event = asyncio.Event()  # set by stop(): elected loops end at once

    # --- what is held ----------------------------------------------------------------------

    def holds(self, name: str) -> bool:
        if not self.runs_loops:
            return False
        if self.single:  # nobody to hand over to: the loops end when the app cancels them
            return True
        if self._stopping:
            return False
        held = self._held.get(name)
        return held is not None and time.monotonic() < held.deadline

    def held(self) -> list[str]:
        """The names of the leases this process holds now (on SQLite: those of its running loops)."""
        if self.single:
            return sorted(self._running)
        return sorted(name for name in self._held if self.holds(name))

    # --- running a loop under a lease --------------------------------------------------------

    async def run(self, name: str, loop: Callable[[], Awaitable[object]]) -> None:
        """Run `loop()` while this process holds the lease `name`, among all the hub's processes;
        cancelled when the lease is lost, started again once it is won again. Returns only when
        cancelled (or at once, on SQLite, when the loop returns)."""
        if not self.runs_loops:
            await asyncio.Event().wait()  # never elected here; cancelled at shutdown
            return
        if self.single:
            token = _current.set((self, name))
            self._running.add(name)
            try:
                await loop()
            finally:
                self._running.discard(name)
                _current.reset(token)
            return
        while True:
            if self._stopping:  # draining: wait to be cancelled
                await asyncio.Event().wait()
            try:
                won = await self._acquire(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable: try again
                log.warning("lease %s: could not ask for it: %s", name, exc)
                won = False
            if won:
                await self._hold(name, loop)
            await asyncio.sleep(self.retry_seconds)

    async def _hold(self, name: str, loop: Callable[[], Awaitable[object]]) -> None:
        token = _current.set((self, name))
        try:
            task = asyncio.create_task(loop(), name=f"elected-{name}")
        finally:
            _current.reset(token)
        self._running.add(name)
        stopping = asyncio.ensure_future(self._stop_event.wait())
        try:
            while not task.done():
                held = self._held.get(name)
                if held is None:
                    break
                renew_at = min(time.monotonic() + self.renew_seconds, held.deadline)
                await asyncio.wait({task, stopping}, timeout=max(0.0, renew_at - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
                if task.done() or self._stopping:
                    break
                if not await self._renew(name):
                    log.warning("lease %s: lost (not renewed in time); its loop stops here", name)
                    break
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("lease %s: its loop failed; starting it again", name, exc_info=task.exception())
        finally:
            stopping.cancel()
            self._running.discard(name)
            # The loop ends and the lease goes back even when this is cancelled meanwhile (the
            # process is stopping): otherwise the process could exit before the release, and the
            # others would wait for the lease to expire.
            ending = asyncio.ensure_future(self._end(name, task))
            try:
                await asyncio.shield(ending)
            except asyncio.CancelledError:
                await ending
                raise

    async def _end(self, name: str, task: asyncio.Task) -> None:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):  # its end is all that matters here
            await task
        await self._release(name)

    # --- the statements ------------------------------------------------------------------------

    async def _acquire(self, name: str) -> bool:
        sent = time.monotonic()
        generation = await self._in_thread(self._statement, _ACQUIRE, name=name, holder=self.holder,
                                             seconds=self.lease_seconds, returning=True)
        if generation is None:
            return False
        self._held[name] = _Held(generation, sent + self.lease_seconds - self.safety_seconds)
        self.takeovers += 1
        log.info("lease %s: taken by %s (generation %d)", name, self.holder, generation)
        return True

    async def _renew(self, name: str) -> bool:
        held = self._held.get(name)
        while held is not None and self._held.get(name) is held:
            sent = time.monotonic()
            remaining = held.deadline - sent
            if remaining <= 0:
                break
            try:
                # Bounded by what is left of the lease: a renewal stuck in a cut-off network must
                # not keep the loop running past it.
                renewed = await asyncio.wait_for(
                    self._in_thread(self._statement, _RENEW, name=name, holder=self.holder,
                                      generation=held.generation, seconds=self.lease_seconds),
                    timeout=remaining,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store blinked: try again while the lease lasts
                log.warning("lease %s: renewal failed: %s", name, exc)
                await asyncio.sleep(min(0.5, max(0.0, held.deadline - time.monotonic())))
                continue
            if not renewed:  # expired in the store, or taken: not ours any more
                break
            held.deadline = sent + self.lease_seconds - self.safety_seconds
            return True
        self._held.pop(name, None)
        return False

    async def _release(self, name: str) -> None:
        held = self._held.pop(name, None)
        if held is None:
            return
        try:
            await asyncio.wait_for(self._in_thread(self._statement, _RELEASE, name=name, holder=self.holder,
                                                     generation=held.generation), timeout=5)
            log.info("lease %s: released by %s", name, self.holder)
        except Exception as exc:  # it expires by itself
            log.warning("lease %s: could not release it (it expires within %.0f s): %s", name, self.lease_seconds, exc)

    async def _in_thread(self, fn, *args, **kwargs):
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="leases")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _statement(self, statement, *, returning: bool = False, **params):
        if self._own_engine is None:
            self._own_engine = make_engine(self.engine.url.render_as_string(hide_password=False), pool_size=1)
        with write_tx(self._own_engine) as conn:
            result = conn.execute(statement, params)
            if returning:
                row = result.first()
                return None if row is None else row[0]
            return result.rowcount == 1

    def stop(self) -> None:
        """Draining: the elected loops are cancelled and their leases released now (another
        process takes them on its next try); loops checking their lease stop before their next batch."""
        self._stopping = True
        self._stop_event.set()

    def close(self) -> None:
        """After the elected loops ended (their leases released): the connections and the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if self._own_engine is not None:
            self._own_engine.dispose()

