"""Fitting the fusion weights and the "no good answer" thresholds on development queries.

    python -m knowledge.calibration --articles ARTICLES.jsonl --queries QUERIES-dev.jsonl [...]

(several --articles/--queries pairs may be given; bench/kb_datasets.py writes QUERIES-dev.jsonl
beside each set, disjoint from the reported QUERIES.jsonl). It prints the fitted `Model`s and
thresholds as Python, for knowledge/fusion.py, and the development figures they give.

Fitting:
0. The dense score d (all methods that use it; knowledge/fusion.py, DenseMix): the whole view's
   offset and the title's floor and weight. Among the triples on a grid that keep every set at
   or above its whole view alone (the passage read as one text: what a plain embedding search
   does), the one with the largest mean dense MRR gain over the better of the two main views
   alone (sentence mean, whole passage): one mix must serve lists of utterances and help-centre
   articles alike. (The mix that is nearest the better view on the set where it is farthest
   gave up more on help-centre articles, where the whole view is the plain baseline, than it
   kept on intent lists, which are far above it: bench/kb_quality.py.)
Then per method:
1. The ranking (hybrid only; dense ranks by d, lexical by l): the weights of the lexical
   coverage l and of its standardised form l_z in s = d + a * l + z * l_z. The pair on a grid whose
   MRR gain over the better of the two single rankers is largest on the set where it is smallest
   (then: the largest mean gain): the hybrid must beat both rankers everywhere, not on average.
2. The calibration: logistic regression of "this candidate's article is relevant" on the
   calibration features (knowledge/fusion.py), over the top `--top` (default 3) candidates of
   every development query by the method's ranking, unanswerable queries included (all their
   candidates are negatives: that is what teaches the confidence to be low when nothing fits);
   each set weighs the same in total. Only the top few: the threshold judges the best hit and
   agents see three suggestions, while the 40-80 candidates further down are easy negatives
   that would otherwise make most of the fit (on the development sets, fitting on all of them
   gave a mean no-answer F1 of 0.468, on the top 3 0.482, on the top 1 0.481).
3. The threshold: the confidence below which the method says "no good answer", chosen to
   maximise the F1 of detecting unanswerable queries (averaged over the development sets) while
   the decision costs no set more than `--max-recall-loss` (default 0.02) of recall@3 on its
   answerable queries: a margin below the 5 points allowed, as the reported queries are unseen
   (with 0.03, one of seven splits cost CLINC150 5.6 points on its reported queries).

4. The agents' feedback (`fit_feedback`, when asked): by simulation on the development queries
   in two halves. The agent's verdicts on one half's questions (knowledge/feedback.py:
   `simulated_verdicts`) fill the memory; the other half is ranked with it. The similarity and
   the weight of "f" on a grid with the largest mean MRR gain over the sets among those that
   lose on no set.

The fitting needs scikit-learn (a development dependency); the hub only evaluates the fitted
numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.feedback import FeedbackMemory, Judgement, Neighbour, evidence_of, simulated_verdicts
from knowledge.fusion import (
    CODE_WEIGHT,
    DEFAULT_DENSE,
    METHODS,
    DenseMix,
    Model,
    calibration_features,
    candidate_features,
    sigmoid,
)

# The calibration features each method may use: a single-ranker method only sees its own score.
METHOD_FEATURES = {
    "hybrid": ("s", "s_gap", "s_margin", "d_top", "l_top"),
    "dense": ("s", "s_gap", "s_margin"),
    "lexical": ("s", "s_gap", "s_margin"),
}
# The hybrid's ranking weights tried: (weight of l, weight of l_z), the weight of d being 1.
RANKING_GRID = tuple(
    (round(float(a), 3), round(float(z), 3)) for a in np.arange(0.0, 0.51, 0.05) for z in np.arange(0.0, 0.0401, 0.005)
)
# The dense mixes tried: whole-view offsets, title floors, title weights.
OFFSET_GRID = tuple(round(float(x), 2) for x in np.arange(0.0, 0.301, 0.01))
TITLE_FLOORS = (0.4, 0.45, 0.5, 0.6)
TITLE_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
# The agents' feedback: similarities and weights of "f" tried.
FEEDBACK_SIMILARITIES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
FEEDBACK_WEIGHTS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


@dataclass
class QueryCandidates:
    relevant: frozenset[str]
    articles: list[str]
    features: dict[str, np.ndarray]
    views: np.ndarray | None = None  # (n, 3) cosines to the passages' views: to refit the dense mix
    neighbours: tuple[Neighbour, ...] = ()  # remembered judgements near the query: to refit the feedback


@dataclass
class Fitted:
    models: dict[str, Model]
    thresholds: dict[str, float]
    dense: DenseMix
    feedback_similarity: float | None = None  # None: the feedback was not fitted
    feedback_weight: float = 0.0


def collect(index, queries, embedder, vectors: np.ndarray | None = None, *, dense: DenseMix | None = None) -> list[QueryCandidates]:
    """Every query's hybrid candidates (both scores) and their features; the queries are encoded
    in batches, which gives the same vectors as one at a time (`vectors`: already encoded). With
    a feedback memory on the index, the judgements near each query come along."""
    if vectors is None:
        vectors = embedder.encode([q.text for q in queries])
    dense = dense or index.config.dense
    memory = index.memory
    out = []
    for q, vector in zip(queries, vectors):
        c = index.candidates(q.text, method="hybrid", query_vector=vector)
        articles = [p.article_id for p in c.passages]
        views = c.views if c.views is not None else np.zeros((len(articles), 3))
        neighbours = tuple(memory.neighbours(vector)) if memory is not None else ()
        features = candidate_features(dense.score(views), c.lexical, articles, c=c.codes)
        out.append(QueryCandidates(q.relevant, articles, features, views, neighbours))
    return out


def with_params(data: Sequence[QueryCandidates], *, dense: DenseMix | None = None, similarity: float | None = None,
                views: str = "mix") -> list[QueryCandidates]:
    """The queries' features with another dense mix (None: as they are) and with the feedback
    evidence of their neighbours at `similarity` (None: no feedback). views: "mix", or
    "sentences" / "whole" / "title" for that view's cosine alone as d."""
    out = []
    for q in data:
        if q.views is None or (dense is None and similarity is None and views == "mix"):
            out.append(q)
            continue
        if views != "mix":
            d = q.views[:, ("sentences", "whole", "title").index(views)]
        elif dense is None:
            d = q.features["d"]
        else:
            d = dense.score(q.views)
        f = None
        if similarity is not None and q.neighbours:
            ev = evidence_of(q.neighbours, similarity)
            f = np.array([ev.get(a, 0.0) for a in q.articles])
        features = candidate_features(d, q.features["l"], q.articles, f, q.features.get("c"))
        out.append(QueryCandidates(q.relevant, q.articles, features, q.views, q.neighbours))
    return out


