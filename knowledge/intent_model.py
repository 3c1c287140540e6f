"""The intent classifier: a linear SVM over word and character n-grams, with softmax-calibrated scores.

Cheap on purpose (it runs on every inbound message in the hub process): features are word
unigrams and bigrams, character 3-5-grams of each Latin word (typos, plurals), and for Chinese the
characters with their bigrams and trigrams (no segmenter to load). scikit-learn trains it
(LinearSVC: under a second on the ~19,000 training examples, where a logistic regression took ten);
scoring
is a few numpy operations on the message's own features, without sklearn's per-call overhead.

The model is built from the committed training files in knowledge/data (never from a pickle) and
cached as a plain .npz (no pickled objects) keyed by a hash of those files and the parameters, so a
hub starts from the cache in well under a second and rebuilds by itself when the data changes.
The SVM's scores become probabilities by a softmax with a temperature fitted (lowest negative
log-likelihood) on cross-validated scores of the training data (bench/intents.py --tune), stored
with the other parameters in knowledge/data/intents-model.json.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
PARAMS_FILE = DATA_DIR / "intents-model.json"
FEATURES_VERSION = "4"      # bump when features() changes: cached models are then rebuilt
# Only the start of a long message is classified: the question is asked there, and cost stays flat.
MAX_CHARS = 1500

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[a-z0-9#_']+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_DIGITS = re.compile(r"\d+")


class ModelError(RuntimeError):
    """The training data or the parameters are missing or broken: the detector cannot be built."""


def training_files() -> list[Path]:
    return sorted(DATA_DIR.glob("intents-train-*.jsonl"))


def read_examples(paths: Iterable[Path]) -> list[tuple[str, str]]:
    rows = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((item["text"], item["intent"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelError(f"{path.name} line {n}: not a {{text, intent}} object ({exc})") from exc
    return rows


def tokens(text: str) -> list[str]:
    """Latin words and single Chinese characters of an already masked text, digits as 0."""
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower()
    return _TOKEN.findall(_DIGITS.sub("0", text))


def word_features(token: str) -> list[str]:
    """The features of one token alone: the word, and its character 3-5-grams."""
    out = [f"w:{token}"]
    if len(token) > 2 and not _CJK_CHAR.match(token):
        padded = f" {token} "
        for n in (3, 4, 5):
            out += [f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1)]
    return out


def _pair_features(toks: list[str]) -> list[str]:
    out = [f"b:{a} {b}" for a, b in zip(toks, toks[1:])]
    for a, b, c in zip(toks, toks[1:], toks[2:]):
        if _CJK_CHAR.match(a) and _CJK_CHAR.match(b) and _CJK_CHAR.match(c):
            out.append(f"t:{a}{b}{c}")
    return out


def features(text: str) -> list[str]:
    """The n-grams of an already masked text (order references replaced): word unigrams and
    bigrams, character n-grams of Latin words, Chinese character bigrams and trigrams."""
    toks = tokens(text)
    out = [f for t in toks for f in word_features(t)]
    return out + _pair_features(toks)


@dataclass(frozen=True)
class Params:
    C: float = 1.0
    other_weight: float = 1.0        # weight of "other" examples relative to the rest
    temperature: float = 0.3
    min_df: int = 2

    @classmethod
    def load(cls, path: Path = PARAMS_FILE) -> Params:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in ("C", "other_weight", "temperature", "min_df") if k in data})


class IntentModel:
    """Scores a text against the intents; `probabilities(masked_text)` -> {intent: p}."""

    def __init__(self, classes: Sequence[str], vocabulary: dict[str, int], idf: np.ndarray,
                 coef: np.ndarray, intercept: np.ndarray, temperature: float):
        self.classes = tuple(classes)
        self.vocabulary = vocabulary
        self.idf = idf.astype(np.float32)
        # one column per feature, so a message reads only the columns of its own features
        self.coef_t = np.ascontiguousarray(coef.T.astype(np.float32))
        self.intercept = intercept.astype(np.float32)
        self.temperature = float(temperature)
        self._word_cache: dict[str, list[int]] = {}

    def _feature_indices(self, text: str) -> list[int]:
        # a word's own features are looked up once per process: words repeat from message to message
        toks = tokens(text)
        vocabulary, cache, found = self.vocabulary, self._word_cache, []
        for t in toks:
            ids = cache.get(t)
            if ids is None:
                ids = [vocabulary[f] for f in word_features(t) if f in vocabulary]
                if len(cache) < 200_000:
                    cache[t] = ids
            found += ids
        found += [i for f in _pair_features(toks) if (i := vocabulary.get(f)) is not None]
        return found

    def logits(self, text: str) -> np.ndarray:
        counts = Counter(self._feature_indices(text))
        if not counts:
            return self.intercept.astype(np.float64)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        weights = (1.0 + np.log(tf)) * self.idf[idx]           # sublinear tf-idf, as trained
        weights /= np.linalg.norm(weights)
        return (weights @ self.coef_t[idx] + self.intercept).astype(np.float64)

    def probabilities(self, text: str) -> dict[str, float]:
        z = self.logits(text) / self.temperature
        z = np.exp(z - z.max())
        p = z / z.sum()
        return {c: float(v) for c, v in zip(self.classes, p)}

    # --- building and caching -------------------------------------------------------------

    @classmethod
    def train(cls, examples: Sequence[tuple[str, str]], params: Params, mask: Callable[[str], str]) -> IntentModel:
        """Fit on (text, intent) pairs; `mask` is the detector's own masking of order refs."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        if not examples:
            raise ModelError("no training examples")
        texts = [mask(t) for t, _ in examples]
        labels = [label for _, label in examples]
        vectorizer = TfidfVectorizer(analyzer=features, sublinear_tf=True, min_df=params.min_df, dtype=np.float32)
        x = vectorizer.fit_transform(texts)
        weights = np.array([params.other_weight if label == "other" else 1.0 for label in labels])
        clf = LinearSVC(C=params.C, max_iter=5000)
        clf.fit(x, labels, sample_weight=weights)
        return cls([str(c) for c in clf.classes_], {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}, vectorizer.idf_, clf.coef_, clf.intercept_, params.temperature)

    def save(self, path: Path) -> None:
        terms = [""] * len(self.vocabulary)
        for term, i in self.vocabulary.items():
            terms[i] = term
        path.parent.mkdir(parents=True, exist_ok=True)
        # write aside then rename, so a second process starting at the same time never reads half a file
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, classes=np.array(self.classes), terms=np.array(terms), idf=self.idf,
                         coef=self.coef_t.T, intercept=self.intercept, temperature=np.array(self.temperature))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        with np.load(path, allow_pickle=False) as data:
            terms = data["terms"].tolist()
            return cls(data["classes"].tolist(), {t: i for i, t in enumerate(terms)}, data["idf"], data["coef"],
                       data["intercept"], float(data["temperature"]))


