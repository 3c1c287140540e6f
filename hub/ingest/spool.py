"""The inbound spool: channels store what they receive before acknowledging it upstream, and the
hub processes it afterwards through the channel's process(), with retries and backoff.

A webhook can then answer within milliseconds, an SMTP server can say 250 only once the bytes are
safe, an IMAP poller can move past a UID knowing the message is kept. What fails for good stays in
the spool as rejected, with the reason and the raw input, for an admin to look at (and retry).

One item never holds up the others. Each channel has its own lane (a backlog of mail never delays
a Telegram message or a call), and a lane works on up to `concurrency` items at once: one slow
item takes one slot, the rest flow past it, and the ingests of many items share the writer's
group commits. Each item has a time budget (hub/runtime/budget.py; only its own work counts, not waiting
for a parser process or the writer): over it, the item is stopped (its parser process killed,
hub/runtime/parser_pool.py) and kept as rejected with the reason; an admin can retry it, with a larger
budget if it is legitimate. A lane's items hold at most LANE_BYTES of raw input in memory at once,
so a burst of the largest mails is read a few at a time.

Items are processed side by side, but their messages are stored in the order the items came in
(a reply after the message it answers, so it threads onto it): each item's message waits, when it
is ready before an earlier item's, until that one is stored too, and the ready ones go to the
writer together, in order, as one transaction. An earlier item that takes longer than ORDER_WAIT
seconds (a huge mail, a hostile one) loses its place instead of holding up the rest.

(The order holds among the items one hub process works on; several processes sharing a
PostgreSQL store each keep their own.)

Each item is processed at least once and stored exactly once: the channel's process() is
idempotent through the hub's dedupe on (channel, external_id), so an item whose "done" mark was
lost in a crash (marks are written in batches, after the ingest committed) is processed again
and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine, func, select

from hub.contract.delivery import PermanentFailure, TemporaryFailure
from hub.contract.errors import Conflict, HubError, NotFound
from hub.contract.timefmt import iso
from hub.runtime.admission import Admission
from hub.runtime.budget import Budget
from hub.runtime.parser_pool import ParserDied
from hub.runtime.parser_pool import share as parser_share
from hub.store.blobs import BlobStore
from hub.store.db import read_tx, write_tx
from hub.store.models import InboundSpool, SpoolStatus, utcnow
from hub.store.sql import insert_ignoring_conflict
from hub.store.workqueue import RetryPolicy, WorkQueue

log = logging.getLogger(__name__)
spool_t = InboundSpool.__table__
# How long ready messages wait for an earlier item of their channel before it loses its place.
ORDER_WAIT = 2.0
# Seconds between a busy lane's claims (see _Lane._gather_left).
CLAIM_GATHER = 0.05
# Raw input a lane's items hold in memory at once (a burst of 25 MB mails would otherwise all be
# read at once); an item larger than this is let in alone.
LANE_BYTES = 100 * 1_048_576
QUEUE = WorkQueue(
    spool_t, pending=SpoolStatus.pending, active=SpoolStatus.processing, done=SpoolStatus.done, dead=SpoolStatus.rejected
)


def _row(blobs: BlobStore, channel: str, key: str, payload: dict, raw: bytes | None, now, **values) -> dict:
    return {
        "channel": channel,
        "key": key[:500],
        "payload": payload,
        "blob_sha256": blobs.put(raw) if raw is not None else None,
        "status": SpoolStatus.pending,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        **values,
    }


def spool(engine: Engine, blobs: BlobStore, channel: str, key: str, payload: dict, raw: bytes | None = None) -> bool:
    """Store one received item durably; False if (channel, key) was stored before (a redelivery)."""
    return spool_many(engine, blobs, [(channel, key, payload, raw)])[0]


def spool_many(engine: Engine, blobs: BlobStore, items: list[tuple[str, str, dict, bytes | None]]) -> list[bool]:
    """Several received items (channel, key, payload, raw) in one transaction; for each, False if
    it was stored before."""
    now = utcnow()
    rows = [_row(blobs, channel, key, payload, raw, now) for channel, key, payload, raw in items]
    with write_tx(engine) as conn:
        return [insert_ignoring_conflict(conn, spool_t, row) is not None for row in rows]


class Spooler:
    """Group commit for spooling: what arrives while one transaction is written goes into the next
    one, together (a receiver with many SMTP sessions writes a transaction per round, not per
    mail). Each caller hears once its own item is committed, or why it could not be."""

    def __init__(self, engine: Engine, blobs: BlobStore):
        self.engine = engine
        self.blobs = blobs
        self._pending: list[tuple[tuple, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def spool(self, channel: str, key: str, payload: dict, raw: bytes | None = None) -> bool:
        """As spool(): stored durably when this returns; False for a redelivery."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(((channel, key, payload, raw), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="spooler")
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await asyncio.to_thread(spool_many, self.engine, self.blobs, [item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every caller of the batch hears it (SMTP: 451)
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def reject(engine: Engine, blobs: BlobStore, channel: str, key: str, reason: str, payload: dict, raw: bytes | None = None) -> None:
    """Record input refused on arrival (too large, unreadable) with its reason and what was received."""
    now = utcnow()
    row = _row(blobs, channel, key, payload, raw, now, status=SpoolStatus.rejected, last_error=reason[:2000], processed_at=now)
    with write_tx(engine) as conn:
        insert_ignoring_conflict(conn, spool_t, row)


def rejected(engine: Engine, *, channel: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(spool_t).where(spool_t.c.status == SpoolStatus.rejected)
    if channel:
        stmt = stmt.where(spool_t.c.channel == channel)
    with read_tx(engine) as conn:
        rows = conn.execute(stmt.order_by(spool_t.c.id.desc()).limit(limit)).all()
    return [_item(r) for r in rows]


def _item(r) -> dict[str, Any]:
    return {
        "id": r.id,
        "channel": r.channel,
        "key": r.key,
        "status": r.status,
        "reason": r.last_error,
        "attempts": r.attempts,
        "budget_seconds": r.budget_seconds,
        "raw_sha256": r.blob_sha256,
        "received_at": iso(r.created_at),
        "detail": r.payload,  # what the channel kept (headers of an oversized mail, say)
    }


def retry(engine: Engine, item_id: int, *, actor: str, budget_seconds: float | None = None) -> dict[str, Any]:
    """A rejected item back in the queue, due now, with its attempts counted afresh (and its own
    time budget if given); audit-logged. NotFound / Conflict (it is not rejected)."""
    from hub.store.audit import audit

    with write_tx(engine) as conn:
        row = conn.execute(select(spool_t).where(spool_t.c.id == item_id)).first()
        if row is None:
            raise NotFound(f"no inbound item {item_id}")
        values = {"processed_at": None}
        if budget_seconds is not None:
            values["budget_seconds"] = budget_seconds
        if not QUEUE.revive(conn, item_id, **values):
            raise Conflict(f"inbound item {item_id} is {row.status}, not rejected: only rejected items can be retried")
        audit(conn, actor, "inbound.retry", f"inbound:{item_id}", channel=row.channel, key=row.key,
              reason=(row.last_error or "")[:500], budget_seconds=budget_seconds)
        return _item(conn.execute(select(spool_t).where(spool_t.c.id == item_id)).one())


def counts(engine: Engine) -> dict[str, int]:
    with read_tx(engine) as conn:
        return dict(conn.execute(select(spool_t.c.status, func.count()).group_by(spool_t.c.status)).all())


def _over_budget(seconds: float, item_id: int) -> str:
    return (f"processing took longer than its time budget of {seconds:g} s and was stopped (a hostile or pathological "
            f"input?); if it is legitimate, retry it with a larger budget: POST /api/v1/inbound/rejected/{item_id}/retry")


class _Ticket:
    """One item's place in its lane's order of storing."""

    __slots__ = ("lane", "row_id", "message", "future", "ready_at")

    def __init__(self, lane: _Lane, row_id: int):
        self.lane = lane
        self.row_id = row_id
        self.message = None  # set when the item's message is ready to store
        self.future: asyncio.Future | None = None
        self.ready_at = 0.0


_TICKET: ContextVar[_Ticket | None] = ContextVar("spool_ticket", default=None)


async def store_in_turn(message, store_group: Callable[[list], Awaitable[list]], *, alone: Callable[[Any], Awaitable[Any]]):
    """The hub's ingest for a message: while the spool processes an item, in that item's turn
    among its channel's items (stored with the ready ones in one group); otherwise alone(message)."""
    ticket = _TICKET.get()
    if ticket is None:
        return await alone(message)
    _TICKET.set(None)  # a second message of the same item goes on its own
    outcome = await ticket.lane.store(ticket, message, store_group)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


class SpoolWorker:
    """Claims due spool rows and hands each to its channel's process(): one lane per channel,
    up to `concurrency` items at once in each, each item within its time budget."""

    def __init__(self, engine: Engine, registry, blobs: BlobStore, *, policy: RetryPolicy = RetryPolicy(),
                 concurrency: int = 32, budget_seconds: float = 60.0, poll_seconds: float = 0.5):
        self.engine = engine
        self.registry = registry
        self.blobs = blobs
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.budget_seconds = budget_seconds
        self.poll_seconds = poll_seconds
        names = sorted(registry.names())
        self.lanes = {name: _Lane(self, spool_t.c.channel == name, name) for name in names}
        # Items of a channel no longer configured: processed (and failed with the reason) all the same.
        self.lanes[None] = _Lane(self, spool_t.c.channel.not_in(names) if names else None, "other")

    def wake(self, channel: str | None = None) -> None:
        """Something was just queued for `channel` (None: for any): look now, not at the next poll."""
        if channel is None:
            lanes = list(self.lanes.values())
        else:
            lanes = [self.lanes.get(channel) or self.lanes[None]]
        for lane in lanes:
            lane.wake.set()

    async def run(self) -> None:
        """Every lane, until cancelled; returns once every lane has handed back its items."""
        tasks = [asyncio.create_task(lane.run(), name=f"spool-{lane.name}") for lane in self.lanes.values()]
        try:
            await asyncio.gather(*tasks)
        finally:
            # gather gives up at the first lane that ends (cancelled): the others may still be
            # handing back their items, and a second cancel must not cut that short.
            for task in tasks:
                if not task.done() and not task.cancelling():
                    task.cancel()
            await asyncio.wait(tasks)

    async def run_once(self) -> int:
        """One pass over every lane: claim what is due, process it, mark it; the number of items."""
        counts = await asyncio.gather(*(lane.run_once() for lane in self.lanes.values()))
        return sum(counts)

    async def _process(self, row, memory: _Bytes | None = None) -> bool:
        """True when the item is done (to be marked so with others); failures are recorded here."""
        seconds = row.budget_seconds or self.budget_seconds
        budget = Budget(seconds)
        size = 0
        try:
            channel = self.registry.get(row.channel)
            raw = None
            if row.blob_sha256:
                if memory is not None:
                    size = await asyncio.to_thread(self.blobs.size, row.blob_sha256)
                    await memory.take(size)
                raw = await asyncio.to_thread(self.blobs.get, row.blob_sha256)
            async with budget:
                await channel.process(row.payload, raw)
        except TimeoutError as exc:
            if not budget.exceeded:  # a timeout inside the channel (a slow file server): worth a retry
                await self._fail(row, f"{type(exc).__name__}: {exc}")
                return False
            log.warning("spooled %s %s (item %d) over its budget of %g s: stopped and rejected", row.channel, row.key,
                        row.id, seconds)
            await self._fail(row, _over_budget(seconds, row.id), permanent=True)
        except TemporaryFailure as exc:
            await self._fail(row, str(exc), retry_after=exc.retry_after)
        except (PermanentFailure, HubError) as exc:
            # Unreadable or refused input: kept as rejected with the reason; the rest goes on.
            log.warning("spooled %s %s rejected: %s", row.channel, row.key, exc)
            await self._fail(row, str(exc), permanent=True)
        except ParserDied as exc:
            # Its parser took its process down (out of memory, a crash): trying again would too.
            log.error("spooled %s %s (item %d): %s", row.channel, row.key, row.id, exc)
            await self._fail(row, f"{exc}; rejected (retry it from the API if that was the machine, not the input)",
                             permanent=True)
        except asyncio.CancelledError:
            raise  # shutting down: the lane hands the item back
        except Exception as exc:
            log.exception("processing spooled %s %s failed", row.channel, row.key)
            await self._fail(row, f"{type(exc).__name__}: {exc}")
        else:
            return True
        finally:
            if size and memory is not None:
                memory.give(size)
        return False

    async def _fail(self, row, error: str, **kwargs) -> None:
        await asyncio.to_thread(QUEUE.fail, self.engine, row, error, policy=self.policy, **kwargs)


class _Bytes(Admission):
    """At most `limit` bytes taken at once; one taker larger than that, alone."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.used = 0

    def fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def _add(self, size: int) -> None:
        self.used += size

    def _remove(self, size: int) -> None:
        self.used -= size


class _Lane:
    """The items of one channel (or of the channels no longer configured), `concurrency` at once.

    Claims are write transactions: a lane claims when half its slots are free (or it has nothing
    in flight), at most every CLAIM_GATHER seconds while work keeps coming, so under load one
    claim takes many rows. Done marks are collected and written in the next claim's transaction.
    Leases of items still in flight are renewed; at shutdown the unfinished ones are handed back."""

    def __init__(self, worker: SpoolWorker, where, name: str):
        self.worker = worker
        self.where = where
        self.name = name
        self.wake = asyncio.Event()
        self.in_flight: dict[asyncio.Task, tuple[int, float]] = {}  # task -> (row id, started)
        self.finished: list[int] = []
        # The order of storing: tickets of the items in flight, in the order they were claimed
        # (their spool ids), and ready tickets that lost their place (stored with the next group).
        self.turns: dict[int, _Ticket] = {}
        self.loose: list[_Ticket] = []
        self._store_group: Callable[[list], Awaitable[list]] | None = None
        self._kick = asyncio.Event()
        self._committer: asyncio.Task | None = None
        self._rekick: asyncio.TimerHandle | None = None
        self.claimed_at = float("-inf")
        self.busy = False  # the last claim found work: more is probably arriving
        self.memory = _Bytes(LANE_BYTES)

    async def _claim(self, limit: int) -> list:
        worker, finished = self.worker, self.finished
        self.finished = []

        def claim():
            return QUEUE.claim(worker.engine, limit=limit, policy=worker.policy, where=self.where,
                               finished=finished, processed_at=utcnow())

        if limit <= 0 and not finished:
            return []
        self.claimed_at = asyncio.get_running_loop().time()
        try:
            rows = await asyncio.to_thread(claim)
        except BaseException:
            self.finished = finished + self.finished  # written with the next claim
            raise
        busy = {row_id for row_id, _ in self.in_flight.values()}
        # A row of ours whose lease ran out before it finished must not run twice at once here.
        return [row for row in rows if row.id not in busy]

    def _start(self, row) -> None:
        ticket = self.turns[row.id] = _Ticket(self, row.id)
        task = asyncio.create_task(self._one(row, ticket), name=f"spool-{self.name}-{row.id}")
        self.in_flight[task] = (row.id, asyncio.get_running_loop().time())

    async def _one(self, row, ticket: _Ticket) -> None:
        # The task's own context, seen below process(): by store_in_turn, and by the parser pool
        # (one channel never takes every parser process).
        _TICKET.set(ticket)
        parser_share.set(row.channel)
        try:
            if await self.worker._process(row, self.memory):
                self.finished.append(row.id)
        finally:
            if self.turns.pop(row.id, None) is not None:
                self._kick.set()  # it never stored anything: the ones behind it need not wait

    # --- storing in turn -------------------------------------------------------------------

    async def store(self, ticket: _Ticket, message, store_group) -> Any:
        """Called from the item's task (through the hub's ingest): wait for the item's turn, then
        the outcome of storing its message (an IngestResult or an exception)."""
        loop = asyncio.get_running_loop()
        self._store_group = store_group
        ticket.message = message
        ticket.future = loop.create_future()
        ticket.ready_at = loop.time()
        if ticket.row_id not in self.turns:
            self.loose.append(ticket)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_loop(), name=f"spool-{self.name}-store")
        self._kick.set()
        return await ticket.future

    async def _commit_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            while True:
                group = self._ready()
                if not group:
                    break
                try:
                    outcomes = await self._store_group([t.message for t in group])
                except asyncio.CancelledError:
                    for ticket in group:
                        ticket.future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - each item hears it and fails (retried)
                    outcomes = [exc] * len(group)
                for ticket, outcome in zip(group, outcomes):
                    if not ticket.future.done():
                        ticket.future.set_result(outcome)

    def _ready(self) -> list[_Ticket]:
        """The ready tickets that may be stored now, in order; takes them out of the turns."""
        loop = asyncio.get_running_loop()
        group = [t for t in self.loose if not t.future.done()]
        self.loose = []
        tickets = list(self.turns.values())
        for k, ticket in enumerate(tickets):
            if ticket.message is not None:
                del self.turns[ticket.row_id]
                if not ticket.future.done():  # its item was cancelled meanwhile
                    group.append(ticket)
                continue
            # Still being processed. Those ready behind it wait for it, a while.
            waiting = [t.ready_at for t in tickets[k + 1 :] if t.message is not None]
            if not waiting:
                break
            if loop.time() - min(waiting) >= ORDER_WAIT:
                del self.turns[ticket.row_id]  # it loses its place: stored alone once ready
                continue
            if self._rekick is not None:
                self._rekick.cancel()
            self._rekick = loop.call_at(min(waiting) + ORDER_WAIT, self._kick.set)
            break
        return group

    async def run_once(self) -> int:
        rows = await self._claim(self.worker.concurrency)
        for row in rows:
            self._start(row)
        if self.in_flight:
            await asyncio.wait(list(self.in_flight))
            self.in_flight.clear()
        await self._stop_committer()
        await self._claim(0)  # the done marks
        return len(rows)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        concurrency = self.worker.concurrency
        renew_every = self.worker.policy.lease_seconds / 3
        next_renewal = loop.time() + renew_every
        try:
            while True:
                gather = self._gather_left(loop)
                if self._may_claim() and gather <= 0:
                    self.wake.clear()
                    try:
                        rows = await self._claim(concurrency - len(self.in_flight))
                        self.busy = bool(rows)
                        for row in rows:
                            self._start(row)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("spool lane %s: claiming failed", self.name)
                    gather = self._gather_left(loop)
                if loop.time() >= next_renewal:
                    await self._renew(loop.time() - renew_every)
                    next_renewal = loop.time() + renew_every
                waiters: list[asyncio.Future] = list(self.in_flight)
                waker = None
                timeout = self.worker.poll_seconds
                if self._may_claim():  # a wake-up matters only when a claim would follow
                    if gather > 0:
                        timeout = gather  # then claim what gathered meanwhile
                    else:
                        waker = asyncio.ensure_future(self.wake.wait())
                        waiters.append(waker)
                done: set = set()
                try:
                    if waiters:
                        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    else:
                        await asyncio.sleep(timeout)
                finally:
                    if waker is not None:
                        waker.cancel()
                for task in done:
                    self.in_flight.pop(task, None)
        finally:
            await self._stop()

    def _gather_left(self, loop) -> float:
        """While work keeps coming, claims are spaced CLAIM_GATHER apart so that each takes what
        gathered meanwhile (a claim is a write transaction); an idle lane claims at once."""
        if not self.busy:
            return 0.0
        return self.claimed_at + CLAIM_GATHER - loop.time()

    def _may_claim(self) -> bool:
        free = self.worker.concurrency - len(self.in_flight)
        return not self.in_flight or free >= max(1, self.worker.concurrency // 2)

    async def _stop(self) -> None:
        """Cancelled: stop the items in flight, write the done marks, give the others back."""
        tasks = dict(self.in_flight)
        self.in_flight.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks))
        await self._stop_committer()
        unfinished = [row_id for row_id, _ in tasks.values() if row_id not in self.finished]
        try:
            await self._claim(0)
            await asyncio.to_thread(QUEUE.release, self.worker.engine, unfinished)
        except Exception:  # the store is gone: the leases run out and the items are processed again
            log.warning("spool lane %s: could not hand back %d item(s) at shutdown", self.name, len(unfinished))

    async def _stop_committer(self) -> None:
        if self._committer is not None:
            self._committer.cancel()
            await asyncio.wait([self._committer])
            self._committer = None
        if self._rekick is not None:
            self._rekick.cancel()
            self._rekick = None

    async def _renew(self, started_before: float) -> None:
        ids = [row_id for row_id, started in self.in_flight.values() if started <= started_before]
        if not ids:
            return
        try:
            await asyncio.to_thread(QUEUE.renew, self.worker.engine, ids, policy=self.worker.policy)
        except Exception:
            log.exception("spool lane %s: renewing leases failed", self.name)
