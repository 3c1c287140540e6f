"""Worker processes that run the channels' parsers (CPU work) away from the hub's event loop.

Why processes and not threads: a parse that must be stopped (a hostile mail over its time budget)
can be, by killing its process, where a thread would run on to the end holding the GIL; and the
parsing of many mails runs on the other cores while the event loop accepts mail and the writer
stores it.

A call takes an idle process, sends it (function, arguments), and waits for the answer in one of
the pool's threads. Calls are counted by share (the spool's channel of the item, a context
variable): one share holds at most all the processes but one, so a channel whose items grind
never keeps another channel's waiting. Cancelling the awaiting task kills the process running that call; a fresh one
takes its place at once. A process that dies by itself (the kernel's OOM killer, a crash in a C
extension) fails the call with ParserDied. The processes are started on first use as
`python -m hub.runtime.parser_pool` (not forked: the hub has threads; not through multiprocessing's spawn,
which would run the parent's __main__ again), each importing the modules named by `preload` so
the first call does not pay for the imports; they exit when the hub's end of their socket closes.

The function and arguments travel by pickle: a module-level function and plain data (bytes,
str, numbers, dicts); so does the answer (an InboundMessage) and any exception raised.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hub.runtime.admission import Admission
from hub.runtime.budget import paused

log = logging.getLogger(__name__)
_ROOT = str(Path(__file__).resolve().parents[2])  # where `hub` is, for the child's `-m hub.runtime.parser_pool`
# Whose calls these are (the spool sets the channel of the item it processes): see _Slots.
share: ContextVar[Any] = ContextVar("parser_share", default=None)


class ParserDied(Exception):
    """The worker process exited while running the call (killed by the OS, crashed)."""


def _serve(conn) -> None:  # pragma: no cover - runs in the child
    # Ctrl-C reaches the whole process group: the hub decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, preload = conn.recv()
    sys.path[:] = path  # the hub's: whatever it can import, the functions it sends among it
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the call itself will import (and report) it
            pass
    conn.send("ready")
    while True:
        try:
            task = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the hub closed the socket or died
        try:
            fn, args, kwargs = pickle.loads(task)
            answer = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
            answer = ("error", exc)
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - the answer does not pickle: say what it was
            conn.send(("error", RuntimeError(f"the parser's answer could not be sent back: {type(exc).__name__}: {exc}")))


def _call_soon(loop: asyncio.AbstractEventLoop, callback) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: nobody waits for the slot any more
        pass


class _Worker:
    def __init__(self, preload: tuple[str, ...]):
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.runtime.parser_pool", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send(([p or os.getcwd() for p in sys.path], preload))

    def wait_ready(self) -> None:
        """Until its imports are done (that time is not charged to the first call); ParserDied
        if it did not start."""
        try:
            if self.conn.recv() != "ready":
                raise EOFError("unexpected greeting")
        except (EOFError, OSError) as exc:
            self.discard()
            raise ParserDied(f"a parser process did not start: {self.describe_exit()}") from exc

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:  # already gone
            pass

    def discard(self) -> None:
        self.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass
        self.conn.close()

    def describe_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            return "stopped answering"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with status {code}"


class _Call:
    """One call's link to the process running it, so the event loop can kill that process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.worker: _Worker | None = None
        self.cancelled = False

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            worker = self.worker
        if worker is not None:
            worker.kill()


class _Slots(Admission):
    """The pool's processes as slots, where one share (one channel's items) holds at most
    `per_share` at once: the others always find one free, however long the calls of that share
    take. Calls of no share (None) are not limited."""

    def __init__(self, total: int, per_share: int):
        super().__init__()
        self.free = total
        self.per_share = per_share
        self.held: dict[Any, int] = {}

    def fits(self, share) -> bool:
        return self.free > 0 and (share is None or self.held.get(share, 0) < self.per_share)

    def _add(self, share) -> None:
        self.free -= 1
        self.held[share] = self.held.get(share, 0) + 1

    def _remove(self, share) -> None:
        self.free += 1
        self.held[share] -= 1
        if not self.held[share]:
            del self.held[share]


