"""The hybrid index of knowledge-base passages: dense (faiss) and lexical (BM25) search, fused and
calibrated (knowledge/fusion.py), with a "no good answer" decision.

Layout, and why:
- A large immutable *segment* holds most passages: a faiss index (knowledge/vectors.py) and a
  BM25 matrix (knowledge/lexical.py), row = position. Neither bm25s nor an HNSW graph can drop or
  cheaply add a passage, so changes go to a small *delta* (new and replaced passages, searched by
  brute force beside the segment) and to a set of *dead* segment rows (removed or replaced ones,
  skipped at search). When the delta and the dead rows outgrow a share of the segment, a merge
  builds a new segment: inline when the segment is small (a few hundred milliseconds at most), in
  a background thread when it is large, so upserting one article into a 100,000-passage index
  stays a matter of milliseconds.
- Copy-on-write: everything a search reads is one immutable `_Snapshot`, swapped in whole by
  mutations (under a lock). A search takes the current snapshot and never waits for an upsert,
  a removal or a merge.
- Persistence (`save`/`load`): the segment is written once into its own folder and never touched
  again; each save writes the small delta and then replaces `state.json`, which names the
  segment and the delta, with an atomic rename. A crash mid-save leaves the previous state whole.
  Every file's SHA-256 is checked on load: a torn or edited index raises `IndexUnreadable`, and
  so does an index built with another model, so the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from hub.contract import clock  # a leaf module with no hub dependencies: the one clock
from knowledge.embedder import Embedder
from knowledge.feedback import FeedbackMemory
from knowledge.fusion import (
    DEFAULT_DENSE,
    DEFAULT_MODELS,
    DEFAULT_THRESHOLDS,
    METHODS,
    DenseMix,
    Model,
    candidate_features,
    sigmoid,
)
from knowledge.lexical import (
    K1,
    B,
    CorpusStats,
    DeltaScorer,
    LexicalSegment,
    Vocabulary,
)
from knowledge.passages import sentences, snippet
from knowledge.text import has_cjk, is_code, tokenize
from knowledge.vectors import FILES as VECTOR_FILES
from knowledge.vectors import VIEWS, VectorSegment

FORMAT = 2
STATE_FILE = "state.json"
# How a passage becomes vectors (encode_passages). Stored vectors made another way must not be
# mixed in: an index saved with another scheme is unreadable, and a caller that keeps vectors
# elsewhere should key them by the model and this.
VECTOR_SCHEME = "sentences+whole+title-fp16-1"
# The articles agents used for similar questions join the candidates: the FEEDBACK_ARTICLES with
# the most evidence, with at most FEEDBACK_PASSAGES passages each (all of them, for an article of
# a normal size). Bounded, so a memory full of judgements near a common question keeps a search
# quick (bench/kb.py measures it).
FEEDBACK_ARTICLES = 10
FEEDBACK_PASSAGES = 16


class IndexUnreadable(Exception):
    """The saved index is missing, damaged or was built with another model: rebuild it."""


@dataclass(frozen=True)
class Passage:
    id: str  # stable id chosen by the caller
    article_id: str
    title: str
    heading: str
    text: str
    language: str = "en"


@dataclass(frozen=True)
class Hit:
    passage_id: str
    article_id: str
    title: str
    heading: str
    snippet: str  # a short extract of the passage around what matched (<= snippet_chars)
    score: float  # the fused score used for ranking
    confidence: float  # calibrated probability that this passage answers the query, [0, 1]


@dataclass(frozen=True)
class Candidates:
    """A query's candidate passages with their dense and lexical (BM25 coverage) scores."""

    passages: list[Passage]
    dense: np.ndarray  # d (knowledge/fusion.py, DenseMix) from the cosines to the passage's views
    lexical: np.ndarray
    terms: list[str]  # the query's lexical terms
    views: np.ndarray | None = None  # shape (n, VIEWS): the cosines d is made of (None for lexical search)
    feedback: np.ndarray | None = None  # agents' evidence per candidate's article (knowledge/feedback.py)
    codes: np.ndarray | None = None  # the share of the query's codes each candidate holds (None: the query quotes none)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]  # best first, at most one per article, at most k
    answerable: bool  # False = "no good answer": the best confidence is below the threshold
    confidence: float  # the best hit's confidence (0.0 when no hits)


