"""Dense (embedding) search over an immutable set of passage vectors with faiss.

Small knowledge bases get an exact index (IndexFlatIP: inner product of normalised vectors =
cosine); above `exact_limit` vectors an approximate HNSW graph (IndexHNSWFlat), which answers in
well under a millisecond where the exact scan grows linearly (measured in bench/kb.py). Both
keep the raw float32 vectors in their flat storage, and `vectors` is a zero-copy view of it: the
index can be rebuilt and unchanged passages carried over without encoding them again, and the
process holds one copy of the vectors, not two.

The segment never changes after it is built, so its row numbers are the passages' positions and
no id map is needed; passages added later are searched by brute force beside it until the index
merges them into a new segment (knowledge/index.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# faiss parallelises with OpenMP, process-wide. A single query gains nothing from it, and on a
# busy machine the threads spin waiting for each other: an exact search of 10,000 vectors took
# 14 ms with 2 threads and 0.4 ms with 1 on the 2-core development machine under load. Merges
# (index builds) run in the background, where one thread leaves the other core to the requests.
FAISS_THREADS = 1
_configured = False

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256


class VectorSegment:
    def __init__(
        self,
        vectors: np.ndarray,
        *,
        exact_limit: int = 50_000,
        neighbours: int = HNSW_NEIGHBOURS,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        _index=None,
    ):
        import faiss

        _configure(faiss)
        self.ef_search = ef_search
        if _index is not None:
            index = _index
        else:
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if vectors.ndim != 2:
                raise ValueError("vectors must be a 2-d array")
            dimension = vectors.shape[1]
            if len(vectors) > exact_limit:
                index = faiss.IndexHNSWFlat(dimension, neighbours, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = ef_construction
            else:
                index = faiss.IndexFlatIP(dimension)
            if len(vectors):
                index.add(vectors)
        self._index = index
        self.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "exact"
        storage = faiss.downcast_index(index.storage) if self.kind == "hnsw" else index
        self.dimension = index.d
        n = index.ntotal
        self.vectors = (
            faiss.rev_swig_ptr(storage.get_xb(), n * index.d).reshape(n, index.d)
            if n
            else np.zeros((0, index.d), dtype=np.float32)
        )
        self.vectors.flags.writeable = False

    def __len__(self) -> int:
        return self._index.ntotal

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, rows) of the k nearest vectors, best first; fewer when the segment is smaller."""
        n = len(self)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self.kind == "hnsw":
            import faiss

            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
            scores, rows = self._index.search(q, k, params=params)
        else:
            scores, rows = self._index.search(q, k)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def cosines(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.vectors[rows] @ query

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, *, ef_search: int = HNSW_EF_SEARCH) -> VectorSegment:
        import faiss

        return cls(np.zeros((0, 0)), _index=faiss.read_index(str(path)), ef_search=ef_search)


def _configure(faiss) -> None:
    global _configured
    if not _configured:
        faiss.omp_set_num_threads(FAISS_THREADS)
        _configured = True
