"""bench/kb_quality.py: retrieval quality over several splits, with the real model."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench import kb_quality
from knowledge.fusion import METHODS


def test_interval_is_the_mean_and_a_student_t_interval():
    mean, low, high = kb_quality.interval([0.01, 0.03])
    # two values: mean 0.02, sample sd 0.01414, t(1) = 12.706, half width 12.706 * 0.01414 / sqrt(2)
    assert mean == pytest.approx(0.02)
    assert (high - mean) == pytest.approx(0.12706, rel=1e-4) and (mean - low) == pytest.approx(0.12706, rel=1e-4)
    assert kb_quality.interval([0.5]) == (0.5, 0.5, 0.5)


def test_two_splits_of_natcs_are_fitted_and_summarised(capsys):
    assert kb_quality.main(["--seeds", "7", "1", "--sets", "natcs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [7, 1]
    runs = [out["per_seed"][seed]["natcs"] for seed in ("7", "1")]
    for run in runs:
        assert set(run) == set(METHODS)
        assert all(0 <= run[m]["mrr"] <= run[m]["mrr_ungated"] <= 1 for m in METHODS)
    # the two splits are different draws: their figures differ
    assert runs[0]["dense"]["mrr_ungated"] != runs[1]["dense"]["mrr_ungated"]
    summary = out["summary"]["natcs"]
    for key in ("mrr", "mrr_ungated"):
        entry = summary[key]
        diffs = [r["hybrid"][key] - max(r["dense"][key], r["lexical"][key]) for r in runs]
        assert entry["hybrid_minus_best"] == pytest.approx(sum(diffs) / 2)
        assert entry["wins"] + entry["ties"] + entry["losses"] == 2
        low, high = entry["interval95"]
        assert low <= entry["hybrid_minus_best"] <= high
    assert 0 <= summary["max_recall3_cost"] <= 1
