"""Retrieval quality over several random splits, on intent lists and help-centre articles alike,
against plain baselines computed in the same run, and what agents' feedback adds.

    .venv/bin/python bench/kb_quality.py                   # seeds 7 1 2 3 4 5 6, all four sets
    .venv/bin/python bench/kb_quality.py --seeds 7 1 2     # fewer splits
    .venv/bin/python bench/kb_quality.py --json            # one JSON object

Sets (bench/kb_datasets.py): CLINC150, Banking77 and NatCS, whose "articles" list the ways
customers ask an intent, and CovidFAQ, a help centre (a question as title over a long answer).
A set like NatCS, with 18 articles and ~280 answerable reported queries, turns on a handful of
queries, so one split cannot tell a better method from a lucky draw. Per seed this script writes
fresh sets, fits everything on that split's development queries of all four sets together
(knowledge/calibration.py: the whole view's offset, the fusion, the calibration, the thresholds,
and the agents' feedback by simulation), and scores on that split's reported queries (the same
metrics as `servicehub kb eval`). It prints, per set, the mean over the splits of:
- each method's MRR with and without the "no good answer" threshold, and the hybrid's difference
  to the better single ranker with a 95% interval over the splits (Student's t), won/tied/lost;
- the plain baselines, scored the same way (no threshold): dense = all-MiniLM-L6-v2 over each
  article's "title + body" as one text (the model cuts it at its 256 word pieces), cosine; BM25
  = bm25s (its tokenizer, English stop words and stemmer, k1 1.5, b 0.75) over the same text;
  and dense's difference to the plain dense one, with its interval;
- each of the two passage vectors alone (the sentence mean, the whole passage): what the choice
  of representation rests on;
- the agents' feedback, simulated: the development queries (about half of each set's questions
  on CovidFAQ) are asked, the agent marks the relevant article used and the wrong suggestions
  shown not helpful (knowledge/feedback.py), and the reported queries are ranked with that
  memory. The gain is the MRR with the memory minus without, with its interval; reported queries
  with no remembered question near them are listed apart (they must not change);
- how many unanswerable queries each method caught, and the most recall@3 the threshold cost;
- Chinese: the demo shop's articles in Chinese with Chinese questions written for servicehub
  (bench/kb_zh/: 17 articles, 44 questions with their article, 5 with none), by every method as
  shipped (the hybrid answers a Chinese question by the words alone, as the packaged model is
  English-only) and by the fused hybrid it would otherwise use.

The method is evaluated, not the shipped numbers: each split is fitted on its own development
queries, which for other seeds overlap the seed-7 reported queries. Query and article vectors
are cached by text across splits (the sets reuse the same texts): the first split pays for most
of the encoding (a minute or two on two cores), later ones take about a minute each, mostly the
fits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
# the repository first, this folder last: bench/email.py must never stand in for the stdlib's email
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))

import numpy as np
from _bench_common import loadavg, table
from kb_datasets import SETS, build

from knowledge import calibration
from knowledge.evaluation import baselines, build_index, read_articles, read_queries
from knowledge.fusion import METHODS

DEFAULT_SEEDS = (7, 1, 2, 3, 4, 5, 6)
CHINESE = BENCH / "kb_zh"
BASELINES = ("plain_dense", "plain_bm25")
VIEWS = ("sentences_only", "whole_only")
FEEDBACK = ("hybrid_feedback", "dense_feedback")
LABELS = {"clinc150": "CLINC150", "banking77": "Banking77", "natcs": "NatCS", "covidfaq": "CovidFAQ (help centre)"}


class CachingEmbedder:
    """The model, remembering each text's vector: the splits reuse the same utterances."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, **kwargs) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, self._embedder.encode(missing, **kwargs)):
                self._vectors[text] = vector
        if not texts:
            return self._embedder.encode([], **kwargs)
        return np.stack([self._vectors[t] for t in texts])


