"""`servicehub kb eval` (knowledge/evaluation.py): its --json shape and its input errors."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.kb_datasets import build as build_datasets
from knowledge import evaluation
from knowledge.embedder import default_embedder

METRICS = {"recall@1", "recall@3", "recall@5", "mrr", "no_answer_precision", "no_answer_recall", "p50_ms", "p95_ms"}


@pytest.fixture(scope="session", autouse=True)
def model_loaded():
    default_embedder(threads=1).warm_up()  # shared with tests/kb/test_kb_index.py when both run


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = evaluation.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def check_shape(report: dict) -> None:
    assert set(report) >= {"hybrid", "lexical", "dense"}
    for method in ("hybrid", "lexical", "dense"):
        metrics = report[method]
        assert METRICS <= set(metrics)
        for name in METRICS - {"no_answer_precision", "no_answer_recall"}:
            assert isinstance(metrics[name], float) and metrics[name] >= 0
        for name in ("recall@1", "recall@3", "recall@5", "mrr"):
            assert metrics[name] <= 1
        assert metrics["recall@1"] <= metrics["recall@3"] <= metrics["recall@5"]


def test_eval_json_on_a_small_generated_set(tmp_path, capsys):
    articles = write_jsonl(tmp_path / "articles.jsonl", [
        {"id": "returns", "title": "Returns", "body": "Send items back within 30 days for a full refund."},
        {"id": "shipping", "title": "Shipping", "body": "Parcels arrive in three to five working days."},
        {"id": "password", "title": "Password reset", "body": "Use the 'Forgot password' link on the sign-in page."},
    ])
    queries = write_jsonl(tmp_path / "queries.jsonl", [
        {"query": "can I get my money back?", "relevant": ["returns"]},
        {"query": "how long does delivery take", "relevant": ["shipping"]},
        {"query": "I forgot my password", "relevant": ["password"]},
        {"query": "what's the weather in Paris tomorrow", "relevant": []},
    ])
    code, out, _ = run(capsys, "--articles", str(articles), "--queries", str(queries), "--json")
    assert code == 0
    report = json.loads(out)
    check_shape(report)
    assert report["hybrid"]["recall@5"] == 1.0
    assert report["dense"]["no_answer_recall"] is not None

    code, out, _ = run(capsys, "--articles", str(articles), "--queries", str(queries))
    assert code == 0 and out.splitlines()[0].split()[:2] == ["method", "R@1"]
    assert [line.split()[0] for line in out.splitlines()[1:4]] == ["hybrid", "lexical", "dense"]

    # The plain baselines, scored on the same questions (no "no good answer": gated = ungated).
    code, out, _ = run(capsys, "--articles", str(articles), "--queries", str(queries), "--json", "--baselines")
    report = json.loads(out)
    for name in ("plain-dense", "plain-bm25"):
        assert report[name]["mrr"] == report[name]["mrr_ungated"] and report[name]["no_answer_recall"] is None
        assert report[name]["queries"] == 4 and report[name]["unanswerable"] == 1
    assert report["plain-dense"]["recall@1"] == 1.0  # three easy questions
    code, out, _ = run(capsys, "--articles", str(articles), "--queries", str(queries), "--baselines")
    assert [line.split()[0] for line in out.splitlines()[1:6]] == ["hybrid", "lexical", "dense", "plain-dense", "plain-bm25"]


def test_eval_json_on_a_sample_of_a_fixture_set(tmp_path, capsys):
    folder = build_datasets(tmp_path, sets=["natcs"])["natcs"]
    rows = [json.loads(line) for line in (folder / "QUERIES.jsonl").read_text().splitlines()]
    sample = random.Random(1).sample([r for r in rows if r["relevant"]], 25) + [r for r in rows if not r["relevant"]][:5]
    queries = write_jsonl(tmp_path / "sample.jsonl", sample)
    code, out, _ = run(capsys, "--articles", str(folder / "ARTICLES.jsonl"), "--queries", str(queries), "--json")
    assert code == 0
    report = json.loads(out)
    check_shape(report)
    assert report["hybrid"]["unanswerable"] == 5 and report["hybrid"]["queries"] == 30
    assert report["hybrid"]["recall@5"] > 0.8  # NatCS is easy for the model: a sanity bound, not a target


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"query": "where is my parcel", "relevant": ["shipping"]', "queries.jsonl:2: not valid JSON"),
        ('{"query": "where is my parcel", "relevant": "shipping"}', "queries.jsonl:2: 'relevant' must be a list"),
        ('{"query": "where is my parcel", "relevant": ["nope"]}', "queries.jsonl:2: relevant article 'nope' is not in the articles file"),
    ],
)
def test_eval_rejects_a_malformed_line_clearly(tmp_path, capsys, line, expected):
    articles = write_jsonl(tmp_path / "articles.jsonl", [{"id": "shipping", "title": "Shipping", "body": "Three to five days."}])
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "delivery time", "relevant": ["shipping"]}\n' + line + "\n")
    code, out, err = run(capsys, "--articles", str(articles), "--queries", str(queries), "--json")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_eval_rejects_a_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "--articles", str(tmp_path / "none.jsonl"), "--queries", str(tmp_path / "q.jsonl"))
    assert code == 2 and "none.jsonl" in err and len(err.strip().splitlines()) == 1


def test_calibration_is_fitted_on_the_best_ranked_candidates_only():
    """The confidence is fitted where the threshold decides (the top few hits): a relevant
    candidate ranked far down must not change the fit, and the confidence stays increasing in
    the fused score, so it never reorders the ranking."""
    import numpy as np

    from knowledge.calibration import QueryCandidates, fit_calibration
    from knowledge.fusion import candidate_features

    rng = np.random.default_rng(3)

    def query(answerable: bool, far_relevant: bool = False) -> QueryCandidates:
        articles = [f"a{i}" for i in range(20)]
        d = np.sort(rng.uniform(0.1, 0.5, 20))[::-1].copy()
        if answerable:
            d[0] += 0.2
        l = rng.uniform(0, 0.3, 20)
        relevant = frozenset({"a0"} if answerable else {"a19"} if far_relevant else set())
        return QueryCandidates(relevant, articles, candidate_features(d, l, articles))

    group = [query(i % 3 != 0) for i in range(60)]
    features = ("s", "s_gap", "s_margin")
    ranking = (("d", 1.0),)
    base = fit_calibration([group], ranking, features, top=3)
    # the same queries, but the unanswerable ones now have a relevant article ranked last
    moved = [q if q.relevant else QueryCandidates(frozenset({"a19"}), q.articles, q.features) for q in group]
    assert fit_calibration([moved], ranking, features, top=3) == base
    assert fit_calibration([moved], ranking, features, top=20) != fit_calibration([group], ranking, features, top=20)
    q = group[1]
    scores = base.scores(q.features)
    confidence = base.logits(q.features, scores, q.articles)
    assert list(np.argsort(-confidence, kind="stable")) == list(np.argsort(-scores, kind="stable"))
