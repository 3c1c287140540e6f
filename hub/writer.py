"""Group commit for the web app: concurrent ingest calls share transactions.

Each request hands its message to a queue and awaits a future; writer threads take whatever has
queued up (up to max_batch) and store it with one ingest_many() call. Under load that turns N
commits into one; at low load a batch is a single message and adds no latency. SQLite has one
writer at a time anyway, so it gets one writer thread; PostgreSQL gets several.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future, InvalidStateError

from sqlalchemy import Engine

from hub.blobs import BlobStore
from hub.errors import HubError
from hub.ingest import IngestPolicy, IngestResult, ingest_many
from hub.messages import InboundMessage

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
        self._queue: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._run, name=f"ingest-writer-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    async def ingest(self, msg: InboundMessage) -> IngestResult:
        """The hub's ingest callback: stored (or found stored) when this returns; raises HubError."""
        fut: Future = Future()
        self._queue.put((msg, fut))
        return await asyncio.wrap_future(fut)

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
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
            try:
                self._store(batch)
            except Exception as exc:  # never let the writer thread die: every later ingest would hang
                log.exception("ingest writer failed on a batch of %d", len(batch))
                for _, fut in batch:
                    _settle(fut, exception=exc)

    def _store(self, batch) -> None:
        try:
            results = ingest_many(self.engine, [m for m, _ in batch], policy=self.policy, blobs=self.blobs)
        except Exception as exc:  # the database is down or broken: every caller hears it
            log.exception("ingest batch of %d failed", len(batch))
            for _, fut in batch:
                _settle(fut, exception=exc)
            return
        for (_, fut), result in zip(batch, results):
            if isinstance(result, HubError):
                _settle(fut, exception=result)
                continue
            if self.on_stored is not None and result.created:
                try:
                    self.on_stored(result)
                except Exception:
                    log.exception("on_stored hook failed")
            _settle(fut, result=result)


def _settle(fut: Future, *, result=None, exception: BaseException | None = None) -> None:
    """A caller that stopped waiting (its task was cancelled at shutdown) cancelled its future;
    setting that one would raise in this thread and end it, stalling every later ingest."""
    try:
        if exception is not None:
            fut.set_exception(exception)
        else:
            fut.set_result(result)
    except InvalidStateError:
        pass