def evaluate_split(seed: int, sets, embedder, workdir: Path, *, feedback: bool = True) -> dict[str, dict]:
    """{set: {method or baseline: metrics}, "_fitted": the fitted parameters} for one split,
    fitted on its own development queries."""
    folders = build(workdir / f"seed{seed}", seed=seed, sets=sets)
    data = {}
    for name, folder in folders.items():
        articles = read_articles(folder / "ARTICLES.jsonl")
        ids = {a["id"] for a in articles}
        index = build_index(articles, embedder)
        dev_q = read_queries(folder / "QUERIES-dev.jsonl", ids)
        rep_q = read_queries(folder / "QUERIES.jsonl", ids)
        dev_v = embedder.encode([q.text for q in dev_q])
        rep_v = embedder.encode([q.text for q in rep_q])
        data[name] = {
            "articles": articles, "index": index, "dev_q": dev_q, "rep_q": rep_q, "dev_v": dev_v, "rep_v": rep_v,
            "dev": calibration.collect(index, dev_q, embedder, dev_v), "rep": calibration.collect(index, rep_q, embedder, rep_v),
        }
    fitted = calibration.fit([data[name]["dev"] for name in folders])
    mix = fitted.dense
    for d in data.values():
        d["dev"] = calibration.with_params(d["dev"], dense=mix)
        d["rep"] = calibration.with_params(d["rep"], dense=mix)
    if feedback:
        folds = [calibration.feedback_folds(d["index"], d["dev_q"], d["dev_v"], d["dev"], fitted) for d in data.values()]
        fitted.feedback_similarity, fitted.feedback_weight = calibration.fit_feedback(folds, fitted)

    out: dict[str, dict] = {}
    for name, d in data.items():
        rep = d["rep"]
        result = {m: calibration.metrics(rep, calibration.rankings(rep, fitted.models[m]), fitted.thresholds[m]) for m in METHODS}
        plain = baselines(d["articles"], d["rep_q"], embedder, d["rep_v"])
        result.update({"plain_dense": plain["plain-dense"], "plain_bm25": plain["plain-bm25"]})
        dense = fitted.models["dense"]
        for view, label in (("sentences", "sentences_only"), ("whole", "whole_only")):
            only = calibration.with_params(rep, views=view)
            result[label] = calibration.metrics(only, calibration.rankings(only, dense), 0.0)
        if feedback:
            judgements = calibration.judgements_of(d["dev"], d["dev_v"], fitted.models["hybrid"], fitted.thresholds["hybrid"], key="dev")
            remembered = calibration.collect_with_memory(d["index"], d["rep_q"], d["rep_v"], judgements, dense=mix,
                                                         similarity=fitted.feedback_similarity)
            remembered = calibration.with_params(remembered, dense=mix, similarity=fitted.feedback_similarity)
            alone = [i for i, q in enumerate(remembered) if not q.neighbours]
            for method, label in (("hybrid", "hybrid_feedback"), ("dense", "dense_feedback")):
                model = calibration.with_feedback(fitted.models[method], fitted.feedback_weight)
                result[label] = calibration.metrics(remembered, calibration.rankings(remembered, model), fitted.thresholds[method])
            # Queries with no remembered question near them: the memory must leave them as they were.
            model = calibration.with_feedback(fitted.models["hybrid"], fitted.feedback_weight)
            before = calibration.metrics([rep[i] for i in alone], calibration.rankings([rep[i] for i in alone], fitted.models["hybrid"]), 0.0)
            after = calibration.metrics([remembered[i] for i in alone], calibration.rankings([remembered[i] for i in alone], model), 0.0)
            result["feedback_untouched"] = {"queries": len(alone), "of": len(rep), "mrr_change": after["mrr_ungated"] - before["mrr_ungated"]}
            result["feedback_judgements"] = len(judgements)
        out[name] = result
    out["_fitted"] = {
        "dense": [mix.whole_offset, mix.title_floor, mix.title_weight],
        "ranking": {m: list(fitted.models[m].ranking) for m in METHODS},
        "thresholds": fitted.thresholds,
        "feedback_similarity": fitted.feedback_similarity,
        "feedback_weight": fitted.feedback_weight,
    }
    return out


def chinese(embedder) -> dict[str, dict]:
    """The Chinese set by every method, as shipped and with the fused hybrid (see the module
    docstring); the model is the real one, uncached (the set is small)."""
    from knowledge.evaluation import evaluate
    from knowledge.index import IndexConfig

    articles = read_articles(CHINESE / "ARTICLES.jsonl")
    queries = read_queries(CHINESE / "QUERIES.jsonl", {a["id"] for a in articles})
    index = build_index(articles, embedder, IndexConfig())
    out = evaluate(index, queries)
    index.config.dense_reads_cjk = True
    out["hybrid_fused"] = evaluate(index, queries, ["hybrid"])["hybrid"]
    return out


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of `values` (the interval is the mean alone for one value)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, mean, mean
    # scipy comes with scikit-learn, which the calibration fit already needs
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _difference(diffs: list[float]) -> dict:
    mean, low, high = interval(diffs)
    return {
        "mean": mean,
        "interval95": [low, high],
        "wins": sum(d > 1e-9 for d in diffs),
        "ties": sum(abs(d) <= 1e-9 for d in diffs),
        "losses": sum(d < -1e-9 for d in diffs),
    }


