"""Intent detection figures: detect() latency, model build/load time, and (with --tune) the choice
of the classifier's parameters, temperature and auto-answer threshold on the development split.

    .venv/bin/python bench/intents.py [--queries DIR]   # p50/p95 of detect(), build and load times
    .venv/bin/python bench/intents.py --tune            # cross-validated choice on the training data only

The development split is the training data itself, by 5-fold cross-validation: the eval sets
(CLINC150 val, the held-out files) are never looked at here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
# the repository first, this folder last: bench/email.py must never stand in for the stdlib's email
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))

import numpy as np  # noqa: E402
from _bench_common import peak_rss_mb, percentile  # noqa: E402

from knowledge import intent_model as im  # noqa: E402
from knowledge.entities import OrderReferences  # noqa: E402
from knowledge.intents import DEFAULT_ORDER_PATTERNS, INTENTS, IntentDetector, _mask  # noqa: E402

FOLDS = 5
TARGET_PRECISION = 0.95


def _catalogue(n_models: int = 300):
    """A shop-sized catalogue: models in several colours and sizes, with Chinese aliases."""
    from adapters.base import Product

    colours = [("Blue", "蓝色"), ("Black", "黑色"), ("White", "白色"), ("Red", "红色")]
    words = ["Desk Lamp", "Kettle", "Headphones", "Backpack", "Office Chair", "Rain Jacket", "Phone", "Mug"]
    products = []
    for i in range(n_models):
        model = f"X{100 + i}"
        name = f"{model} {words[i % len(words)]}"
        for colour, _zh in colours[: 1 + i % 4]:
            products.append(Product(f"{model}-{colour[:3].upper()}", name, colour, (model,)))
    products.append(Product("AUR-1", "Aurora Desk Lamp", None, ("Aurora", "极光台灯")))
    return products


def _queries(directory: Path | None) -> list[str]:
    if directory:
        texts = []
        for path in sorted(directory.glob("*.jsonl")):
            texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return texts
    return [t for t, _ in im.read_examples(sorted(im.DATA_DIR.glob("intents-heldout-*.jsonl")))] * 4


def bench_latency(args) -> None:
    refs = OrderReferences(DEFAULT_ORDER_PATTERNS)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        im.build_or_load(lambda t: _mask(t, refs), cache_dir=Path(tmp))
        build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        model = im.build_or_load(lambda t: _mask(t, refs), cache_dir=Path(tmp))
        load = time.perf_counter() - t0
    catalogue = _catalogue()
    t0 = time.perf_counter()
    detector = IntentDetector(catalogue=catalogue, model=model)
    index = time.perf_counter() - t0
    texts = _queries(args.queries)
    for text in texts[:200]:          # warm the spelling cache as a running hub would have
        detector.detect(text)
    print(f"model: build (train + cache) {build:.1f} s wall / {build_cpu:.1f} s CPU, load from cache {load:.2f} s, "
          f"{len(model.vocabulary):,} features; catalogue of {len(catalogue)} products indexed in {index * 1000:.0f} ms")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall-clock tails include other processes; "
          f"CPU time is the cost of detect() itself")
    for label, det in (("detect(), with catalogue", detector), ("detect(), no catalogue", IntentDetector(model=model))):
        wall, cpu = [], []
        for text in texts:
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            det.detect(text)
            cpu.append((time.thread_time_ns() - c0) / 1e6)
            wall.append((time.perf_counter_ns() - t0) / 1e6)
        for kind, values in (("CPU ", cpu), ("wall", wall)):
            print(f"{label:<26} {kind} n={len(values):>5}  p50 {percentile(values, 50):.3f} ms  p95 {percentile(values, 95):.3f} ms  "
                  f"p99 {percentile(values, 99):.3f} ms  {len(values) / (sum(values) / 1000):,.0f} msg/s on one core")
    print(f"peak RSS {peak_rss_mb():.0f} MiB")


def _precision_recall(gold: list[str], pred: list[str], name: str) -> tuple[float, float, int]:
    tp = sum(1 for g, p in zip(gold, pred) if g == p == name)
    n_pred = sum(1 for p in pred if p == name)
    support = sum(1 for g in gold if g == name)
    return (tp / n_pred if n_pred else float("nan")), (tp / support if support else float("nan")), support


def tune(args) -> None:
    refs = OrderReferences(DEFAULT_ORDER_PATTERNS)
    mask = lambda t: _mask(t, refs)  # noqa: E731
    examples = im.read_examples(im.training_files())
    fold = np.array([zlib.crc32(t.encode()) % FOLDS for t, _ in examples])
    gold = [label for _, label in examples]
    best = None
    for c in args.C:
        for other_weight in args.other_weight:
            params = im.Params(C=c, other_weight=other_weight)
            logits = np.zeros((len(examples), len(INTENTS)))
            t0 = time.perf_counter()
            for k in range(FOLDS):
                train = [e for e, f in zip(examples, fold) if f != k]
                model = im.IntentModel.train(train, params, mask)
                order = [model.classes.index(name) for name in INTENTS]
                for i in np.flatnonzero(fold == k):
                    logits[i] = model.logits(mask(examples[i][0]))[order]
            pred = [INTENTS[i] for i in logits.argmax(1)]
            cells = []
            worst = 1.0
            for name in INTENTS[:4]:
                p, r, n = _precision_recall(gold, pred, name)
                cells.append(f"{name} P {p:.3f} R {r:.3f} (n={n})")
                if name in ("order_status", "stock"):
                    worst = min(worst, p, r)
            print(f"C={c:<5} other_weight={other_weight:<4} {' | '.join(cells)}  [{time.perf_counter() - t0:.0f} s]", flush=True)
            if best is None or worst > best[0]:
                best = (worst, params, logits)
    _, params, logits = best
    labels = np.array([INTENTS.index(g) for g in gold])
    temperature = im.fit_temperature(logits, labels)
    z = logits / temperature
    prob = np.exp(z - z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    conf, pred = prob.max(1), prob.argmax(1)
    print(f"chosen C={params.C} other_weight={params.other_weight}; temperature {temperature:.3f} "
          f"(NLL {im.softmax_nll(logits, labels, 1.0):.4f} -> {im.softmax_nll(logits, labels, temperature):.4f}); "
          f"expected calibration error {_ece(conf, pred == labels):.4f}")
    print("confidence  " + "  ".join(f"{n[:12]:>12} P/R" for n in INTENTS[:4]))
    threshold = None
    for t in [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]:
        row, ok = [], True
        for k, name in enumerate(INTENTS[:4]):
            chosen = (pred == k) & (conf >= t)
            p = (labels[chosen] == k).mean() if chosen.any() else float("nan")
            r = (chosen & (labels == k)).sum() / (labels == k).sum()
            row.append(f"{p:.3f}/{r:.3f}")
            if name in ("order_status", "stock") and not p >= TARGET_PRECISION:
                ok = False
        if ok and threshold is None:
            threshold = t
        print(f"  >= {t:<5}   " + "  ".join(f"{c:>16}" for c in row))
    print(f"lowest threshold with order_status and stock precision >= {TARGET_PRECISION}: {threshold}")
    if args.write:
        im.PARAMS_FILE.write_text(json.dumps({
            "C": params.C, "other_weight": params.other_weight, "temperature": round(temperature, 4),
            "min_df": params.min_df, "auto_answer_threshold": threshold,
            "note": "chosen by bench/intents.py --tune (5-fold cross-validation on the training files)",
        }, indent=2) + "\n", encoding="utf-8")
        print(f"written to {im.PARAMS_FILE}")


def _ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=Path, help="a folder of QUERIES.jsonl (bench/intents_datasets.py); default: the held-out files x4")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--C", type=float, nargs="+", default=[0.5, 1.0, 3.0])
    parser.add_argument("--other-weight", type=float, nargs="+", default=[0.3, 0.5, 1.0])
    parser.add_argument("--write", action="store_true", help="with --tune: write knowledge/data/intents-model.json")
    args = parser.parse_args(argv)
    if args.tune:
        tune(args)
    else:
        bench_latency(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
