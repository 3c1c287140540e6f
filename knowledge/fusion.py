"""Fusion of the dense and lexical evidence into one ranking, and its calibration.

Each candidate passage of a query has a dense score d (cosine to the query) and a lexical score l
(BM25 coverage: the share of the query's idf mass the passage matches, in [0, 1), so that it is on
a scale comparable across queries). A method's `Model` does two things:

1. Ranking: the fused score s = sum of weight * feature over `ranking` (hybrid: the cosine d
   plus a small weight on l_z, the lexical score standardised over the query's candidates, i.e.
   the dense order with lexical evidence breaking near-ties; dense: d; lexical: l). Weights are
   fitted on development queries (knowledge/calibration.py). Reciprocal-rank fusion, or a large
   lexical weight, lets a weak lexical ranking pull the right answer down: on the development
   sets RRF lost 2 points of MRR to dense alone on CLINC150 (the README has the figures).
2. Calibration: a logistic model over features of s (the candidate's s, how far it is below the
   query's best, how clearly the best stands out from the best of another article) and of the
   rankers' own best scores; its sigmoid is the confidence that the passage answers the query.
   It is increasing in s, so it never reorders what the ranking decided. The "no good answer"
   threshold applies to the best hit's confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METHODS = ("hybrid", "lexical", "dense")


@dataclass(frozen=True)
class Model:
    ranking: tuple[tuple[str, float], ...]  # the fused score: sum of weight * feature
    bias: float  # the calibration: logit = bias + sum of weight * calibration feature
    calibration: tuple[tuple[str, float], ...]

    def scores(self, features: dict[str, np.ndarray]) -> np.ndarray:
        out = np.zeros(len(features["d"]), dtype=np.float64)
        for name, weight in self.ranking:
            out += weight * features[name]
        return out

    def logits(self, features: dict[str, np.ndarray], scores: np.ndarray, articles: Sequence[str]) -> np.ndarray:
        calibration = calibration_features(features, scores, articles)
        out = np.full(len(scores), self.bias, dtype=np.float64)
        for name, weight in self.calibration:
            out += weight * calibration[name]
        return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def candidate_features(d: np.ndarray, l: np.ndarray, articles: Sequence[str]) -> dict[str, np.ndarray]:
    """The rankers' scores of each candidate passage (aligned with `articles`, their article ids)
    and how each ranker's best candidate stands out."""
    d = np.asarray(d, dtype=np.float64)
    l = np.asarray(l, dtype=np.float64)
    d_top, d_margin = _top_and_margin(d, articles)
    l_top, l_margin = _top_and_margin(l, articles)
    ones = np.ones_like(d)
    return {
        "d": d,
        "l": l,
        "l_z": _standardised(l),
        "d_top": d_top * ones,
        "l_top": l_top * ones,
        "d_margin": d_margin * ones,
        "l_margin": l_margin * ones,
    }


def _standardised(scores: np.ndarray) -> np.ndarray:
    """z-scores over the query's candidates: how far a candidate stands above the others."""
    if len(scores) < 2:
        return np.zeros_like(scores)
    spread = scores.std()
    return (scores - scores.mean()) / spread if spread > 1e-9 else np.zeros_like(scores)


def calibration_features(features: dict[str, np.ndarray], scores: np.ndarray, articles: Sequence[str]) -> dict[str, np.ndarray]:
    s_top, s_margin = _top_and_margin(scores, articles)
    out = dict(features)
    out.update(s=scores, s_gap=scores - s_top, s_margin=np.full(len(scores), s_margin))
    return out


def _top_and_margin(scores: np.ndarray, articles: Sequence[str]) -> tuple[float, float]:
    """The best score, and how far it is above the best score of any other article."""
    if not len(scores):
        return 0.0, 0.0
    best = int(np.argmax(scores))
    top = float(scores[best])
    others = [s for s, a in zip(scores, articles) if a != articles[best]]
    return top, top - (max(others) if others else 0.0)


# Fitted by knowledge/calibration.py on the development queries of CLINC150, Banking77 and NatCS
# (bench/kb_datasets.py writes them; the reported queries are never seen by the fit).
DEFAULT_MODELS: dict[str, Model] = {
    "hybrid": Model((("d", 1.0), ("l_z", 0.02)), -4.2474, (("s", 10.3354), ("s_gap", 14.4151), ("s_margin", 8.2621), ("d_top", -5.8544), ("l_top", 0.4357))),
    "lexical": Model((("l", 1.0),), -1.9605, (("s", 3.2402), ("s_gap", 18.5861), ("s_margin", 9.5389))),
    "dense": Model((("d", 1.0),), -4.3957, (("s", 5.757), ("s_gap", 19.6909), ("s_margin", 9.0815))),
}
# Confidence below which each method answers "no good answer" (same fit).
DEFAULT_THRESHOLDS = {"hybrid": 0.21, "lexical": 0.17, "dense": 0.18}
