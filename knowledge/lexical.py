"""Lexical (BM25) scoring of passages, built with bm25s.

bm25s precomputes every (term, passage) score into a sparse matrix, so a query is a few array
sums; but a built matrix cannot take another passage. The knowledge base therefore keeps a large,
immutable `LexicalSegment` and scores the few passages added since it was built (the delta) with
`DeltaScorer`: the same formula over the same corpus statistics, so both sit on one scale. The
index merges the delta into a new segment once it has grown (knowledge/index.py).

Terms are integers from one `Vocabulary` shared by the segment and the delta (the matrix columns).

Scores are BM25, Lucene variant as bm25s computes it: per query term
idf(t) * tf / (tf + k1 * (1 - b + b * len / avglen)), with idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)).
A term's contribution never reaches its idf, so `CorpusStats.ceiling` (the sum of the query
terms' idf) bounds a query's score, and score / ceiling, the coverage, lies in [0, 1) whatever
the query's length: "how much of what the query says does this passage contain".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

K1 = 1.5
B = 0.75
EMPTY = ""  # id 0: the placeholder term of a passage without terms (bm25s needs one)


def idf(doc_freq, n_docs: int):
    return np.log1p((n_docs - doc_freq + 0.5) / (np.asarray(doc_freq, dtype=np.float64) + 0.5))


class Vocabulary:
    """Term -> id, append-only. Lookups need no lock (a dict read is atomic in CPython); new terms
    are added under one."""

    def __init__(self, terms: Sequence[str] = (EMPTY,)):
        self.terms: list[str] = list(terms)
        self.ids: dict[str, int] = {t: i for i, t in enumerate(self.terms)}
        if self.terms[:1] != [EMPTY]:
            raise ValueError("a vocabulary starts with the empty term")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.terms)

    def add(self, terms: Iterable[str]) -> np.ndarray:
        ids = self.ids
        out = []
        with self._lock:
            for term in terms:
                i = ids.get(term)
                if i is None:
                    i = len(self.terms)
                    self.terms.append(term)
                    ids[term] = i
                out.append(i)
        return np.asarray(out, dtype=np.int32)

    def lookup(self, terms: Iterable[str]) -> list[int | None]:
        return [self.ids.get(t) for t in terms]


class LexicalSegment:
    """BM25 of a fixed list of passages: the bm25s score matrix, one column per term id."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_docs: int, total_length: int):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.n_docs = n_docs
        self.total_length = total_length
        self.n_columns = len(indptr) - 1

    @classmethod
    def build(cls, documents: Sequence[np.ndarray], vocabulary: Vocabulary, *, k1: float = K1, b: float = B) -> LexicalSegment:
        """Index `documents` (arrays of term ids from `vocabulary`)."""
        import bm25s

        n = len(documents)
        total = int(sum(len(d) for d in documents))
        if not n:
            return cls(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), 0, 0)
        corpus = [d.tolist() if len(d) else [0] for d in documents]
        size = len(vocabulary)
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        # Ids are the vocabulary's: bm25s uses them as columns. It only counts the dict's entries.
        model.index((corpus, {i: i for i in range(size)}), create_empty_token=False, show_progress=False)
        s = model.scores
        return cls(s["data"].astype(np.float32), s["indices"].astype(np.int32), s["indptr"].astype(np.int64), n, total)

    def doc_freq(self, term_id: int) -> int:
        if term_id >= self.n_columns:
            return 0
        return int(self.indptr[term_id + 1] - self.indptr[term_id])

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """BM25 score of every passage (float32, 0 where nothing matched)."""
        columns = [t for t in term_ids if 0 < t < self.n_columns]
        if not columns or not self.n_docs:
            return np.zeros(self.n_docs, dtype=np.float32)
        # One bincount over the concatenated postings: faster than bm25s's loop of np.add.at.
        at = np.concatenate([np.arange(self.indptr[c], self.indptr[c + 1]) for c in columns])
        return np.bincount(self.indices[at], weights=self.data[at], minlength=self.n_docs).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "data": self.data,
            "indices": self.indices,
            "indptr": self.indptr,
            "shape": np.asarray([self.n_docs, self.total_length], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays) -> LexicalSegment:
        n_docs, total = (int(x) for x in arrays["shape"])
        indptr = np.asarray(arrays["indptr"], dtype=np.int64)
        indices = np.asarray(arrays["indices"], dtype=np.int32)
        data = np.asarray(arrays["data"], dtype=np.float32)
        if len(data) != len(indices) or (len(indptr) and indptr[-1] != len(data)) or (len(indices) and indices.max() >= n_docs):
            raise ValueError("inconsistent lexical index arrays")
        return cls(data, indices, indptr, n_docs, total)


class DeltaScorer:
    """BM25 of the passages not yet in the segment: postings per term, built once per snapshot."""

    def __init__(self, documents: Sequence[np.ndarray]):
        self.n_docs = len(documents)
        self.lengths = np.array([len(d) for d in documents], dtype=np.float64)
        self.total_length = int(self.lengths.sum())
        postings: dict[int, tuple[list[int], list[int]]] = {}
        for row, doc in enumerate(documents):
            for term, tf in Counter(doc.tolist()).items():
                rows, tfs = postings.setdefault(term, ([], []))
                rows.append(row)
                tfs.append(tf)
        self.postings = {t: (np.asarray(r, dtype=np.int64), np.asarray(f, dtype=np.float64)) for t, (r, f) in postings.items()}

    def doc_freq(self, term_id: int) -> int:
        p = self.postings.get(term_id)
        return 0 if p is None else len(p[0])

    def scores(self, term_ids: Sequence[int], stats: CorpusStats, *, k1: float = K1, b: float = B) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float64)
        if not self.n_docs:
            return out.astype(np.float32)
        norm = k1 * (1 - b + b * self.lengths / stats.average_length)
        for term in term_ids:
            p = self.postings.get(term)
            if p is None or term == 0:
                continue
            rows, tf = p
            out[rows] += stats.idf(term) * tf / (tf + norm[rows])
        return out.astype(np.float32)


class CorpusStats:
    """Document frequencies and lengths over the segment and the delta together."""

    def __init__(self, segment: LexicalSegment, delta: DeltaScorer, dead_docs: int = 0):
        self.segment = segment
        self.delta = delta
        self.n_docs = max(1, segment.n_docs + delta.n_docs - dead_docs)
        self.average_length = max(1.0, (segment.total_length + delta.total_length) / max(1, segment.n_docs + delta.n_docs))

    def idf(self, term_id: int | None) -> float:
        df = 0 if term_id is None else self.segment.doc_freq(term_id) + self.delta.doc_freq(term_id)
        return float(idf(df, self.n_docs))

    def ceiling(self, term_ids: Sequence[int | None]) -> float:
        """The most any passage could score for these terms. A term the knowledge base has never
        seen (None) counts at full idf: a query about something else cannot reach a high coverage."""
        return float(sum(self.idf(t) for t in term_ids))