def summarise(per_seed: dict[int, dict[str, dict]], sets) -> dict[str, dict]:
    out = {}
    for name in sets:
        runs = [per_seed[s][name] for s in per_seed]
        entry = {}
        for key in ("mrr", "mrr_ungated"):
            means = {m: float(np.mean([r[m][key] for r in runs])) for m in METHODS}
            diff = _difference([r["hybrid"][key] - max(r["dense"][key], r["lexical"][key]) for r in runs])
            entry[key] = {**means, "hybrid_minus_best": diff["mean"], **{k: v for k, v in diff.items() if k != "mean"}}
        extras = [k for k in (*BASELINES, *VIEWS, *FEEDBACK) if k in runs[0]]
        entry["others"] = {k: {key: float(np.mean([r[k][key] for r in runs])) for key in ("mrr", "mrr_ungated")} for k in extras}
        entry["dense_minus_plain_dense"] = _difference([r["dense"]["mrr_ungated"] - r["plain_dense"]["mrr_ungated"] for r in runs])
        entry["hybrid_minus_plain_dense"] = _difference([r["hybrid"]["mrr_ungated"] - r["plain_dense"]["mrr_ungated"] for r in runs])
        if "hybrid_feedback" in runs[0]:
            for key in ("mrr", "mrr_ungated"):
                entry[f"feedback_gain_{key}"] = _difference([r["hybrid_feedback"][key] - r["hybrid"][key] for r in runs])
                entry[f"feedback_gain_dense_{key}"] = _difference([r["dense_feedback"][key] - r["dense"][key] for r in runs])
            entry["feedback_untouched"] = {
                "queries": float(np.mean([r["feedback_untouched"]["queries"] for r in runs])),
                "of": float(np.mean([r["feedback_untouched"]["of"] for r in runs])),
                "largest_mrr_change": max(abs(r["feedback_untouched"]["mrr_change"]) for r in runs),
            }
        entry["max_recall3_cost"] = max(r["hybrid"]["recall@3_ungated"] - r["hybrid"]["recall@3"] for r in runs)
        entry["no_answer"] = {m: {k: _mean_of(r[m][k] for r in runs) for k in ("no_answer_precision", "no_answer_recall")} for m in METHODS}
        out[name] = entry
    return out


