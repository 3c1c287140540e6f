"""Learning from what agents chose: a memory of past questions and the article an agent used, or
found not helpful, for each.

A new question is compared with the remembered ones (cosine of the question vectors). Every
remembered question at least `similarity` alike speaks for its article ("used") or against it
("not helpful"), the more the closer it is: weight w = (cos - similarity) / (1 - similarity), in
(0, 1]. An article's evidence is the weight of its closest "used" question minus that of its
closest "not helpful" one, in [-1, 1]; the ranking adds a fitted multiple of it to the article's
score (knowledge/fusion.py, feature "f"), and the index adds an article with positive evidence
to the candidates even when neither ranker found it. The closest question, not a sum: an article
that agents used a hundred times for one kind of question must not win every question near that
kind, and one judgement on a question very like this one is the best evidence there is. The
similarity and the weight are fitted by simulation on development queries (knowledge/calibration
.py, bench/kb_quality.py).

The memory is pure (no store, no model): the hub fills it from the feedback it stores
(hub/kb/index.py) and adds each new verdict as it is recorded, so it counts at once.

Concurrency: searches read while a writer adds. Rows are appended to preallocated arrays and a
search reads the rows published when it started (a tuple swapped in whole); a withdrawn
judgement is blanked in place (its verdict becomes 0), which a concurrent search sees or not,
either being a correct answer at that instant.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

USED = 1
NOT_HELPFUL = -1
VERDICTS = {"used": USED, "not_helpful": NOT_HELPFUL}


@dataclass(frozen=True)
class Judgement:
    key: Hashable  # what identifies it: a new judgement with the same key replaces the old one
    vector: np.ndarray  # the question's vector (normalised)
    article_id: str
    verdict: int  # USED or NOT_HELPFUL


@dataclass(frozen=True)
class Neighbour:
    article_id: str
    verdict: int
    similarity: float


class FeedbackMemory:
    """Past questions with the article agents used or rejected for them (see the module
    docstring). At most `capacity` judgements: past that, the oldest are forgotten."""

    def __init__(self, dimension: int, *, similarity: float = 0.7, capacity: int = 20_000):
        if not 0.0 <= similarity < 1.0:
            raise ValueError("similarity must be in [0, 1)")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.dimension = dimension
        self.similarity = similarity
        self.capacity = capacity
        self._lock = threading.Lock()
        self._slot: dict[Hashable, int] = {}
        self._keys: list[Hashable | None] = []
        self._oldest = 0  # no live judgement before this position of _keys
        self._names: list[str] = []  # article ids by code (append-only: a reader's codes stay valid)
        self._code: dict[str, int] = {}
        # (vectors, verdicts, article codes, rows in use): replaced whole when the arrays grow or
        # are compacted, so a reader never sees a half-built array.
        self._view = self._empty()

    def _empty(self):
        return (np.zeros((0, self.dimension), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int32), 0)

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, judgements: Iterable[Judgement]) -> None:
        """Remember these judgements; one whose key is known replaces the old judgement."""
        with self._lock:
            for j in judgements:
                if j.verdict not in (USED, NOT_HELPFUL):
                    raise ValueError(f"verdict must be USED or NOT_HELPFUL, not {j.verdict!r}")
                vector = np.asarray(j.vector, dtype=np.float32).reshape(-1)
                if vector.shape != (self.dimension,):
                    raise ValueError(f"a question vector must have {self.dimension} dimensions, not {vector.shape}")
                self._forget(j.key)
                vectors, verdicts, codes, n = self._view
                if n == len(vectors):
                    vectors, verdicts, codes, n = self._grow()
                code = self._code.get(j.article_id)
                if code is None:
                    code = self._code[j.article_id] = len(self._names)
                    self._names.append(j.article_id)
                vectors[n] = vector
                verdicts[n] = j.verdict
                codes[n] = code
                self._keys.append(j.key)
                self._slot[j.key] = n
                self._view = (vectors, verdicts, codes, n + 1)
                if len(self._slot) > self.capacity:
                    while self._keys[self._oldest] is None:
                        self._oldest += 1
                    self._forget(self._keys[self._oldest])

    def remove(self, keys: Iterable[Hashable]) -> None:
        with self._lock:
            for key in keys:
                self._forget(key)

    def clear(self) -> None:
        with self._lock:
            self._slot.clear()
            self._keys.clear()
            self._oldest = 0
            self._view = self._empty()

    def _forget(self, key: Hashable) -> None:
        slot = self._slot.pop(key, None)
        if slot is not None:
            self._view[1][slot] = 0
            self._keys[slot] = None

    def _grow(self):
        """Room for more rows: compact away the forgotten ones, and double when still full."""
        vectors, verdicts, codes, n = self._view
        live = np.flatnonzero(verdicts[:n] != 0)
        size = max(64, 2 * len(live)) if len(live) * 2 > len(vectors) or not len(vectors) else len(vectors)
        new = (np.zeros((size, self.dimension), np.float32), np.zeros(size, np.int8), np.zeros(size, np.int32))
        for target, source in zip(new, (vectors, verdicts, codes)):
            target[: len(live)] = source[live]
        self._keys = [self._keys[i] for i in live]
        self._slot = {key: i for i, key in enumerate(self._keys)}
        self._oldest = 0
        self._view = (*new, len(live))
        return self._view

    def neighbours(self, query: np.ndarray, *, similarity: float | None = None) -> list[Neighbour]:
        """Per article and verdict, the remembered question closest to the query, when it is at
        least `similarity` (default: the memory's) alike; closest first. (The closest is all the
        evidence counts, and a memory of thousands of judgements near a common question stays
        a few array operations.)"""
        floor = self.similarity if similarity is None else similarity
        vectors, verdicts, codes, n = self._view
        if not n:
            return []
        sims = _similarities(vectors[:n], query)
        live = verdicts[:n].copy()  # one reading of each verdict: a writer may blank one meanwhile
        rows = np.flatnonzero((sims >= floor) & (live != 0))
        if not len(rows):
            return []
        group = codes[rows].astype(np.int64) * 2 + (live[rows] == USED)
        order = np.lexsort((-sims[rows], group))  # by group, closest first within each
        firsts = order[np.r_[True, group[order][1:] != group[order][:-1]]]
        best = rows[firsts][np.argsort(-sims[rows[firsts]], kind="stable")]
        names = self._names
        return [Neighbour(names[codes[i]], int(live[i]), float(sims[i])) for i in best]

    def evidence(self, query: np.ndarray) -> dict[str, float]:
        """Per article with any judgement near the query: its evidence in [-1, 1] (as evidence_of
        the neighbours, in array operations: thousands of judgements may be near a question)."""
        floor = self.similarity
        vectors, verdicts, codes, n = self._view
        if not n:
            return {}
        sims = _similarities(vectors[:n], query)
        live = verdicts[:n].copy()
        rows = np.flatnonzero((sims >= floor) & (live != 0))
        if not len(rows):
            return {}
        weights = np.minimum(1.0, (sims[rows] - floor) / max(1e-9, 1.0 - floor))
        names = self._names
        articles = codes[rows]
        size = int(articles.max()) + 1
        used, rejected = np.zeros(size), np.zeros(size)
        is_used = live[rows] == USED
        np.maximum.at(used, articles[is_used], weights[is_used])
        np.maximum.at(rejected, articles[~is_used], weights[~is_used])
        touched = np.unique(articles)
        return {names[c]: float(used[c] - rejected[c]) for c in touched}


def evidence(self, query: np.ndarray) -> dict[str, float]:
        """Per article with any judgement near the query: its evidence in [-1, 1]."""
        return evidence_of(self.neighbours(query), self.similarity)


def _similarities(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    # einsum, not the BLAS product: one thread. OpenBLAS splits this product over every core, and
    # on a busy machine its threads wait for each other: 20,000 questions took 2-4 ms that way
    # against about 1 ms on one thread (the same reason faiss and torch are held to one thread).
    return np.einsum("ij,j->i", vectors, np.asarray(query, dtype=np.float32).reshape(-1))


def evidence_of(neighbours: Sequence[Neighbour], similarity: float) -> dict[str, float]:
    """The closest "used" question's weight minus the closest "not helpful" one's, per article,
    counting neighbours at least `similarity` alike (see the module docstring)."""
    used: dict[str, float] = {}
    rejected: dict[str, float] = {}
    span = max(1e-9, 1.0 - similarity)
    for nb in neighbours:
        if nb.similarity < similarity:
            continue
        weight = min(1.0, (nb.similarity - similarity) / span)
        side = used if nb.verdict == USED else rejected
        if weight > side.get(nb.article_id, 0.0):
            side[nb.article_id] = weight
    return {a: used.get(a, 0.0) - rejected.get(a, 0.0) for a in used.keys() | rejected.keys()}


def simulated_verdicts(order: Sequence[str], relevant: Iterable[str], *, answerable: bool, shown: int = 3) -> list[tuple[str, int]]:
    """What an agent would say about one question, for simulations: the agent answers with a
    relevant article (from the suggestions, or found by searching when none was suggested) and
    marks it used; every suggestion shown (the top `shown`, when the hub had a good answer) that
    is not relevant, not helpful. `order`: the articles as the hub ranked them."""
    relevant = set(relevant)
    out: list[tuple[str, int]] = []
    if relevant:
        chosen = next((a for a in order if a in relevant), min(relevant))
        out.append((chosen, USED))
    if answerable:
        out += [(a, NOT_HELPFUL) for a in order[:shown] if a not in relevant]
    return out