class RankTable:
    """A group's candidates flattened for the fits: a score for every candidate of every query at
    once, each query's articles ranked by their best passage, MRR (no threshold, top 10), all in
    array operations (the fits try hundreds of weightings). Ties count for the relevant article."""

    def __init__(self, group: Sequence[QueryCandidates]):
        views, slots, slot_query, slot_relevant = [], [], [], []
        features: dict[str, list[np.ndarray]] = {}
        answerable = 0
        for qi, q in enumerate(group):
            if not q.relevant:
                continue
            answerable += 1
            if not q.articles:
                continue
            names, owner = np.unique(np.asarray(q.articles), return_inverse=True)
            views.append(q.views if q.views is not None else np.zeros((len(q.articles), 3)))
            for name in ("d", "l", "l_z", "f", "c"):
                features.setdefault(name, []).append(q.features[name])
            slots.append(owner.reshape(-1) + len(slot_query))
            slot_query += [qi] * len(names)
            slot_relevant += [name in q.relevant for name in names]
        self.views = np.concatenate(views) if views else np.zeros((0, 3))
        self.features = {name: np.concatenate(parts) for name, parts in features.items()}
        self.slot = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
        self.slot_query = np.asarray(slot_query, dtype=np.int64)
        self.slot_relevant = np.asarray(slot_relevant, dtype=bool)
        self.queries = len(group)
        self.answerable = answerable

    def score(self, ranking) -> np.ndarray:
        """The candidates' scores under a ranking ((feature, weight) pairs, as Model.ranking)."""
        out = np.zeros(len(self.slot), dtype=np.float64)
        for name, weight in ranking:
            out += weight * self.features[name]
        return out

    def mrr(self, scores: np.ndarray) -> float:
        if not self.answerable:
            return 0.0
        best = np.full(len(self.slot_query), -np.inf)
        np.maximum.at(best, self.slot, scores)
        relevant_best = np.full(self.queries, -np.inf)
        np.maximum.at(relevant_best, self.slot_query[self.slot_relevant], best[self.slot_relevant])
        better = np.bincount(self.slot_query, weights=best > relevant_best[self.slot_query], minlength=self.queries)
        rank = 1 + better
        rr = np.where(np.isfinite(relevant_best) & (rank <= 10), 1.0 / rank, 0.0)
        return float(rr.sum()) / self.answerable


