"""The knowledge-base index of one hub process: a knowledge.index.HybridIndex over the passages of
published articles, persisted beside the database (data_dir/kb-index/).

The store is the truth; the index follows it. `sync()` compares the passage ids the store says
should be searchable with those the index holds, removes the extra and adds the missing, reusing
the vector stored with a passage when the same model made it and asking the model otherwise (the
new vectors are then stored, so another process or a rebuild does not compute them again). So an
index that missed an update (a crash, a failed write, another process or `servicehub kb import`
changed the store) catches up on the next sync, and one that is missing, unreadable or made by
another model is rebuilt from the store at start.

The model loads once per process (`shared_embedder`), in the background thread that also opens
the index: the hub serves requests meanwhile, and searches answer IndexNotReady until it is done.

What agents said about suggestions teaches the index (knowledge/feedback.py): the "used" and "not
helpful" verdicts the store keeps with their questions fill a memory the searches consult. A
verdict recorded through this process counts at once (`learn`); the memory is reloaded from the
store when the verdicts there change (another process, a privacy erase), at the next sync.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from hub.kb import articles as kb
from hub.runtime import heap
from hub.store.db import read_tx
from knowledge.embedder import Embedder, ModelUnavailable, packaged_model_path
from knowledge.feedback import VERDICTS, FeedbackMemory, Judgement
from knowledge.fusion import DEFAULT_FEEDBACK_SIMILARITY
from knowledge.index import VECTOR_SCHEME, VIEWS

log = logging.getLogger(__name__)

ENCODE_BATCH = 256
# The newest verdicts the suggestions learn from (each holds a question vector: ~1.5 KB).
FEEDBACK_CAPACITY = 20_000


class IndexNotReady(Exception):
    """The model or the index is still loading (retry shortly), or cannot load (see the message)."""

    def __init__(self, message: str, *, retry_after: float | None = 5.0):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # None: retrying will not help (the model cannot load)


_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def shared_embedder(model_path: str | Path | None = None) -> Embedder:
    """One Embedder per model and process: every app, CLI command and test in the process shares
    the loaded model (it takes seconds to load and ~100 MB to hold)."""
    key = str(Path(model_path).resolve()) if model_path else ""
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = Embedder(model_path)
        return _embedders[key]


def model_identity(embedder: Embedder) -> str:
    """A short id of the model that made a vector: its folder name and a hash of its configuration
    and weight file sizes. Vectors from another model are never mixed into an index."""
    path = embedder.model_path or packaged_model_path()
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{file.name}:{file.stat().st_size}".encode())
    # How passages become vectors is part of the identity too: stored vectors made another way
    # are recomputed, not mixed in.
    digest.update(VECTOR_SCHEME.encode())
    label = path.parent.name if path.name == "model" else path.name
    return f"{label[:120]}:{digest.hexdigest()[:16]}"


@dataclass
class SyncReport:
    added: int = 0
    removed: int = 0
    encoded: int = 0  # of the added: vectors the model computed (the others came from the store)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class KnowledgeIndex:
    """The index service. Thread-safe: searches run while a sync runs (HybridIndex allows that);
    syncs, saves and rebuilds take turns."""

    def __init__(self, engine: Engine, directory: Path, embedder: Embedder, *, min_confidence: float | None = None):
        self.engine = engine
        self.directory = Path(directory)
        self.embedder = embedder
        self.min_confidence = min_confidence
        self._index = None
        self._model: str | None = None
        self._lock = threading.RLock()
        self._dirty = False
        self._fingerprint: tuple | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lazy_model = False  # warm_up off: the first search loads the model
        self._warming = False
        self._memory: FeedbackMemory | None = None
        self._feedback_fingerprint: tuple | None = None

    # --- state ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._index is not None and (self.embedder.ready or self._lazy_model)

    def check_ready(self) -> None:
        if self._error:
            raise IndexNotReady(f"the knowledge base is unavailable: {self._error}", retry_after=None)
        if not self.ready:
            raise IndexNotReady("the knowledge base is loading (model and index); retry in a few seconds")

    @property
    def model(self) -> str:
        if self._model is None:
            self._model = model_identity(self.embedder)
        return self._model

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else 0

    # --- opening, saving --------------------------------------------------------------------

    def open(self, *, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Load the persisted index (or start an empty one when it is missing, unreadable or from
        another model), then bring it in line with the store."""
        from knowledge.index import STATE_FILE, HybridIndex, IndexUnreadable

        with self._lock:
            index = None
            if not (self.directory / STATE_FILE).is_file():
                log.info("knowledge base: no index at %s; building it from the store", self.directory)
            else:
                try:
                    index = HybridIndex.load(self.directory, self.embedder)
                except IndexUnreadable as exc:
                    log.warning("knowledge base: rebuilding the index at %s from the store: %s", self.directory, exc)
            if index is None:
                index = HybridIndex(self.embedder)
            # Searchable only once it has caught up with the store.
            report = self._sync(index, None, progress)
            self._reload_feedback(index)
            self._index = index
            log.info("knowledge base: %d passages indexed (%d added, %d removed, %d encoded)",
                     len(index), report.added, report.removed, report.encoded)
            return report

    def rebuild(self, *, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """A new index from the store (stored vectors of this model reused), saved."""
        from knowledge.index import HybridIndex

        with self._lock:
            index = HybridIndex(self.embedder)
            report = self._sync(index, None, progress)
            index.memory = self._memory
            self._index = index
            self._dirty = True
            self.save()
            return report

    def save(self, *, force: bool = False) -> bool:
        """Persist the index if it changed since the last save (HybridIndex.save is atomic: a
        crash mid-save leaves the previous state readable)."""
        with self._lock:
            if self._index is None or not (self._dirty or force):
                return False
            self._index.save(self.directory)
            self._dirty = False
            return True

    # --- following the store ----------------------------------------------------------------

    def sync(self, article_ids: list[int] | None = None, *, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Make the index hold exactly the passages of published articles (of `article_ids`, or all)."""
        with self._lock:
            if self._index is None:
                return SyncReport()
            return self._sync(self._index, article_ids, progress)

    def _sync(self, index, article_ids, progress) -> SyncReport:
        from knowledge.index import Passage

        report = SyncReport()
        with self._lock:
            with read_tx(self.engine) as conn:
                fingerprint = kb.kb_fingerprint(conn) if article_ids is None else None
                wanted = kb.published_passage_ids(conn, article_ids)
            have = index.ids()
            if article_ids is not None:
                prefixes = tuple(f"{a}-" for a in article_ids)
                have = {pid for pid in have if pid.startswith(prefixes)}
            extra = have - wanted
            missing = sorted(wanted - have)
            if extra:
                index.remove(list(extra))
                report.removed = len(extra)
            if missing:
                with read_tx(self.engine) as conn:
                    rows = kb.passage_rows(conn, missing)
                size = VIEWS * self.embedder.dimension * 2  # float16 bytes
                usable = [r.vector is not None and r.vector_model == self.model and len(r.vector) == size for r in rows]
                reuse = [r for r, ok in zip(rows, usable) if ok]
                # (a stored vector of another size: the model id lied; computed again)
                fresh = [r for r, ok in zip(rows, usable) if not ok]
                done = 0
                if reuse:
                    vectors = np.stack([np.frombuffer(r.vector, dtype=np.float16) for r in reuse])
                    index.upsert([_passage(Passage, r) for r in reuse], vectors.reshape(len(reuse), VIEWS, -1))
                    done += len(reuse)
                    if progress:
                        progress(done, len(rows))
                for start in range(0, len(fresh), ENCODE_BATCH):
                    batch = fresh[start:start + ENCODE_BATCH]
                    index.upsert([_passage(Passage, r) for r in batch])
                    ids = [r.passage_id for r in batch]
                    computed = np.asarray(index.vectors(ids), dtype=np.float16)
                    kb.store_vectors(self.engine, {pid: computed[i].tobytes() for i, pid in enumerate(ids)}, self.model)
                    report.encoded += len(batch)
                    done += len(batch)
                    if progress:
                        progress(done, len(rows))
                report.added = len(rows)
            if report.changed:
                self._dirty = True
            if fingerprint is not None:
                self._fingerprint = fingerprint
            return report

    def store_changed(self) -> bool:
        """Whether the store changed since the last full sync (cheap: counts and the last update)."""
        with read_tx(self.engine) as conn:
            return kb.kb_fingerprint(conn) != self._fingerprint

    # --- learning from agents -----------------------------------------------------------------

    def feedback_changed(self) -> bool:
        with read_tx(self.engine) as conn:
            return kb.feedback_fingerprint(conn) != self._feedback_fingerprint

    def reload_feedback(self) -> None:
        """Refill the memory from the verdicts in the store (see the module docstring)."""
        with self._lock:
            if self._index is not None:
                self._reload_feedback(self._index)

    def _reload_feedback(self, index) -> None:
        with read_tx(self.engine) as conn:
            fingerprint = kb.feedback_fingerprint(conn)
            rows = kb.feedback_questions(conn, limit=FEEDBACK_CAPACITY)
        memory = FeedbackMemory(self.embedder.dimension, similarity=DEFAULT_FEEDBACK_SIMILARITY, capacity=FEEDBACK_CAPACITY)
        memory.add(self._judgements(list(reversed(rows))))  # oldest first: the newest are kept
        self._memory = index.memory = memory
        self._feedback_fingerprint = fingerprint

    def _judgements(self, rows) -> list[Judgement]:
        """The rows as memory entries; question vectors the store lacks are computed and stored."""
        size = self.embedder.dimension * 2
        vectors: dict[int, np.ndarray] = {}
        missing = []
        for r in rows:
            if r.question_vector is not None and r.vector_model == self.model and len(r.question_vector) == size:
                vectors[r.id] = np.frombuffer(r.question_vector, dtype=np.float16).astype(np.float32)
            else:
                missing.append(r)
        for start in range(0, len(missing), ENCODE_BATCH):
            batch = missing[start:start + ENCODE_BATCH]
            computed = self.embedder.encode([r.question for r in batch]).astype(np.float16)
            kb.store_question_vectors(self.engine, {r.id: computed[i].tobytes() for i, r in enumerate(batch)}, self.model)
            vectors.update({r.id: computed[i].astype(np.float32) for i, r in enumerate(batch)})
        return [Judgement((r.conversation_id, str(r.article_id)), vectors[r.id], str(r.article_id), VERDICTS[r.verdict]) for r in rows]

    def learn(self, conversation_id: int, article_id: int) -> None:
        """Take the agent's verdict on this article in this conversation from the store into the
        memory at once (or drop it, when it is gone). Before the index is ready the next load
        reads it from the store."""
        memory = self._memory
        if memory is None or not self.ready:
            return
        with read_tx(self.engine) as conn:
            rows = kb.feedback_questions(conn, limit=1, conversation_id=conversation_id, article_id=article_id)
        key = (conversation_id, str(article_id))
        if rows:
            memory.add(self._judgements(rows))
        else:
            memory.remove([key])

    @property
    def threshold(self) -> float:
        """The confidence a passage needs to be suggested: the setting, else the index's own
        calibrated threshold for hybrid search."""
        if self.min_confidence is not None:
            return self.min_confidence
        self.check_ready()
        return float(self._index.config.threshold("hybrid"))

    def search(self, query: str, k: int = 5, method: str = "hybrid"):
        """knowledge.index.SearchResult; the configured min_confidence, when set, overrides the
        index's own threshold for `answerable`."""
        self.check_ready()
        try:
            result = self._index.search(query, k=k, method=method)
        except ModelUnavailable as exc:  # warm_up off: the first search is what loads the model
            self._error = str(exc)
            raise IndexNotReady(f"the knowledge base is unavailable: {exc}", retry_after=None) from exc
        if self.min_confidence is not None:
            from dataclasses import replace

            result = replace(result, answerable=bool(result.hits) and result.confidence >= self.min_confidence)
        return result

    # --- the background thread --------------------------------------------------------------

    def start(self, *, warm_up: bool = True, sync_seconds: float = 30.0) -> None:
        """Load the model (when warm_up) and the index in a thread, then keep following the store."""
        self._lazy_model = not warm_up
        self._warming = warm_up
        self._thread = threading.Thread(target=self._run, args=(warm_up, sync_seconds), name="kb-index", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Sync soon (the store changed and the caller could not sync itself)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and not self._warming:
            # (A thread still loading the model cannot be interrupted; it ends once the model is
            # loaded, and the model stays loaded for the process: no need to wait for it.)
            self._thread.join(timeout)
        try:
            if self._thread is None or not self._thread.is_alive():
                self.save()
        except Exception:
            log.exception("knowledge base: saving the index failed; it is rebuilt from the store at the next start")

    def _run(self, warm_up: bool, sync_seconds: float) -> None:
        started = time.monotonic()
        try:
            if warm_up:
                try:
                    self.embedder.warm_up()
                finally:
                    self._warming = False
            if self._stop.is_set():
                return
            self.open()
            log.info("knowledge base ready in %.1f s", time.monotonic() - started)
            heap.settle("knowledge base loaded")
        except ModelUnavailable as exc:
            self._error = str(exc)
            log.error("knowledge base unavailable: %s", exc)
            return
        except Exception:
            # The store may be briefly away: keep trying; searches answer "loading" meanwhile.
            log.exception("knowledge base: opening the index failed; retrying")
        while not self._stop.is_set():
            woken = self._wake.wait(sync_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self._index is None:
                    self.open()
                else:
                    if woken or self.store_changed():
                        self.sync()
                    if self.feedback_changed():
                        self.reload_feedback()
                self.save()
            except Exception:
                log.exception("knowledge base: following the store failed; retrying in %.0f s", sync_seconds)


def _passage(cls, row):
    return cls(id=row.passage_id, article_id=str(row.article_id), title=row.title, heading=row.heading,
               text=row.text, language=row.language)