@dataclass
class IndexConfig:
    # faiss: exact search up to this many segment passages (two float16 rows each: about 4 ms at
    # 50,000 on one core), an HNSW graph above (0.4 ms at 100,000, recall@10 0.93; bench/kb.py).
    exact_limit: int = 50_000
    hnsw_neighbours: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 256
    # Candidates each ranker contributes to the fusion.
    candidates: int = 40
    # Merge the delta into a new segment once delta + dead rows exceed
    # max(merge_min, merge_fraction * segment size).
    merge_min: int = 1_000
    merge_fraction: float = 0.05
    # Indexes up to always_merge_below passages merge on every change (it costs milliseconds);
    # up to inline_merge_limit when a merge is due, inline; larger ones in a background thread.
    always_merge_below: int = 2_000
    inline_merge_limit: int = 20_000
    # A writer that outpaces the background merges (a bulk sync in small batches) merges inline
    # once the pending changes reach this multiple of the trigger: the delta stays small enough
    # to search quickly.
    merge_backpressure: float = 4.0
    # BM25 parameters.
    k1: float = K1
    b: float = B
    # Calibrated on development queries (knowledge/calibration.py); confidence below the
    # threshold = "no good answer".
    models: dict[str, Model] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    # How the cosines to a passage's three vectors make its dense score d (knowledge/fusion.py).
    dense: DenseMix = DEFAULT_DENSE
    no_answer_threshold: float = DEFAULT_THRESHOLDS["hybrid"]
    lexical_no_answer_threshold: float = DEFAULT_THRESHOLDS["lexical"]
    dense_no_answer_threshold: float = DEFAULT_THRESHOLDS["dense"]
    snippet_chars: int = 300
    # Whether the model's vectors mean anything for Chinese and Japanese. The packaged
    # all-MiniLM-L6-v2 was trained on English: for a question in those scripts its cosines are
    # noise, and a hybrid ranking led by them is worse than the words alone (the README has the
    # figures), so such a question is answered by the lexical ranker. True for a multilingual model.
    dense_reads_cjk: bool = False

    def threshold(self, method: str) -> float:
        return {
            "hybrid": self.no_answer_threshold,
            "lexical": self.lexical_no_answer_threshold,
            "dense": self.dense_no_answer_threshold,
        }[method]


def embedding_units(passage: Passage) -> list[str]:
    """What the model reads for a passage's sentence view: its title, its heading and each of its
    sentences."""
    units = [part for part in (passage.title, passage.heading) if part.strip()]
    return units + sentences(passage.text)


def whole_text(passage: Passage) -> str:
    """What the model reads for a passage's whole view: title, heading path and text, in that
    order, so that the title is always inside the model's window (256 word pieces; the model cuts
    what is beyond)."""
    return "\n".join(part for part in (passage.title, passage.heading, passage.text) if part.strip()) or " "