def fit_dense(groups: Sequence[Sequence[QueryCandidates]]) -> DenseMix:
    """Among the dense mixes at or above the whole view alone on every set, the one with the
    largest mean MRR gain over the better of the two main views alone."""
    if any(q.views is None for g in groups for q in g):
        return DEFAULT_DENSE
    tables = [RankTable(g) for g in groups]
    whole = [t.mrr(t.views[:, 1]) for t in tables]
    single = [max(t.mrr(t.views[:, 0]), w) for t, w in zip(tables, whole)]
    best, best_key = DEFAULT_DENSE, (False, -2.0)
    for offset in OFFSET_GRID:
        for floor in TITLE_FLOORS:
            for weight in TITLE_WEIGHTS:
                if not weight and floor != TITLE_FLOORS[0]:
                    continue  # no title bonus: the floor does not matter
                mix = DenseMix(offset, floor, weight)
                mrrs = [t.mrr(mix.score(t.views)) for t in tables]
                key = (all(m >= w - 1e-9 for m, w in zip(mrrs, whole)), round(float(np.mean([m - s for m, s in zip(mrrs, single)])), 6))
                if key > best_key:
                    best, best_key = mix, key
    return best


def ranking_for(method: str, weights: tuple[float, float] = (0.0, 0.0), feedback: float = 0.0) -> tuple[tuple[str, float], ...]:
    lexical, standardised = weights
    hybrid = (("d", 1.0),) + ((("l", lexical),) if lexical else ()) + ((("l_z", standardised),) if standardised else ())
    hybrid += (("c", CODE_WEIGHT),)  # set, not fitted (knowledge/fusion.py)
    agents = (("f", feedback),) if feedback else ()
    return {"hybrid": hybrid + agents, "dense": (("d", 1.0),) + agents, "lexical": (("l", 1.0),)}[method]


def with_feedback(model: Model, weight: float) -> Model:
    """The model with the feedback feature "f" at this weight in its ranking (lexical search has
    no question vector, so no feedback)."""
    ranking = tuple((name, w) for name, w in model.ranking if name != "f")
    if weight and any(name == "d" for name, _ in ranking):
        ranking += (("f", weight),)
    return Model(ranking, model.bias, model.calibration)


def fit_ranking(groups: Sequence[Sequence[QueryCandidates]]) -> tuple[float, float]:
    """The hybrid weights whose MRR gain over the better single ranker is largest on the set
    where it is smallest; among equals, the largest mean gain."""
    tables = [RankTable(g) for g in groups]

    def mrr(table, method: str, weights=(0.0, 0.0)) -> float:
        return table.mrr(table.score(ranking_for(method, weights)))

    single = [max(mrr(t, "dense"), mrr(t, "lexical")) for t in tables]
    best, best_key = (0.0, 0.0), (-1.0, -1.0)
    for weights in RANKING_GRID:
        gains = [mrr(t, "hybrid", weights) - s for t, s in zip(tables, single)]
        key = (round(min(gains), 6), round(float(np.mean(gains)), 6))
        if key > best_key:
            best, best_key = weights, key
    return best