def _mean_of(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _interval_text(d: dict) -> str:
    low, high = d["interval95"]
    return f"{d['mean']:+.4f} [{low:+.4f}, {high:+.4f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--no-feedback", action="store_true", help="skip the simulation of agents' feedback")
    parser.add_argument("--no-chinese", action="store_true", help="skip the Chinese set")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(args.seeds))  # a seed given twice is the same split

    from knowledge.embedder import default_embedder

    embedder = CachingEmbedder(default_embedder(threads=2))
    per_seed: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="kb-quality-") as tmp:
        for seed in args.seeds:
            started = time.perf_counter()
            per_seed[seed] = evaluate_split(seed, args.sets, embedder, Path(tmp), feedback=not args.no_feedback)
            if not args.json:
                f = per_seed[seed]["_fitted"]
                extra = [k for k in (*BASELINES, *FEEDBACK) if k in per_seed[seed][args.sets[0]]]
                rows = [
                    [LABELS[name]] + [f"{per_seed[seed][name][m]['mrr']:.4f} / {per_seed[seed][name][m]['mrr_ungated']:.4f}" for m in METHODS]
                    + [f"{per_seed[seed][name][k]['mrr_ungated']:.4f}" for k in extra]
                    for name in args.sets
                ]
                print(f"\nseed {seed} ({time.perf_counter() - started:.0f} s): MRR with / without the threshold; fitted: dense mix "
                      f"(whole offset, title floor, title weight) {f['dense']}, hybrid {dict(f['ranking']['hybrid'])}, feedback similarity {f['feedback_similarity']} "
                      f"weight {f['feedback_weight']}", flush=True)
                print(table(["set", *METHODS, *extra], rows))
    summary = summarise(per_seed, args.sets)
    zh = None if args.no_chinese else chinese(embedder)
    if args.json:
        print(json.dumps({"seeds": args.seeds, "per_seed": per_seed, "summary": summary, "chinese": zh}, indent=2))
        return 0
    print(f"\nover {len(args.seeds)} splits (seeds {' '.join(map(str, args.seeds))}); load average {loadavg()}")
    for key, label in (("mrr", "MRR with the threshold"), ("mrr_ungated", "MRR without the threshold")):
        rows = []
        for name in args.sets:
            e = summary[name][key]
            low, high = e["interval95"]
            rows.append([LABELS[name]] + [f"{e[m]:.4f}" for m in METHODS] + [f"{e['hybrid_minus_best']:+.4f} [{low:+.4f}, {high:+.4f}]", f"{e['wins']}/{e['ties']}/{e['losses']}"])
        print(f"\n{label}, mean over the splits")
        print(table(["set", *METHODS, "hybrid - better single (95%)", "won/tied/lost"], rows))
    rows = []
    for name in args.sets:
        o = summary[name]["others"]
        rows.append([LABELS[name], f"{summary[name]['mrr_ungated']['dense']:.4f}", f"{o['plain_dense']['mrr_ungated']:.4f}",
                     f"{o['plain_bm25']['mrr_ungated']:.4f}", _interval_text(summary[name]["dense_minus_plain_dense"]),
                     _interval_text(summary[name]["hybrid_minus_plain_dense"]),
                     f"{o['sentences_only']['mrr_ungated']:.4f}", f"{o['whole_only']['mrr_ungated']:.4f}"])
    print("\nagainst the plain baselines (no threshold), and each passage vector alone, mean over the splits")
    print(table(["set", "dense", "plain dense", "plain BM25", "dense - plain dense (95%)", "hybrid - plain dense (95%)",
                 "sentence mean alone", "whole passage alone"], rows))
    if "feedback_gain_mrr" in summary[args.sets[0]]:
        rows = []
        for name in args.sets:
            e, o = summary[name], summary[name]["others"]
            u = e["feedback_untouched"]
            rows.append([LABELS[name], f"{e['mrr']['hybrid']:.4f} -> {o['hybrid_feedback']['mrr']:.4f}", _interval_text(e["feedback_gain_mrr"]),
                         _interval_text(e["feedback_gain_mrr_ungated"]), _interval_text(e["feedback_gain_dense_mrr_ungated"]),
                         f"{u['queries']:.0f} of {u['of']:.0f}: {u['largest_mrr_change']:.4f}"])
        print("\nagents' feedback, simulated on the development queries, measured on the reported ones (mean over the splits)")
        print(table(["set", "hybrid MRR (threshold) without -> with", "gain (95%)", "gain, no threshold", "dense gain, no threshold",
                     "queries with no remembered neighbour: largest MRR change"], rows))
    rows = [
        [LABELS[name]] + [" / ".join("-" if summary[name]["no_answer"][m][k] is None else f"{summary[name]['no_answer'][m][k]:.2f}" for k in ("no_answer_precision", "no_answer_recall")) for m in METHODS]
        for name in args.sets
    ]
    print("\nunanswerable queries caught, precision / recall, mean over the splits")
    print(table(["set", *METHODS], rows))
    print("\nmost recall@3 the hybrid's threshold cost on any split: " + ", ".join(f"{LABELS[n]} {summary[n]['max_recall3_cost']:.3f}" for n in args.sets))
    if zh is not None:
        rows = [[label] + [f"{zh[m][k]:.3f}" if zh[m][k] is not None else "-" for k in ("mrr", "recall@1", "recall@3", "mrr_ungated")]
                + [f"{zh[m]['no_answer_precision'] or 0:.2f} / {zh[m]['no_answer_recall'] or 0:.2f}"]
                for m, label in (("dense", "dense"), ("lexical", "lexical"), ("hybrid", "hybrid as shipped (words alone)"),
                                 ("hybrid_fused", "hybrid fused as for English"))]
        print(f"\nChinese demo articles ({zh['dense']['queries']} questions, {zh['dense']['unanswerable']} with no answer; bench/kb_zh/)")
        print(table(["method", "MRR", "R@1", "R@3", "MRR no threshold", "no answer P / R"], rows))
    fits = [per_seed[s]["_fitted"] for s in per_seed]
    print("fitted per split: dense mix (whole offset, title floor, title weight) " + ", ".join(str(tuple(f["dense"])) for f in fits)
          + "; hybrid lexical weights " + ", ".join(str({k: v for k, v in f["ranking"]["hybrid"] if k != "d"}) for f in fits)
          + "; feedback (similarity, weight) " + ", ".join(f"({f['feedback_similarity']}, {f['feedback_weight']})" for f in fits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
