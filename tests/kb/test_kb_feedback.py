"""The memory of what agents chose (knowledge/feedback.py), without the model: vectors are made
by hand, so every similarity is known."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from knowledge.feedback import (
    NOT_HELPFUL,
    USED,
    FeedbackMemory,
    Judgement,
    Neighbour,
    evidence_of,
    simulated_verdicts,
)

DIM = 8


def unit(*weights: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(weights)] = weights
    return v / np.linalg.norm(v)


def near(base: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector at exactly this cosine to `base` (which must be axis 0 or 1)."""
    other = np.zeros(DIM, dtype=np.float32)
    other[7] = 1.0
    return (cosine * base + np.sqrt(1 - cosine**2) * other).astype(np.float32)


Q = unit(1.0)  # the question asked now


def test_a_used_article_gains_for_a_similar_question_and_not_for_another():
    memory = FeedbackMemory(DIM, similarity=0.6)
    memory.add([Judgement("c1", near(Q, 0.9), "refunds", USED)])
    assert memory.evidence(Q) == pytest.approx({"refunds": (0.9 - 0.6) / 0.4})
    # a question unlike the remembered one: nothing
    assert memory.evidence(unit(0.0, 1.0)) == {}
    # below the similarity: nothing either
    memory = FeedbackMemory(DIM, similarity=0.95)
    memory.add([Judgement("c1", near(Q, 0.9), "refunds", USED)])
    assert memory.evidence(Q) == {}


def test_not_helpful_pushes_down_and_the_closest_question_decides():
    memory = FeedbackMemory(DIM, similarity=0.5)
    memory.add([
        Judgement("c1", near(Q, 0.7), "shipping", USED),
        Judgement("c2", near(Q, 0.9), "shipping", NOT_HELPFUL),
        Judgement("c3", near(Q, 0.8), "returns", USED),
        Judgement("c4", near(Q, 0.6), "returns", USED),  # a farther "used" adds nothing: the closest counts
    ])
    ev = memory.evidence(Q)
    assert ev["shipping"] == pytest.approx((0.7 - 0.5) / 0.5 - (0.9 - 0.5) / 0.5)
    assert ev["shipping"] < 0
    assert ev["returns"] == pytest.approx((0.8 - 0.5) / 0.5)
    # the closest per article and verdict, closest first
    assert [(n.article_id, n.verdict) for n in memory.neighbours(Q)] == [("shipping", NOT_HELPFUL), ("returns", USED), ("shipping", USED)]


def test_a_new_verdict_replaces_the_old_one_and_removal_forgets():
    memory = FeedbackMemory(DIM, similarity=0.5)
    memory.add([Judgement(("conv", "a"), near(Q, 0.9), "a", USED)])
    assert memory.evidence(Q)["a"] > 0
    memory.add([Judgement(("conv", "a"), near(Q, 0.9), "a", NOT_HELPFUL)])  # the agent changed their mind
    assert len(memory) == 1 and memory.evidence(Q)["a"] < 0
    memory.remove([("conv", "a"), ("never", "seen")])
    assert len(memory) == 0 and memory.evidence(Q) == {}
    memory.add([Judgement("x", near(Q, 0.9), "b", USED)])
    memory.clear()
    assert len(memory) == 0 and memory.neighbours(Q) == []


def test_capacity_forgets_the_oldest_and_growth_keeps_every_judgement():
    memory = FeedbackMemory(DIM, similarity=0.0, capacity=100)
    for i in range(250):
        memory.add([Judgement(i, near(Q, 0.5 + i / 1000), f"a{i}", USED)])
        if i % 7 == 0:
            memory.remove([i])  # holes, compacted away as the arrays grow
    assert len(memory) == 100
    kept = {n.article_id for n in memory.neighbours(Q)}
    expected = [f"a{i}" for i in range(250) if i % 7][-100:]
    assert kept == set(expected)


def test_bad_judgements_are_refused():
    memory = FeedbackMemory(DIM)
    with pytest.raises(ValueError):
        memory.add([Judgement("k", np.ones(DIM + 1, np.float32), "a", USED)])
    with pytest.raises(ValueError):
        memory.add([Judgement("k", unit(1.0), "a", 0)])
    with pytest.raises(ValueError):
        FeedbackMemory(DIM, similarity=1.0)


def test_searches_read_while_another_thread_writes():
    memory = FeedbackMemory(DIM, similarity=0.0, capacity=500)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read():
        try:
            while not stop.is_set():
                for nb in memory.neighbours(Q):
                    assert nb.verdict in (USED, NOT_HELPFUL)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(2000):
        memory.add([Judgement(i % 700, near(Q, 0.3 + (i % 50) / 100), f"a{i % 30}", USED if i % 3 else NOT_HELPFUL)])
        if i % 11 == 0:
            memory.remove([(i * 7) % 700])
    stop.set()
    reader.join()
    assert not errors
    assert len(memory) <= 500


def test_evidence_is_bounded_and_ignores_what_is_below_the_similarity():
    neighbours = [Neighbour("a", USED, 1.0), Neighbour("a", NOT_HELPFUL, 0.4), Neighbour("b", NOT_HELPFUL, 0.75)]
    assert evidence_of(neighbours, 0.5) == pytest.approx({"a": 1.0, "b": -0.5})


def test_simulated_agent_uses_the_right_article_and_rejects_the_wrong_suggestions_shown():
    order = ["x", "y", "right", "z"]
    assert simulated_verdicts(order, {"right"}, answerable=True) == [("right", USED), ("x", NOT_HELPFUL), ("y", NOT_HELPFUL)]
    # nothing was suggested ("no good answer"): the agent found the article by searching
    assert simulated_verdicts(order, {"right"}, answerable=False) == [("right", USED)]
    # an unanswerable question: the suggestions shown were all wrong
    assert simulated_verdicts(order, set(), answerable=True) == [("x", NOT_HELPFUL), ("y", NOT_HELPFUL), ("right", NOT_HELPFUL)]
    # the relevant article was not ranked at all: the agent still found and used it
    assert simulated_verdicts(["x"], {"far"}, answerable=True) == [("far", USED), ("x", NOT_HELPFUL)]