def fit_calibration(groups: Sequence[Sequence[QueryCandidates]], ranking, features: Sequence[str], *, c: float = 1.0, top: int = 3) -> Model:
    """Logistic regression over the `top` best-ranked candidates of every query; each group (a
    development set) weighs the same in total, so a large set does not decide alone."""
    from sklearn.linear_model import LogisticRegression

    unfitted = Model(ranking, 0.0, ())
    xs, ys, ws = [], [], []
    for group in groups:
        rows = sum(min(top, len(q.articles)) for q in group)
        for q in group:
            if not q.articles:
                continue
            scores = unfitted.scores(q.features)
            calibration = calibration_features(q.features, scores, q.articles)
            best = np.argsort(-scores, kind="stable")[:top]
            xs.append(np.column_stack([calibration[f] for f in features])[best])
            ys.append([q.articles[i] in q.relevant for i in best])
            ws.append(np.full(len(best), 1.0 / max(1, rows)))
    x, y, w = np.concatenate(xs), np.concatenate(ys).astype(int), np.concatenate(ws)
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x, y, sample_weight=w * len(w) / w.sum())
    weights = tuple((f, round(float(v), 4)) for f, v in zip(features, model.coef_[0]))
    return Model(ranking, round(float(model.intercept_[0]), 4), weights)


def rankings(data: Sequence[QueryCandidates], model: Model) -> list[tuple[list[str], float]]:
    """Per query: the articles in the model's order and the top hit's confidence."""
    out = []
    for q in data:
        if not q.articles:
            out.append(([], 0.0))
            continue
        scores = model.scores(q.features)
        order, seen = [], set()
        best = int(np.argmax(scores))
        top_conf = float(sigmoid(model.logits(q.features, scores, q.articles)[best])) if model.calibration else 1.0
        for i in np.argsort(-scores, kind="stable"):
            if q.articles[i] not in seen:
                seen.add(q.articles[i])
                order.append(q.articles[i])
        out.append((order, top_conf))
    return out


def metrics(data: Sequence[QueryCandidates], ranked, threshold: float) -> dict:
    answerable = [(q, r) for q, r in zip(data, ranked) if q.relevant]
    n = max(1, len(answerable))
    r3 = r3_ungated = rr = rr_ungated = 0.0
    for q, (order, conf) in answerable:
        rank = next((i for i, a in enumerate(order[:10], 1) if a in q.relevant), None)
        if rank:
            rr_ungated += 1 / rank
            r3_ungated += rank <= 3
            if conf >= threshold:
                rr += 1 / rank
                r3 += rank <= 3
    declared = [not q.relevant for q, (_, conf) in zip(data, ranked) if conf < threshold]
    unanswerable = sum(1 for q in data if not q.relevant)
    precision = sum(declared) / len(declared) if declared else None
    recall = sum(declared) / unanswerable if unanswerable else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "recall@3": r3 / n,
        "recall@3_ungated": r3_ungated / n,
        "mrr": rr / n,
        "mrr_ungated": rr_ungated / n,
        "no_answer_precision": precision,
        "no_answer_recall": recall,
        "no_answer_f1": f1,
    }


def choose_threshold(groups: Sequence[Sequence[QueryCandidates]], model: Model, *, max_recall_loss: float) -> float:
    """The threshold with the best mean no-answer F1 over the groups among those that cost no
    group more than max_recall_loss of recall@3."""
    ranked = [rankings(group, model) for group in groups]
    best, best_f1 = 0.0, -1.0
    for threshold in np.round(np.arange(0.01, 0.96, 0.01), 2):
        scores = [metrics(group, r, float(threshold)) for group, r in zip(groups, ranked)]
        if any(m["recall@3_ungated"] - m["recall@3"] > max_recall_loss for m in scores):
            continue
        f1 = float(np.mean([m["no_answer_f1"] for m in scores]))
        if f1 > best_f1:
            best, best_f1 = float(threshold), f1
    return best


