"""Group commit for the web app: concurrent ingest calls share transactions.

Each request hands its message to a queue and awaits a future; writer threads take whatever has
queued up (up to max_batch) and store it with one ingest_many() call. Under load that turns N
commits into one; at low load a batch is a single message and adds no latency. SQLite has one
writer at a time anyway, so it gets one writer thread; PostgreSQL gets several.

The answers go back to the event loop in one hop per batch (one call_soon_threadsafe, so one
wake-up of the loop), not one per message.

ingest_group() hands over several messages as one entry: they go into the same transaction, in
their order, so a reply is stored after (and threaded onto) the message it answers even on
PostgreSQL, where several writer threads would otherwise split them between transactions.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict

from sqlalchemy import Engine

from hub.contract.errors import HubError
from hub.contract.messages import InboundMessage
from hub.ingest.pipeline import IngestPolicy, IngestResult, ingest_many
from hub.store.blobs import BlobStore

log = logging.getLogger(__name__)
_STOP = object()


class IngestWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        policy: IngestPolicy,
        blobs: BlobStore | None,
        threads: int = 1,
        max_batch: int = 200,
        on_stored=None,
    ):
        self.engine = engine
        self.policy = policy
        self.blobs = blobs
        self.max_batch = max_batch
        self.on_stored = on_stored  # called with each new IngestResult (metrics, live events)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # C-implemented: put() is cheap on the event loop
        self._threads = [threading.Thread(target=self._run, name=f"ingest-writer-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    async def ingest(self, msg: InboundMessage) -> IngestResult:
        """The hub's ingest callback: stored (or found stored) when this returns; raises HubError."""
        fut = asyncio.get_running_loop().create_future()
        self._queue.put(([msg], fut, True))
        return await fut

    async def ingest_group(self, msgs: list[InboundMessage]) -> list[IngestResult | BaseException]:
        """Several messages stored in one transaction, in this order; an IngestResult or the
        exception (a HubError, or the store's failure) for each."""
        if not msgs:
            return []
        fut = asyncio.get_running_loop().create_future()
        self._queue.put((list(msgs), fut, False))
        return await fut

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            size = len(item[0])
            while size < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
                size += len(nxt[0])
            msgs = [m for entry in batch for m in entry[0]]
            try:
                outcomes = self._store(msgs)
            except Exception as exc:  # never let the writer thread die: every later ingest would hang
                log.exception("ingest writer failed on a batch of %d", len(msgs))
                outcomes = [exc] * len(msgs)
            answers, start = [], 0
            for entry_msgs, _, single in batch:
                part = outcomes[start : start + len(entry_msgs)]
                start += len(entry_msgs)
                answers.append(part[0] if single else part)
            _answer([fut for _, fut, _ in batch], answers)

    def _store(self, msgs: list[InboundMessage]) -> list:
        """An IngestResult or an exception per message."""
        try:
            results = ingest_many(self.engine, msgs, policy=self.policy, blobs=self.blobs)
        except Exception as exc:  # the database is down or broken: every caller hears it
            log.exception("ingest batch of %d failed", len(msgs))
            return [exc] * len(msgs)
        if self.on_stored is not None:
            for result in results:
                if isinstance(result, HubError) or not result.created:
                    continue
                try:
                    self.on_stored(result)
                except Exception:
                    log.exception("on_stored hook failed")
        return results


def _answer(futures: list[asyncio.Future], outcomes: list) -> None:
    """Settle each caller's future on its own event loop, one hop per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = defaultdict(list)
    for fut, outcome in zip(futures, outcomes):
        by_loop[fut.get_loop()].append((fut, outcome))
    for loop, pairs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_all, pairs)
        except RuntimeError:  # the loop is closed (shutdown): nobody is waiting any more
            pass


def _settle_all(pairs) -> None:
    """On the event loop. A caller that stopped waiting (its task was cancelled at shutdown)
    cancelled its future: leave that one alone."""
    for fut, outcome in pairs:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
