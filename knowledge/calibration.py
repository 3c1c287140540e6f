"""Fitting the fusion weights and the "no good answer" thresholds on development queries.

    python -m knowledge.calibration --articles ARTICLES.jsonl --queries QUERIES-dev.jsonl [...]

(several --articles/--queries pairs may be given; bench/kb_datasets.py writes QUERIES-dev.jsonl
beside each set, disjoint from the reported QUERIES.jsonl). It prints the fitted `Model`s and
thresholds as Python, for knowledge/fusion.py, and the development figures they give.

Fitting, per method:
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
   the decision costs no set more than `--max-recall-loss` (default 0.03) of recall@3 on its
   answerable queries: a margin below the 5 points allowed, as the reported queries are unseen.

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

from knowledge.fusion import (
    METHODS,
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


@dataclass
class QueryCandidates:
    relevant: frozenset[str]
    articles: list[str]
    features: dict[str, np.ndarray]


def collect(index, queries, embedder) -> list[QueryCandidates]:
    """Every query's hybrid candidates (both scores) and their features; the queries are encoded
    in batches, which gives the same vectors as one at a time."""
    vectors = embedder.encode([q.text for q in queries])
    out = []
    for q, vector in zip(queries, vectors):
        c = index.candidates(q.text, method="hybrid", query_vector=vector)
        articles = [p.article_id for p in c.passages]
        out.append(QueryCandidates(q.relevant, articles, candidate_features(c.dense, c.lexical, articles)))
    return out


def ranking_for(method: str, weights: tuple[float, float] = (0.0, 0.0)) -> tuple[tuple[str, float], ...]:
    lexical, standardised = weights
    hybrid = (("d", 1.0),) + ((("l", lexical),) if lexical else ()) + ((("l_z", standardised),) if standardised else ())
    return {"hybrid": hybrid, "dense": (("d", 1.0),), "lexical": (("l", 1.0),)}[method]


def fit_ranking(groups: Sequence[Sequence[QueryCandidates]]) -> tuple[float, float]:
    """The hybrid weights whose MRR gain over the better single ranker is largest on the set
    where it is smallest; among equals, the largest mean gain."""
    def mrr(group, method: str, weights=(0.0, 0.0)) -> float:
        return metrics(group, rankings(group, Model(ranking_for(method, weights), 0.0, ())), 0.0)["mrr_ungated"]

    single = [max(mrr(g, "dense"), mrr(g, "lexical")) for g in groups]
    best, best_key = (0.0, 0.0), (-1.0, -1.0)
    for weights in RANKING_GRID:
        gains = [mrr(g, "hybrid", weights) - s for g, s in zip(groups, single)]
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


def fit(groups: Sequence[Sequence[QueryCandidates]], *, max_recall_loss: float = 0.03, c: float = 1.0, top: int = 3) -> tuple[dict[str, Model], dict[str, float]]:
    weights = fit_ranking(groups)
    models, thresholds = {}, {}
    for method in METHODS:
        models[method] = fit_calibration(groups, ranking_for(method, weights), METHOD_FEATURES[method], c=c, top=top)
        thresholds[method] = choose_threshold(groups, models[method], max_recall_loss=max_recall_loss)
    return models, thresholds


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m knowledge.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=Path, action="append", default=[])
    parser.add_argument("--queries", type=Path, action="append", default=[])
    parser.add_argument("--max-recall-loss", type=float, default=0.03)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--top", type=int, default=3, help="candidates per query the calibration is fitted on (the best-ranked)")
    parser.add_argument("--dump", type=Path, help="also write the collected candidate scores here (JSON)")
    parser.add_argument("--from-dump", type=Path, help="fit on the candidate scores a --dump wrote (no model needed)")
    args = parser.parse_args(argv)
    if args.from_dump:
        per_set = _read_dump(args.from_dump)
    else:
        if not args.articles or len(args.articles) != len(args.queries):
            parser.error("give --articles and --queries in pairs (or --from-dump)")
        per_set = _collect_sets(args.articles, args.queries)
        if per_set is None:
            return 2
    if args.dump:
        _write_dump(args.dump, per_set)
    models, thresholds = fit([c for _, c in per_set], max_recall_loss=args.max_recall_loss, c=args.c, top=args.top)
    print("DEFAULT_MODELS: dict[str, Model] = {")
    for method in METHODS:
        print(f"    {method!r}: {models[method]!r},")
    print("}")
    print(f"DEFAULT_THRESHOLDS = {thresholds!r}")
    for name, collected in per_set:
        print(f"\n{name} (development figures):")
        for method in METHODS:
            m = metrics(collected, rankings(collected, models[method]), thresholds[method])
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
    per_set = []
    for articles_path, queries_path in zip(articles_paths, queries_paths):
        try:
            articles = read_articles(articles_path)
            queries = read_queries(queries_path, {a["id"] for a in articles})
        except EvalInputError as exc:
            print(f"calibration: {exc}", file=sys.stderr)
            return None
        per_set.append((str(queries_path), collect(build_index(articles, embedder), queries, embedder)))
    return per_set


def _write_dump(path: Path, per_set) -> None:
    import json

    sets = [
        {
            "name": name,
            "queries": [
                {"relevant": sorted(q.relevant), "articles": q.articles, "d": q.features["d"].tolist(), "l": q.features["l"].tolist()}
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
            QueryCandidates(frozenset(q["relevant"]), q["articles"], candidate_features(np.array(q["d"]), np.array(q["l"]), q["articles"]))
            for q in entry["queries"]
        ]
        per_set.append((entry["name"], collected))
    return per_set


if __name__ == "__main__":
    sys.exit(main())