def fit(groups: Sequence[Sequence[QueryCandidates]], *, max_recall_loss: float = 0.02, c: float = 1.0, top: int = 3) -> Fitted:
    dense = fit_dense(groups)
    groups = [with_params(g, dense=dense) for g in groups]
    weights = fit_ranking(groups)
    models, thresholds = {}, {}
    for method in METHODS:
        models[method] = fit_calibration(groups, ranking_for(method, weights), METHOD_FEATURES[method], c=c, top=top)
        thresholds[method] = choose_threshold(groups, models[method], max_recall_loss=max_recall_loss)
    return Fitted(models, thresholds, dense)


# --- the agents' feedback, by simulation ------------------------------------------------------------


def judgements_of(data: Sequence[QueryCandidates], vectors: np.ndarray, model: Model, threshold: float, *, key: str = "q") -> list[Judgement]:
    """What agents would have said about these questions (knowledge/feedback.py:
    simulated_verdicts) as the hub ranked them with `model`, as memory entries."""
    out = []
    for i, (q, (order, confidence)) in enumerate(zip(data, rankings(data, model))):
        for article, verdict in simulated_verdicts(order, q.relevant, answerable=confidence >= threshold):
            out.append(Judgement((key, i, article), vectors[i], article, verdict))
    return out


def collect_with_memory(index, queries, vectors, judgements, *, dense: DenseMix, similarity: float) -> list[QueryCandidates]:
    """The queries' candidates with a memory of these judgements on the index (taken off after)."""
    memory = FeedbackMemory(vectors.shape[1], similarity=similarity, capacity=max(1, len(judgements)))
    memory.add(judgements)
    index.memory = memory
    try:
        return collect(index, queries, None, vectors, dense=dense)
    finally:
        index.memory = None


def feedback_folds(index, queries, vectors, dev: Sequence[QueryCandidates], fitted: Fitted) -> list[QueryCandidates]:
    """The development queries in two halves (alternate queries), each collected with a memory of
    the other half's simulated verdicts (at the lowest similarity tried: the features of any
    higher one are a subset)."""
    model, threshold = fitted.models["hybrid"], fitted.thresholds["hybrid"]
    halves = [list(range(0, len(queries), 2)), list(range(1, len(queries), 2))]
    out: list[QueryCandidates | None] = [None] * len(queries)
    for mine, other in (halves, halves[::-1]):
        judgements = judgements_of([dev[i] for i in other], vectors[other], model, threshold, key="dev")
        collected = collect_with_memory(index, [queries[i] for i in mine], vectors[mine], judgements,
                                        dense=fitted.dense, similarity=min(FEEDBACK_SIMILARITIES))
        for i, q in zip(mine, collected):
            out[i] = q
    return out


