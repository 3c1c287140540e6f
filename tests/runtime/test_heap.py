"""The hub sets its long-lived objects aside from garbage collection while an app runs, and gives
them back when the last app of the process stops."""

import gc
import weakref

from hub.runtime import heap


def test_settle_freezes_only_while_an_app_runs_and_release_gives_everything_back(monkeypatch):
    # As in a process where no app runs (an app of another test module may run in this one).
    monkeypatch.setattr(heap, "_running", 0)
    monkeypatch.setattr(heap, "ENABLED", True)  # off for the rest of the suite (tests/conftest.py)
    gc.unfreeze()
    heap.settle("nothing runs")
    assert gc.get_freeze_count() == 0  # a loader thread finishing after its app stopped
    heap.hold()
    try:
        heap.hold()  # a second app in the same process
        heap.settle("started")
        assert gc.get_freeze_count() > 0
        heap.release()
        assert gc.get_freeze_count() > 0  # one app still runs
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0


def test_garbage_made_before_settling_is_collected_not_frozen(monkeypatch):
    monkeypatch.setattr(heap, "_running", 0)
    monkeypatch.setattr(heap, "ENABLED", True)
    class Node:
        pass

    collected = []
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    ref = weakref.ref(a, lambda _r: collected.append(True))
    del a, b
    heap.hold()
    try:
        heap.settle("started")
    finally:
        heap.release()
    assert ref() is None and collected
