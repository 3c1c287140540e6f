"""Keeping the objects a hub process holds for its whole life out of the garbage collector's way.

Once started, a hub process holds ~600,000 objects it never frees: the libraries it imported and,
once loaded, the embedding model (torch, transformers) and the intent classifier. Python's full
collection (generation 2) walks every one of them each time it runs, while the event loop waits:
~280 ms on 2 cores with the model loaded, a pause every open page and API call behind it feels
(bench/inbox.py saw list pages of 150-380 ms among ones of 12 ms until the start-up loading was
over). gc.freeze() moves the objects that exist into a permanent generation that collections leave
alone; what is made afterwards (requests, rows, caches that come and go) is collected as before.

settle() is called when a piece of start-up loading is over: the app has started, the knowledge
base's model and index are loaded, the intent classifier is trained. Garbage made so far is
collected first, so that nothing unreachable is frozen. Frozen objects are never collected, even
once unreachable: an app that stops (a test starts and stops hundreds) gives them back with
release(), and settle() does nothing while no app runs (a loader thread finishing after its app
stopped). A settle() from a loader thread while requests are served also freezes what those
requests hold at that moment; that is a few objects, kept until the app stops, and its one
collection pauses the event loop once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)
_lock = threading.Lock()
_running = 0  # apps started and not yet stopped in this process
# Off in the test suite (tests/conftest.py): a test process starts hundreds of apps, and the
# collection each settle() makes cost ~0.5 s apiece there (tests/web/test_api.py: 79 s against 46 s).
ENABLED = True


def settle(what: str) -> None:
    """Collect, then freeze every object alive now: `what` (a few words for the log) has loaded
    what the process keeps. Safe from any thread, and to call more than once."""
    with _lock:
        if not (ENABLED and _running):
            return
        started = time.monotonic()
        gc.collect()
        gc.freeze()
        log.info("%s: %d long-lived objects set aside from garbage collection (%.0f ms)",
                 what, gc.get_freeze_count(), (time.monotonic() - started) * 1000)


def hold() -> None:
    """An app of this process has started: settle() may freeze from now on."""
    global _running
    with _lock:
        _running += 1


def release() -> None:
    """An app of this process has stopped: once none runs, the frozen objects go back to the
    collector (what that app held becomes collectable)."""
    global _running
    with _lock:
        _running = max(0, _running - 1)
        if not _running:
            gc.unfreeze()