def fit_feedback(groups: Sequence[Sequence[QueryCandidates]], fitted: Fitted) -> tuple[float, float]:
    """(similarity, weight) of the agents' feedback, on groups from `feedback_folds`: the largest
    mean MRR gain of the hybrid over the groups among the pairs that lose on none (then the
    largest smallest gain)."""
    model = fitted.models["hybrid"]
    tables = [RankTable(g) for g in groups]
    base = [t.mrr(t.score(model.ranking)) for t in tables]
    best, best_key = (FEEDBACK_SIMILARITIES[-1], 0.0), (0, 0.0, 0.0)
    for similarity in FEEDBACK_SIMILARITIES:
        featured = [RankTable(with_params(g, similarity=similarity)) for g in groups]
        for weight in FEEDBACK_WEIGHTS:
            gains = [t.mrr(t.score(with_feedback(model, weight).ranking)) - b for t, b in zip(featured, base)]
            key = (int(min(gains) >= -1e-9), round(float(np.mean(gains)), 6), round(min(gains), 6))
            if key > best_key:
                best, best_key = (similarity, weight), key
    return best


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m knowledge.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, action="append", default=[])
    parser.add_argument("--queries", type=Path, action="append", default=[])
    parser.add_argument("--max-recall-loss", type=float, default=0.02)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--top", type=int, default=3, help="candidates per query the calibration is fitted on (the best-ranked)")
    parser.add_argument("--dump", type=Path, help="also write the collected candidate scores here (JSON)")
    parser.add_argument("--from-dump", type=Path, help="fit on the candidate scores a --dump wrote (no model needed)")
    args = parser.parse_args(argv)
    sources = None
    if args.from_dump:
        per_set = _read_dump(args.from_dump)
    else:
        if not args.articles or len(args.articles) != len(args.queries):
            parser.error("give --articles and --queries in pairs (or --from-dump)")
        collected_sets = _collect_sets(args.articles, args.queries)
        if collected_sets is None:
            return 2
        per_set, sources = collected_sets
    if args.dump:
        _write_dump(args.dump, per_set)
    fitted = fit([c for _, c in per_set], max_recall_loss=args.max_recall_loss, c=args.c, top=args.top)
    if sources is not None:  # the feedback simulation needs the indexes (a dump has none)
        folds = [feedback_folds(index, queries, vectors, with_params(c, dense=fitted.dense), fitted)
                 for (index, queries, vectors), (_, c) in zip(sources, per_set)]
        fitted.feedback_similarity, fitted.feedback_weight = fit_feedback(folds, fitted)
    models = {m: with_feedback(fitted.models[m], fitted.feedback_weight) for m in METHODS}
    thresholds = fitted.thresholds
    print("DEFAULT_MODELS: dict[str, Model] = {")
    for method in METHODS:
        print(f"    {method!r}: {models[method]!r},")
    print("}")
    print(f"DEFAULT_THRESHOLDS = {thresholds!r}")
    print(f"DEFAULT_DENSE = {fitted.dense!r}")
    if fitted.feedback_similarity is not None:
        print(f"DEFAULT_FEEDBACK_SIMILARITY = {fitted.feedback_similarity!r}")
    for name, collected in per_set:
        collected = with_params(collected, dense=fitted.dense)
        print(f"\n{name} (development figures):")
        for method in METHODS:
            m = metrics(collected, rankings(collected, fitted.models[method]), thresholds[method])
            print(f"  {method:8} " + "  ".join(f"{k}={'-' if v is None else f'{v:.3f}'}" for k, v in m.items()))
    return 0


def _collect_sets(articles_paths, queries_paths):
    from knowledge.embedder import default_embedder
    from knowledge.evaluation import (
        EvalInputError,
        build_index,
        read_articles,
        read_queries,
    )

    embedder = default_embedder()
    per_set, sources = [], []
    for articles_path, queries_path in zip(articles_paths, queries_paths):
        try:
            articles = read_articles(articles_path)
            queries = read_queries(queries_path, {a["id"] for a in articles})
        except EvalInputError as exc:
            print(f"calibration: {exc}", file=sys.stderr)
            return None
        index = build_index(articles, embedder)
        vectors = embedder.encode([q.text for q in queries])
        per_set.append((str(queries_path), collect(index, queries, embedder, vectors)))
        sources.append((index, queries, vectors))
    return per_set, sources


def _write_dump(path: Path, per_set) -> None:
    import json

    sets = [
        {
            "name": name,
            "queries": [
                {"relevant": sorted(q.relevant), "articles": q.articles, "views": q.views.tolist(), "l": q.features["l"].tolist()}
                for q in collected
            ],
        }
        for name, collected in per_set
    ]
    path.write_text(json.dumps({"sets": sets}))


def _read_dump(path: Path):
    import json

    per_set = []
    for entry in json.loads(path.read_text())["sets"]:
        collected = [
            QueryCandidates(frozenset(q["relevant"]), q["articles"],
                            candidate_features(DEFAULT_DENSE.score(np.array(q["views"])), np.array(q["l"]), q["articles"]),
                            np.array(q["views"]).reshape(-1, 3))
            for q in entry["queries"]
        ]
        per_set.append((entry["name"], collected))
    return per_set


if __name__ == "__main__":
    sys.exit(main())