def encode_passages(embedder: Embedder, passages: Sequence[Passage]) -> np.ndarray:
    """Three vectors per passage, shape (passages, VIEWS, dimension), float32 holding float16
    values (as the index stores them):
    - [0] the sentence view: the normalised mean of the vectors of its title, heading and
      sentences. MiniLM was trained on sentences and reads at most 256 word pieces; for an article
      that lists the ways customers ask a question the mean of those is the best vector there is
      (CLINC150 MRR 0.95 against 0.86 for the list read whole);
    - [1] the whole view: title, heading and text read as one text. For a help-centre article (a
      question as title, an answer of several sentences) this is what finds it: its sentences are
      answers, and their mean buries the title (CovidFAQ MRR 0.79 against 0.64);
    - [2] the title alone (zeros without a title): in a help centre, the question the article
      answers.
    knowledge/fusion.py says how they make one score."""
    if not passages:
        return np.zeros((0, VIEWS, embedder.dimension), dtype=np.float32)
    units: list[str] = []
    owners: list[int] = []
    title_unit: list[int] = []  # the position of each passage's title among the units, -1: none
    for i, p in enumerate(passages):
        parts = embedding_units(p) or [p.text or p.title or " "]
        title_unit.append(len(units) if p.title.strip() else -1)
        units += parts
        owners += [i] * len(parts)
    wholes = [whole_text(p) for p in passages]
    vectors = embedder.encode(units + wholes)
    unit_vectors, whole_vectors = vectors[: len(units)], vectors[len(units) :]
    sums = np.zeros((len(passages), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owners), unit_vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    means = sums / np.where(norms > 0, norms, 1.0)
    titles = np.zeros_like(means)
    has_title = np.asarray(title_unit) >= 0
    titles[has_title] = unit_vectors[np.asarray(title_unit)[has_title]]
    return np.stack([means, whole_vectors, titles], axis=1).astype(np.float16).astype(np.float32)


def lexical_text(passage: Passage) -> str:
    return " ".join(part for part in (passage.title, passage.heading, passage.text) if part)


@dataclass(frozen=True, eq=False)
class _Entry:
    """A passage outside the segment (compared by identity: a replacement is a new entry)."""

    passage: Passage
    terms: np.ndarray
    vector: np.ndarray  # (VIEWS, dimension), float16 as the segment stores it


class _Segment:
    """Immutable: passages in row order, their faiss and BM25 indexes."""

    def __init__(self, passages: Sequence[Passage], term_ids: np.ndarray, term_offsets: np.ndarray, vectors: VectorSegment, lexical: LexicalSegment, name: str | None = None):
        self.passages = tuple(passages)
        self.row_of = {p.id: row for row, p in enumerate(self.passages)}
        self.article_ids = [p.article_id for p in self.passages]
        self.term_ids = term_ids  # every passage's term ids, concatenated; passage i's start at term_offsets[i]
        self.term_offsets = term_offsets
        self.vectors = vectors
        self.lexical = lexical
        self.name = name or f"segment-{uuid.uuid4().hex[:12]}"

    def __len__(self) -> int:
        return len(self.passages)

    def terms(self, row: int) -> np.ndarray:
        return self.term_ids[self.term_offsets[row] : self.term_offsets[row + 1]]

    @cached_property
    def rows_of_article(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for row, article in enumerate(self.article_ids):
            out.setdefault(article, []).append(row)
        return out


@dataclass(frozen=True, eq=False)
class _Snapshot:
    """What a search reads. Never mutated once published; derived arrays are built on first use."""

    segment: _Segment
    dead: frozenset[int]
    delta: dict[str, _Entry]

    def __len__(self) -> int:
        return len(self.segment) - len(self.dead) + len(self.delta)

    @cached_property
    def delta_entries(self) -> list[_Entry]:
        return list(self.delta.values())

    @cached_property
    def delta_vectors(self) -> np.ndarray:
        """Shape (delta passages, VIEWS, dimension)."""
        if not self.delta:
            return np.zeros((0, VIEWS, self.segment.vectors.dimension), dtype=np.float32)
        return np.stack([e.vector for e in self.delta_entries]).astype(np.float32)

    @cached_property
    def delta_of_article(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, entry in enumerate(self.delta_entries):
            out.setdefault(entry.passage.article_id, []).append(i)
        return out

    @cached_property
    def delta_lexical(self) -> DeltaScorer:
        return DeltaScorer([e.terms for e in self.delta_entries])

    @cached_property
    def stats(self) -> CorpusStats:
        return CorpusStats(self.segment.lexical, self.delta_lexical, len(self.dead))

    @cached_property
    def alive(self) -> np.ndarray:
        """1.0 for a live segment row, 0.0 for a dead one (multiplies BM25 scores)."""
        mask = np.ones(len(self.segment), dtype=np.float32)
        if self.dead:
            mask[np.fromiter(self.dead, dtype=np.int64)] = 0.0
        return mask

    def prepare(self) -> None:
        """Build the derived arrays now, in the writer's thread, so that the first search after a
        change does not pay for them (a search building them too would only duplicate work)."""
        self.delta_vectors, self.delta_lexical, self.stats, self.alive, self.delta_of_article  # noqa: B018

    def passage(self, ref: int) -> Passage:
        """A candidate reference: a segment row (>= 0) or -(delta position + 1)."""
        return self.segment.passages[ref] if ref >= 0 else self.delta_entries[-ref - 1].passage


class HybridIndex:
    def __init__(self, embedder: Embedder, config: IndexConfig | None = None):
        self.embedder = embedder
        self.config = config or IndexConfig()
        self._vocabulary = Vocabulary()
        self._write_lock = threading.Lock()  # serialises mutations (searches never take it)
        self._merge_lock = threading.Lock()  # one merge at a time
        self._merge_thread: threading.Thread | None = None
        self._merge_error: BaseException | None = None
        self._state: _Snapshot | None = None  # created on first use (needs the model's dimension)
        # What agents chose for past questions (knowledge/feedback.py); None or empty: no effect.
        self.memory: FeedbackMemory | None = None

    # -- reading -----------------------------------------------------------------------------

    def _snapshot(self) -> _Snapshot:
        state = self._state
        if state is None:
            with self._write_lock:
                if self._state is None:
                    self._state = _Snapshot(self._empty_segment(), frozenset(), {})
                state = self._state
        return state

    def __len__(self) -> int:
        return 0 if self._state is None else len(self._state)

    def ids(self) -> set[str]:
        """The ids of the passages held."""
        state = self._state
        if state is None:
            return set()
        dead = state.dead
        ids = {p.id for row, p in enumerate(state.segment.passages) if row not in dead}
        ids.update(state.delta)
        return ids

    def vectors(self, passage_ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of these passages, shape (n, VIEWS, dimension) (KeyError for one not
        held), to carry unchanged passages over into another index without encoding them again.
        Float32 holding float16 values: storing them as float16 loses nothing."""
        state = self._snapshot()
        out = np.zeros((len(passage_ids), VIEWS, state.segment.vectors.dimension), dtype=np.float32)
        for i, pid in enumerate(passage_ids):
            entry = state.delta.get(pid)
            if entry is not None:
                out[i] = entry.vector
                continue
            row = state.segment.row_of.get(pid)
            if row is None or row in state.dead:
                raise KeyError(pid)
            out[i] = state.segment.vectors.gather([row])[0]
        return out

    def search(self, query: str, k: int = 5, *, method: str = "hybrid") -> SearchResult:
        """The best passages for `query`, at most one per article, and whether any is good enough.
        method: "hybrid" | "lexical" | "dense"."""
        if method not in METHODS:
            raise ValueError(f"unknown search method {method!r}: use one of {', '.join(METHODS)}")
        if k <= 0:
            return SearchResult([], False, 0.0)
        if method == "hybrid" and not self.config.dense_reads_cjk and has_cjk(query):
            method = "lexical"
        return self.rank(self.candidates(query, method=method, k=k), method, k)

    def candidates(self, query: str, *, method: str = "hybrid", k: int = 0, query_vector: np.ndarray | None = None) -> Candidates:
        """The passages each ranker the method uses puts in its top `config.candidates` (at least
        k), with both scores where the method uses both. `query_vector` saves encoding the query
        again (the calibration encodes its queries in batches)."""
        state = self._snapshot()
        empty = Candidates([], np.zeros(0), np.zeros(0), [])
        if not len(state) or not query.strip():
            return empty
        cfg = self.config
        n_cand = max(cfg.candidates, k)
        use_dense = method in ("hybrid", "dense")
        use_lexical = method in ("hybrid", "lexical")

        terms = list(dict.fromkeys(tokenize(query)))  # a repeated query word counts once
        term_ids = self._vocabulary.lookup(terms)
        known = [t for t in term_ids if t is not None]
        # Candidate references: segment rows >= 0, delta entries as -(position + 1).
        refs: list[int] = []
        lex_segment = lex_delta = None
        if use_lexical and known:
            lex_segment = state.segment.lexical.scores(known)
            if state.dead:
                lex_segment *= state.alive
            lex_delta = state.delta_lexical.scores(known, state.stats, k1=cfg.k1, b=cfg.b)
            refs += _top_refs(lex_segment, n_cand)
            refs += [-(i + 1) for i in _top_refs(lex_delta, n_cand)]
        qvec = None
        evidence: dict[str, float] = {}
        if use_dense:
            qvec = self.embedder.encode([query])[0] if query_vector is None else np.asarray(query_vector, dtype=np.float32)
            rows = state.segment.vectors.search(qvec, n_cand + len(state.dead))
            refs += [int(r) for r in rows if r not in state.dead][:n_cand]
            if state.delta:
                delta_d = cfg.dense.score(state.delta_vectors @ qvec)
                refs += [-(i + 1) for i in _top_refs(delta_d + 2.0, n_cand)]  # + 2: cosines may be negative
            memory = self.memory
            if memory is not None and len(memory):
                evidence = memory.evidence(qvec)
                used = sorted((a for a, w in evidence.items() if w > 0), key=lambda a: -evidence[a])[:FEEDBACK_ARTICLES]
                for article in used:
                    rows_of = [r for r in state.segment.rows_of_article.get(article, ()) if r not in state.dead]
                    refs += (rows_of + [-(i + 1) for i in state.delta_of_article.get(article, ())])[:FEEDBACK_PASSAGES]
        refs = list(dict.fromkeys(refs))
        if not refs:
            return empty

        ref_arr = np.asarray(refs, dtype=np.int64)
        in_segment = ref_arr >= 0
        in_delta = ~in_segment
        views = None
        d = np.zeros(len(refs), dtype=np.float64)
        l = np.zeros(len(refs), dtype=np.float64)
        if qvec is not None:
            views = np.zeros((len(refs), VIEWS), dtype=np.float64)
            views[in_segment] = state.segment.vectors.cosines(qvec, ref_arr[in_segment])
            if in_delta.any():
                views[in_delta] = state.delta_vectors[-ref_arr[in_delta] - 1] @ qvec
            d = cfg.dense.score(views)
        if lex_segment is not None:
            ceiling = state.stats.ceiling(term_ids) or 1.0
            l[in_segment] = lex_segment[ref_arr[in_segment]] / ceiling
            if in_delta.any():
                l[in_delta] = lex_delta[-ref_arr[in_delta] - 1] / ceiling
        passages = [state.passage(r) for r in refs]
        feedback = np.array([evidence.get(p.article_id, 0.0) for p in passages]) if evidence else None
        codes = None
        quoted = [tid for term, tid in zip(terms, term_ids) if tid is not None and is_code(term)]
        if quoted:
            wanted = np.asarray(quoted, dtype=np.int32)
            held = [state.segment.terms(r) if r >= 0 else state.delta_entries[-r - 1].terms for r in refs]
            codes = np.array([np.isin(wanted, t).mean() for t in held])
        return Candidates(passages, d, l, terms, views, feedback, codes)

    def rank(self, candidates: Candidates, method: str, k: int) -> SearchResult:
        """Fuse and calibrate: at most k hits, one per article, best first."""
        if not candidates.passages:
            return SearchResult([], False, 0.0)
        cfg = self.config
        passages = candidates.passages
        articles = [p.article_id for p in passages]
        model = cfg.models[method]
        features = candidate_features(candidates.dense, candidates.lexical, articles, candidates.feedback, candidates.codes)
        scores = model.scores(features)
        logits = model.logits(features, scores, articles)
        confidences = sigmoid(logits)
        hits: list[Hit] = []
        seen: set[str] = set()
        for i in np.argsort(-scores, kind="stable"):
            p = passages[i]
            if p.article_id in seen:
                continue
            seen.add(p.article_id)
            hits.append(
                Hit(
                    passage_id=p.id,
                    article_id=p.article_id,
                    title=p.title,
                    heading=p.heading,
                    snippet=_snippet(p.text, candidates.terms, cfg.snippet_chars),
                    score=float(scores[i]),
                    confidence=float(confidences[i]),
                )
            )
            if len(hits) == k:
                break
        best = hits[0].confidence
        return SearchResult(hits, best >= cfg.threshold(method), best)

    # -- changing ----------------------------------------------------------------------------

    def upsert(self, passages: Sequence[Passage], vectors: np.ndarray | None = None) -> None:
        """Add or replace passages by id. Encodes (batched) when vectors is None; given vectors
        must come from `encode_passages` or `vectors()`."""
        passages = list(passages)
        if not passages:
            return
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            raise ValueError("the same passage id appears twice in one upsert")
        if vectors is None:
            # The slow part, outside any lock: searches and other writers go on meanwhile.
            vectors = encode_passages(self.embedder, passages)
        state = self._snapshot()
        dimension = state.segment.vectors.dimension
        if np.shape(vectors) != (len(passages), VIEWS, dimension):
            raise ValueError(f"vectors must have shape ({len(passages)}, {VIEWS}, {dimension}), not {np.shape(vectors)}")
        # Float16 as the segment stores them: a passage scores the same before and after a merge, and
        # a bulk load holds half the memory.
        vectors = np.asarray(vectors).astype(np.float16)
        entries = [_Entry(p, self._vocabulary.add(tokenize(lexical_text(p))), v) for p, v in zip(passages, vectors)]
        with self._write_lock:
            state = self._state
            dead = set(state.dead)
            delta = dict(state.delta)
            for entry in entries:
                row = state.segment.row_of.get(entry.passage.id)
                if row is not None:
                    dead.add(row)
                delta.pop(entry.passage.id, None)  # a re-upsert moves to the end, like a new one
                delta[entry.passage.id] = entry
            self._state = _Snapshot(state.segment, frozenset(dead), delta)
        self._maybe_merge(bulk=len(entries) >= self._merge_trigger(state))
        self._state.prepare()

    def remove(self, passage_ids: Iterable[str]) -> None:
        """Remove these passages; ids not held are ignored."""
        ids = list(passage_ids)
        if not ids or self._state is None:
            return
        with self._write_lock:
            state = self._state
            dead = set(state.dead)
            delta = dict(state.delta)
            for pid in ids:
                delta.pop(pid, None)
                row = state.segment.row_of.get(pid)
                if row is not None:
                    dead.add(row)
            if len(dead) == len(state.dead) and len(delta) == len(state.delta):
                return
            self._state = _Snapshot(state.segment, frozenset(dead), delta)
        self._maybe_merge()
        self._state.prepare()

    def remove_article(self, article_id: str) -> None:
        state = self._state
        if state is None:
            return
        ids = [state.segment.passages[row].id for row in state.segment.rows_of_article.get(article_id, ())]
        ids += [pid for pid, e in state.delta.items() if e.passage.article_id == article_id]
        # remove() re-reads the current state under the lock; ids gathered from this snapshot are
        # enough because an article's passages that arrive later come with their own upsert.
        self.remove(ids)

    # -- merging -----------------------------------------------------------------------------

    def _merge_trigger(self, state: _Snapshot) -> int:
        return max(self.config.merge_min, int(self.config.merge_fraction * len(state.segment)))

    def _maybe_merge(self, *, bulk: bool = False) -> None:
        """Merge inline when it is cheap (a small index) or expected (a bulk upsert); in the
        background when the index is large, so that the upsert returns at once."""
        state = self._state
        pending = len(state.delta) + len(state.dead)
        if not pending:
            return
        cfg = self.config
        trigger = self._merge_trigger(state)
        due = pending > trigger
        if bulk or len(state) <= cfg.always_merge_below or (due and len(state) <= cfg.inline_merge_limit) or pending > cfg.merge_backpressure * trigger:
            self.compact()
        elif due:
            with self._write_lock:  # at most one background merge
                if self._merge_thread is None or not self._merge_thread.is_alive():
                    self._merge_thread = threading.Thread(target=self._background_merge, name="kb-merge", daemon=True)
                    self._merge_thread.start()

    def _background_merge(self) -> None:
        try:
            self.compact()
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised by wait_for_merge()
            self._merge_error = exc

    def wait_for_merge(self) -> None:
        """Block until a background merge, if any, has finished (re-raising its error)."""
        thread = self._merge_thread
        if thread is not None:
            thread.join()
        if self._merge_error is not None:
            error, self._merge_error = self._merge_error, None
            raise error

    def compact(self) -> None:
        """Merge the delta and drop the dead rows now: one segment, nothing on the side."""
        with self._merge_lock:
            base = self._snapshot()
            if not base.delta and not base.dead:
                return
            live_rows = [r for r in range(len(base.segment)) if r not in base.dead]
            delta = base.delta_entries
            passages = [base.segment.passages[r] for r in live_rows] + [e.passage for e in delta]
            terms = [base.segment.terms(r) for r in live_rows] + [e.terms for e in delta]
            dimension = base.segment.vectors.dimension
            delta_vectors = np.stack([e.vector for e in delta]) if delta else np.zeros((0, VIEWS, dimension), np.float16)
            vectors = np.concatenate([base.segment.vectors.gather(live_rows), delta_vectors])
            segment = self._build_segment(passages, terms, vectors)
            new_row_of_old = {old: new for new, old in enumerate(live_rows)}
            with self._write_lock:
                current = self._state
                dead: set[int] = set()
                # Rows removed or replaced while the merge ran.
                for old in current.dead - base.dead:
                    if old in new_row_of_old:
                        dead.add(new_row_of_old[old])
                remaining = dict(current.delta)
                for i, entry in enumerate(delta):
                    row = len(live_rows) + i
                    if current.delta.get(entry.passage.id) is entry:
                        del remaining[entry.passage.id]  # now in the segment
                    else:
                        dead.add(row)  # replaced or removed meanwhile
                self._state = _Snapshot(segment, frozenset(dead), remaining)

    def _build_segment(self, passages, terms, vectors) -> _Segment:
        cfg = self.config
        vector_segment = VectorSegment(
            vectors,
            exact_limit=cfg.exact_limit,
            neighbours=cfg.hnsw_neighbours,
            ef_construction=cfg.hnsw_ef_construction,
            ef_search=cfg.hnsw_ef_search,
        )
        lexical = LexicalSegment.build(terms, self._vocabulary, k1=cfg.k1, b=cfg.b)
        lengths = np.fromiter((len(t) for t in terms), dtype=np.int64, count=len(terms))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        term_ids = np.concatenate(list(terms)).astype(np.int32) if len(terms) else np.zeros(0, np.int32)
        return _Segment(passages, term_ids, offsets, vector_segment, lexical)

    def _empty_segment(self) -> _Segment:
        dimension = self.embedder.dimension
        return self._build_segment([], [], np.zeros((0, VIEWS, dimension), dtype=np.float32))

    @property
    def approximate(self) -> bool:
        """Whether the segment is searched through the approximate (HNSW) index."""
        return self._snapshot().segment.vectors.kind == "hnsw"

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the index under `directory` (created if needed). Atomic: the previous save stays
        readable until `state.json` is replaced, in one rename, at the very end."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self._snapshot()
        segment = state.segment
        segment_dir = directory / segment.name
        if not (segment_dir / "manifest.json").is_file():
            _write_segment(segment, self._vocabulary, segment_dir)
        delta_name = f"delta-{uuid.uuid4().hex[:12]}"
        entries = state.delta_entries
        delta_lines = "".join(json.dumps(_passage_json(e.passage), ensure_ascii=False) + "\n" for e in entries)
        _atomic_write(directory / f"{delta_name}.jsonl", delta_lines.encode())
        _atomic_write(directory / f"{delta_name}.npy", _npy_bytes(state.delta_vectors.astype(np.float16)))
        record = {
            "format": FORMAT,
            "model": self.embedder_model_name(),
            "vector_scheme": VECTOR_SCHEME,
            "dimension": segment.vectors.dimension,
            "segment": segment.name,
            "segment_manifest_sha256": _sha256(segment_dir / "manifest.json"),
            "dead": sorted(state.dead),
            "delta": delta_name,
            "delta_sha256": {
                f"{delta_name}.jsonl": _sha256(directory / f"{delta_name}.jsonl"),
                f"{delta_name}.npy": _sha256(directory / f"{delta_name}.npy"),
            },
            "saved_at": clock.timestamp(),
        }
        _atomic_write(directory / STATE_FILE, json.dumps(record, indent=1).encode())
        _fsync_dir(directory)
        # What the new state no longer names is garbage (an older segment, older deltas).
        for child in directory.iterdir():
            keep = child.name in (STATE_FILE, segment.name) or child.name.startswith(delta_name)
            if not keep and (child.name.startswith(("segment-", "delta-", ".tmp-"))):
                shutil.rmtree(child) if child.is_dir() else child.unlink(missing_ok=True)

    def embedder_model_name(self) -> str:
        return self.embedder.model_name

    @classmethod
    def load(cls, directory: Path, embedder: Embedder, config: IndexConfig | None = None) -> HybridIndex:
        """The index saved under `directory`. IndexUnreadable when it is missing, damaged, or was
        built with another model (name or dimension), so the caller rebuilds it."""
        directory = Path(directory)
        index = cls(embedder, config)
        try:
            record = json.loads((directory / STATE_FILE).read_text())
            if record.get("format") != FORMAT:
                raise IndexUnreadable(f"index format {record.get('format')!r}, expected {FORMAT}")
            if record.get("vector_scheme") != VECTOR_SCHEME:
                raise IndexUnreadable(f"the index's vectors were made by {record.get('vector_scheme')!r}, not {VECTOR_SCHEME!r}")
            if record["model"] != embedder.model_name:
                raise IndexUnreadable(f"the index was built with the model {record['model']!r}, not {embedder.model_name!r}")
            if int(record["dimension"]) != embedder.dimension:
                raise IndexUnreadable(f"the index holds {record['dimension']}-dimensional vectors, the model makes {embedder.dimension}")
            segment_dir = directory / record["segment"]
            if _sha256(segment_dir / "manifest.json") != record["segment_manifest_sha256"]:
                raise IndexUnreadable("the segment manifest does not match the state")
            for name, digest in record["delta_sha256"].items():
                if _sha256(directory / name) != digest:
                    raise IndexUnreadable(f"{name} is damaged (checksum mismatch)")
            segment, vocabulary = _read_segment(segment_dir, index.config)
            if segment.vectors.dimension != embedder.dimension:
                raise IndexUnreadable("the segment's vectors do not have the model's dimension")
            index._vocabulary = vocabulary
            dead = frozenset(int(r) for r in record["dead"])
            if any(r < 0 or r >= len(segment) for r in dead):
                raise IndexUnreadable("dead rows outside the segment")
            delta_name = record["delta"]
            lines = (directory / f"{delta_name}.jsonl").read_text().splitlines()
            delta_passages = [Passage(**json.loads(line)) for line in lines if line.strip()]
            delta_vectors = np.load(directory / f"{delta_name}.npy", allow_pickle=False)
            if delta_vectors.shape != (len(delta_passages), VIEWS, embedder.dimension):
                raise IndexUnreadable("the delta's vectors do not match its passages")
            delta = {
                p.id: _Entry(p, vocabulary.add(tokenize(lexical_text(p))), v.astype(np.float32))
                for p, v in zip(delta_passages, delta_vectors)
            }
        except IndexUnreadable:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
            raise IndexUnreadable(f"cannot read the index in {directory}: {exc}") from exc
        index._state = _Snapshot(segment, dead, delta)
        return index


def _top_refs(scores: np.ndarray, n: int) -> list[int]:
    """Positions of the n highest positive scores, best first."""
    if not len(scores):
        return []
    if len(scores) > n:
        top = np.argpartition(-scores, n - 1)[:n]
    else:
        top = np.arange(len(scores))
    top = top[scores[top] > 0]
    return [int(i) for i in top[np.argsort(-scores[top], kind="stable")]]


def _snippet(text: str, terms: Sequence[str], limit: int) -> str:
    wanted = set(terms)
    return snippet(text, lambda sentence: sum(t in wanted for t in tokenize(sentence)), limit=limit)


# -- files ------------------------------------------------------------------------------------


def _passage_json(p: Passage) -> dict:
    return {"id": p.id, "article_id": p.article_id, "title": p.title, "heading": p.heading, "text": p.text, "language": p.language}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SEGMENT_FILES = ("passages.jsonl", *VECTOR_FILES, "lexical.npz", "vocabulary.json")


def _write_segment(segment: _Segment, vocabulary: Vocabulary, target: Path) -> None:
    """Write into a temporary folder, then rename it into place: a segment folder is complete."""
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{target.name}")
    tmp.mkdir()
    lines = "".join(json.dumps(_passage_json(p), ensure_ascii=False) + "\n" for p in segment.passages)
    (tmp / "passages.jsonl").write_bytes(lines.encode())
    segment.vectors.save(tmp)
    np.savez(tmp / "lexical.npz", **segment.lexical.arrays(), term_ids=segment.term_ids, term_offsets=segment.term_offsets)
    # The vocabulary only grows, so today's copy covers every id the segment uses.
    (tmp / "vocabulary.json").write_bytes(json.dumps(vocabulary.terms[: len(vocabulary)], ensure_ascii=False).encode())
    manifest = {name: _sha256(tmp / name) for name in _SEGMENT_FILES}
    manifest["passages"] = len(segment)
    for name in _SEGMENT_FILES:
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    _atomic_write(tmp / "manifest.json", json.dumps(manifest).encode())
    _fsync_dir(tmp)
    os.rename(tmp, target)


def _read_segment(folder: Path, config: IndexConfig) -> tuple[_Segment, Vocabulary]:
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in _SEGMENT_FILES:
        if _sha256(folder / name) != manifest[name]:
            raise IndexUnreadable(f"{folder.name}/{name} is damaged (checksum mismatch)")
    passages = [Passage(**json.loads(line)) for line in (folder / "passages.jsonl").read_text().splitlines() if line.strip()]
    vectors = VectorSegment.load(folder, ef_search=config.hnsw_ef_search)
    with np.load(folder / "lexical.npz", allow_pickle=False) as arrays:
        lexical = LexicalSegment.from_arrays(arrays)
        term_ids = np.asarray(arrays["term_ids"], dtype=np.int32)
        offsets = np.asarray(arrays["term_offsets"], dtype=np.int64)
    vocabulary = Vocabulary(json.loads((folder / "vocabulary.json").read_text()))
    if not (len(passages) == len(vectors) == lexical.n_docs == len(offsets) - 1 == manifest["passages"]):
        raise IndexUnreadable(f"{folder.name}: passages, vectors and lexical index disagree")
    if len(offsets) and (offsets[0] != 0 or offsets[-1] != len(term_ids) or np.any(np.diff(offsets) < 0)):
        raise IndexUnreadable(f"{folder.name}: inconsistent term offsets")
    return _Segment(passages, term_ids, offsets, vectors, lexical, name=folder.name), vocabulary