def data_fingerprint(paths: Sequence[Path], params: Params) -> str:
    digest = hashlib.sha256(f"{FEATURES_VERSION}|{params}".encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    if env := os.environ.get("SERVICEHUB_INTENTS_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "servicehub"


def build_or_load(mask: Callable[[str], str], *, cache_dir: Path | None = None, params: Params | None = None,
                  paths: Sequence[Path] | None = None) -> IntentModel:
    """The model for the committed training data: from the cache when it matches, else trained
    (a few seconds) and cached. An unwritable cache only costs the training at every start."""
    params = params or Params.load()
    paths = list(paths) if paths is not None else training_files()
    if not paths:
        raise ModelError(f"no training files (intents-train-*.jsonl) in {DATA_DIR}")
    cache = (cache_dir or default_cache_dir()) / f"intents-{data_fingerprint(paths, params)}.npz"
    if cache.exists():
        try:
            return IntentModel.load(cache)
        except (OSError, ValueError, KeyError):
            pass    # a damaged cache is rebuilt below
    model = IntentModel.train(read_examples(paths), params, mask)
    try:
        model.save(cache)
    except OSError:
        pass
    return model


def softmax_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood on held-out logits."""
    grid = [math.exp(x / 40) for x in range(-140, 41)]
    return min(grid, key=lambda t: softmax_nll(logits, labels, t))
