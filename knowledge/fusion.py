"""Fusion of the dense and lexical evidence into one ranking, and its calibration.

Each candidate passage of a query has a dense score d and a lexical score l (BM25 coverage: the
share of the query's idf mass the passage matches, in [0, 1), so that it is on a scale comparable
across queries). A passage has three vectors (knowledge/index.py): the mean of its sentences
(with its title and heading), the passage read whole (title first), and its title alone. d is
`DenseMix.score`: the better of the first two cosines, the whole reading's raised by a fitted
offset, plus a bonus when the title alone is close to the question:

    d = max(cos_sentences, cos_whole + offset) + title_weight * max(0, cos_title - title_floor) / (1 - title_floor)

The sentence mean is what finds an article that lists the ways customers ask (intent sets:
CLINC150 MRR 0.95 against 0.86 read whole); the whole reading is what finds a help-centre
article, a question as title over a long answer, whose sentences are answers, not questions
(CovidFAQ 0.79 against 0.64). The offset puts the two on one scale. A help-centre title is the
question the article answers, so a question close to it is strong evidence; an intent set's
titles ("Card arrival") are rarely that close to a question, and the floor keeps them out
(bench/kb_quality.py has the figures). A further, optional score f is what agents said about the
article for similar questions (knowledge/feedback.py), in [-1, 1]; 0 when nobody said anything.
And c: the share of the codes the question quotes (part numbers, order codes: knowledge/text.py,
is_code) that the passage holds. Articles that differ only by a part number are close in meaning,
and the customer who quotes the number wants that one: the hybrid adds CODE_WEIGHT * c, more
than the dense scores of such near-twins differ (up to 0.07 among the five filter articles of
tests/kb/test_kb_index.py). The evaluation sets hardly quote codes, so no fit can set this weight;
bench/kb_quality.py shows it changes nothing there.

A method's `Model` does two things:

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


@dataclass(frozen=True)
class DenseMix:
    """How the cosines to a passage's three vectors make d (see the module docstring)."""

    whole_offset: float
    title_floor: float
    title_weight: float

    def score(self, views: np.ndarray) -> np.ndarray:
        """d from the cosines, shape (n, 3): sentence mean, whole, title."""
        views = np.asarray(views, dtype=np.float64).reshape(-1, 3)
        d = np.maximum(views[:, 0], views[:, 1] + self.whole_offset)
        if self.title_weight:
            d = d + self.title_weight * np.maximum(0.0, views[:, 2] - self.title_floor) / (1.0 - self.title_floor)
        return d


def candidate_features(d: np.ndarray, l: np.ndarray, articles: Sequence[str], f: np.ndarray | None = None,
                       c: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The rankers' scores of each candidate passage (aligned with `articles`, their article ids)
    and how each ranker's best candidate stands out; f, the agents' feedback, and c, the quoted
    codes held, when given."""
    d = np.asarray(d, dtype=np.float64)
    l = np.asarray(l, dtype=np.float64)
    d_top, d_margin = _top_and_margin(d, articles)
    l_top, l_margin = _top_and_margin(l, articles)
    ones = np.ones_like(d)
    return {
        "d": d,
        "l": l,
        "f": np.zeros_like(d) if f is None else np.asarray(f, dtype=np.float64),
        "c": np.zeros_like(d) if c is None else np.asarray(c, dtype=np.float64),
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


# See the module docstring: set, not fitted.
CODE_WEIGHT = 0.1

# Fitted by knowledge/calibration.py on the development queries of CLINC150, Banking77, NatCS and
# CovidFAQ, seed-7 split (bench/kb_datasets.py writes them; the reported queries are never seen by
# the fit). "f", the agents' feedback, weighs 0 until a memory holds judgements near the question.
DEFAULT_MODELS: dict[str, Model] = {
    "hybrid": Model((("d", 1.0), ("l_z", 0.02), ("c", CODE_WEIGHT), ("f", 0.2)), -3.6905, (("s", 9.2569), ("s_gap", 13.4534), ("s_margin", 8.0141), ("d_top", -5.5333), ("l_top", 0.1738))),
    "lexical": Model((("l", 1.0),), -1.7166, (("s", 2.4907), ("s_gap", 17.5119), ("s_margin", 9.2944))),
    "dense": Model((("d", 1.0), ("f", 0.2)), -3.7105, (("s", 4.3596), ("s_gap", 19.3383), ("s_margin", 9.2233))),
}
# How d is made (same fit, first: knowledge/calibration.py, fit_dense).
DEFAULT_DENSE = DenseMix(whole_offset=0.14, title_floor=0.4, title_weight=0.15)
# How alike a past question must be to count in the agents' feedback (knowledge/feedback.py),
# fitted with the weight of "f" by simulation on the development queries.
DEFAULT_FEEDBACK_SIMILARITY = 0.55
# Confidence below which each method answers "no good answer" (same fit).
DEFAULT_THRESHOLDS = {"hybrid": 0.21, "lexical": 0.2, "dense": 0.19}
