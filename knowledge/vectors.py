"""Dense (embedding) search over an immutable set of passage vectors with faiss.

Every passage has `VIEWS` vectors (knowledge/index.py says what they are: the mean of its
sentences, the passage read whole, its title). The first `SEARCHED` are rows of a faiss index,
passage i's at rows i * SEARCHED ... i * SEARCHED + SEARCHED - 1, and a query finds a passage by
its best row. The title vector only scores the candidates found; the passages of one article
share their title, so it is held once per distinct title. Everything is stored as float16 (faiss
keeps the halves as they are, in a scalar quantiser): three views in half precision take less
memory than one took in single precision, and cosines move by less than 1e-3, below what
reorders a ranking (bench/kb_quality.py searches through this class).

Small knowledge bases get an exact scan (IndexScalarQuantizer: inner product of normalised
vectors = cosine); above `exact_limit` passages an approximate HNSW graph over the same storage
(IndexHNSWSQ), which answers in about a millisecond where the exact scan grows linearly (measured
in bench/kb.py). The rows are read back from faiss's storage without a copy (`gather`): the index
can be rebuilt and unchanged passages carried over without encoding them again, and the process
holds one copy of the vectors, not two.

The segment never changes after it is built, so its passage numbers are positions and no id map
is needed; passages added later are searched by brute force beside it until the index merges
them into a new segment (knowledge/index.py).
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

VIEWS = 3  # vectors per passage
SEARCHED = 2  # of them, the ones faiss searches (the others only score what it found)
FILES = ("vectors.faiss", "titles.npz")
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
ADD_CHUNK = 8192  # passages given to faiss at a time when building


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
        """`vectors`: shape (passages, VIEWS, dimension), each row L2-normalised."""
        import faiss

        _configure(faiss)
        self.ef_search = ef_search
        fp16 = faiss.ScalarQuantizer.QT_fp16
        if _index is not None:
            index, self.titles, self.title_rows = _index
        else:
            vectors = np.asarray(vectors)
            if vectors.ndim != 3 or vectors.shape[1] != VIEWS:
                raise ValueError(f"vectors must have shape (passages, {VIEWS}, dimension), not {vectors.shape}")
            dimension = vectors.shape[2]
            titles = np.ascontiguousarray(vectors[:, SEARCHED], dtype=np.float16)
            # Distinct titles once: every passage of an article has the same title vector.
            keys = titles.view(np.dtype((np.void, titles.dtype.itemsize * dimension))).reshape(-1)
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            self.titles = titles[first] if len(titles) else np.zeros((0, dimension), np.float16)
            self.title_rows = inverse.reshape(-1).astype(np.int32)
            if len(vectors) > exact_limit:
                index = faiss.IndexHNSWSQ(dimension, fp16, neighbours, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = ef_construction
            else:
                index = faiss.IndexScalarQuantizer(dimension, fp16, faiss.METRIC_INNER_PRODUCT)
            # In pieces: faiss takes float32, and a float32 copy of every row at once would double
            # the memory a merge of a large index needs.
            for start in range(0, len(vectors), ADD_CHUNK):
                index.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK, :SEARCHED].reshape(-1, dimension), dtype=np.float32))
        self._index = index
        self.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "exact"
        storage = faiss.downcast_index(index.storage) if self.kind == "hnsw" else index
        if storage.sq.qtype != fp16:
            raise ValueError("the vector index does not hold float16 rows")
        self.dimension = index.d
        n = index.ntotal
        if n % SEARCHED or len(self.title_rows) != n // SEARCHED or (n and self.title_rows.max() >= len(self.titles)):
            raise ValueError(f"the vector index holds {n} rows and {len(self.title_rows)} titles: not {SEARCHED} rows and a title per passage")
        self.rows = (
            np.frombuffer(faiss.rev_swig_ptr(storage.codes.data(), n * index.d * 2), dtype=np.float16).reshape(n // SEARCHED, SEARCHED, index.d)
            if n
            else np.zeros((0, SEARCHED, index.d), dtype=np.float16)
        )
        self.rows.flags.writeable = False

    def __len__(self) -> int:
        return self._index.ntotal // SEARCHED

    def gather(self, passages) -> np.ndarray:
        """The vectors of these passages (positions), shape (len, VIEWS, dimension), float16."""
        passages = np.asarray(passages, dtype=np.int64)
        out = np.empty((len(passages), VIEWS, self.dimension), dtype=np.float16)
        out[:, :SEARCHED] = self.rows[passages]
        out[:, SEARCHED] = self.titles[self.title_rows[passages]]
        return out

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """The k passages (positions) with the rows nearest the query, best first; fewer when the
        segment is smaller. Every view counts: a passage is found by its best row."""
        n = len(self)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        rows_wanted = min(k * SEARCHED, n * SEARCHED)
        if self.kind == "hnsw":
            import faiss

            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, rows_wanted))
            _, rows = self._index.search(q, rows_wanted, params=params)
        else:
            _, rows = self._index.search(q, rows_wanted)
        rows = rows[0][rows[0] >= 0]
        passages = np.asarray(list(dict.fromkeys((rows // SEARCHED).tolist())), dtype=np.int64)
        return passages[:k]

    def cosines(self, query: np.ndarray, passages: np.ndarray) -> np.ndarray:
        """Shape (len(passages), VIEWS): the query's cosine to each view of these passages."""
        return self.gather(passages).astype(np.float32) @ np.asarray(query, dtype=np.float32)

    def save(self, folder: Path) -> None:
        """Write FILES into `folder`."""
        import faiss

        faiss.write_index(self._index, str(Path(folder) / FILES[0]))
        np.savez(Path(folder) / FILES[1], titles=self.titles, title_rows=self.title_rows)

    @classmethod
    def load(cls, folder: Path, *, ef_search: int = HNSW_EF_SEARCH) -> VectorSegment:
        import faiss

        with np.load(Path(folder) / FILES[1], allow_pickle=False) as arrays:
            titles = np.asarray(arrays["titles"], dtype=np.float16)
            title_rows = np.asarray(arrays["title_rows"], dtype=np.int32)
        index = faiss.read_index(str(Path(folder) / FILES[0]))
        if titles.ndim != 2 or titles.shape[1] != index.d:
            raise ValueError("the title vectors do not have the index's dimension")
        return cls(np.zeros((0, VIEWS, 0)), _index=(index, titles, title_rows), ef_search=ef_search)


def _configure(faiss) -> None:
    global _configured
    if not _configured:
        faiss.omp_set_num_threads(FAISS_THREADS)
        _configured = True