class ParserPool:
    def __init__(self, processes: int, *, preload: Iterable[str] = ()):
        self.processes = max(1, int(processes))
        self.preload = tuple(preload)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._threads = ThreadPoolExecutor(self.processes, thread_name_prefix="parser")
        # One share (a channel) may take all but one process: the others always find one.
        self._slots = _Slots(self.processes, max(1, self.processes - 1))
        self._started: asyncio.Future | None = None
        self._live: set[_Worker] = set()
        self._live_lock = threading.Lock()
        self._closed = False

    async def run(self, fn: Callable[..., Any], /, *args, **kwargs) -> Any:
        """fn(*args, **kwargs) in a worker process. Waiting for a free process is not charged to
        the caller's time budget (hub.runtime.budget); cancelling the caller kills the process. The call
        counts against the share named by `share` (a context variable: the spool sets its
        channel), which may hold all the processes but one."""
        if self._closed:
            raise RuntimeError("the parser pool is closed")
        loop = asyncio.get_running_loop()
        mine = share.get()
        with paused():
            await self._ensure_started()
            await self._slots.take(mine)
        call = _Call()
        job = self._threads.submit(self._call, call, fn, args, kwargs)
        try:
            status, value = await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            call.cancel()
            # The slot is free once the thread has seen its process die (or never started the call).
            job.add_done_callback(lambda _: _call_soon(loop, lambda: self._slots.give(mine)))
            raise
        self._slots.give(mine)
        if status == "ok":
            return value
        if status == "error":
            raise value
        raise ParserDied(value)

    async def _ensure_started(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(asyncio.to_thread(self._start_all))
        try:
            await asyncio.shield(self._started)
        except Exception:
            if self._started.done():
                self._started = None  # the next call tries again
            raise

    def _start_all(self) -> None:
        workers = [self._spawn(ready=False) for _ in range(self.processes)]  # starting side by side
        failure = None
        for worker in workers:
            try:
                worker.wait_ready()
            except ParserDied as exc:
                self._forget(worker)
                failure = exc
            else:
                self._idle.put(worker)
        if failure is not None and self._idle.empty():
            raise failure

    def _spawn(self, *, ready: bool = True) -> _Worker:
        worker = _Worker(self.preload)
        with self._live_lock:
            self._live.add(worker)
            closed = self._closed
        if closed:  # closed meanwhile: do not leave it behind
            self._forget(worker)
        elif ready:
            worker.wait_ready()
        return worker

    def _forget(self, worker: _Worker) -> None:
        with self._live_lock:
            self._live.discard(worker)
        worker.discard()

    def _checkout(self) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._spawn()
            if worker.is_alive():
                return worker
            self._forget(worker)

    def _call(self, call: _Call, fn, args, kwargs) -> tuple[str, Any]:
        """In a pool thread: run one call in a process; ("ok", value), ("error", exception),
        ("cancelled", None) or ("died", why)."""
        worker = self._checkout()
        with call.lock:
            if call.cancelled:
                self._idle.put(worker)
                return "cancelled", None
            call.worker = worker
        try:
            worker.conn.send((fn, args, kwargs))
            status, value = worker.conn.recv()
        except (EOFError, OSError):
            with call.lock:
                cancelled, call.worker = call.cancelled, None
            why = worker.describe_exit()
            self._forget(worker)
            if not self._closed:
                self._idle.put(self._spawn())  # the replacement, ready for the next call
            if cancelled:
                return "cancelled", None
            log.error("a parser process died while running %s: %s", getattr(fn, "__qualname__", fn), why)
            return "died", f"the parser process {why}"
        except Exception as exc:  # noqa: BLE001 - the call or its answer did not pickle; the process is fine
            status, value = "error", exc
        with call.lock:
            cancelled, call.worker = call.cancelled, None
        if cancelled:
            # The caller gave up just as the answer came: its kill may have hit this process.
            self._forget(worker)
            if not self._closed:
                self._idle.put(self._spawn())
            return "cancelled", None
        self._idle.put(worker)
        return status, value

    def close(self) -> None:
        """Stop every worker process (running calls fail as cancelled or died)."""
        self._closed = True
        with self._live_lock:
            workers, self._live = list(self._live), set()
        for worker in workers:
            worker.discard()
        self._threads.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":  # pragma: no cover - a worker process
    _serve(Connection(int(sys.argv[1])))
