"""servicehub intents eval: how well the detector names the intent of labelled queries.

QUERIES.jsonl holds one {"text": str, "intent": one of INTENTS} per line. The report gives the
accuracy and, per intent, precision, recall and support; with --threshold, a prediction below that
confidence counts as "other" (what the hub does before answering automatically).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

# the same names as knowledge.intents.INTENTS (a test keeps them equal); not imported from there so
# that building the servicehub command line does not load numpy and the classifier's modules
INTENTS = ("order_status", "stock", "return_refund", "complaint", "other")


class BadQueries(ValueError):
    """The queries file is missing, unreadable or not in the expected shape."""


@dataclass(frozen=True)
class Query:
    text: str
    intent: str


def read_queries(path: Path) -> list[Query]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadQueries(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    queries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise BadQueries(f"{path} line {n}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise BadQueries(f'{path} line {n}: expected an object with a string "text"')
        if item.get("intent") not in INTENTS:
            raise BadQueries(f'{path} line {n}: "intent" must be one of {", ".join(INTENTS)}, not {item.get("intent")!r}')
        queries.append(Query(item["text"], item["intent"]))
    if not queries:
        raise BadQueries(f"{path}: no queries")
    return queries


def score(gold: list[str], predicted: list[str]) -> dict:
    """{"accuracy", "per_intent": {name: {"precision", "recall", "support"}}}; precision is None
    where the intent was never predicted, recall None where it never occurs."""
    per_intent = {}
    for name in INTENTS:
        tp = sum(1 for g, p in zip(gold, predicted) if g == p == name)
        n_pred = sum(1 for p in predicted if p == name)
        support = sum(1 for g in gold if g == name)
        per_intent[name] = {
            "precision": round(tp / n_pred, 4) if n_pred else None,
            "recall": round(tp / support, 4) if support else None,
            "support": support,
        }
    accuracy = sum(1 for g, p in zip(gold, predicted) if g == p) / len(gold)
    return {"accuracy": round(accuracy, 4), "per_intent": per_intent}


def evaluate(queries: list[Query], detector=None, *, threshold: float = 0.0) -> tuple[dict, list[tuple[Query, str, float]]]:
    from knowledge.intents import IntentDetector

    detector = detector or IntentDetector()
    predicted, errors = [], []
    for q in queries:
        intent = detector.detect(q.text)
        name = intent.name if intent.confidence >= threshold else "other"
        predicted.append(name)
        if name != q.intent:
            errors.append((q, name, intent.confidence))
    return score([q.intent for q in queries], predicted), errors


def add_eval_arguments(parser) -> None:
    parser.add_argument("--queries", required=True, type=Path, help="JSONL file, one {text, intent} per line")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--threshold", type=float, default=0.0,
                        help="confidence below which a prediction counts as 'other' (default 0: the top intent)")
    parser.add_argument("--errors", type=int, default=0, metavar="N", help="also list N misclassified queries")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def run_eval(args) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        print("error: --threshold must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        queries = read_queries(args.queries)
    except BadQueries as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report, errors = evaluate(queries, threshold=args.threshold)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{len(queries)} queries from {args.queries}" + (f", threshold {args.threshold}" if args.threshold else ""))
    print(f"{'intent':<15}{'precision':>10}{'recall':>10}{'support':>10}")
    for name, row in report["per_intent"].items():
        print(f"{name:<15}{_fmt(row['precision']):>10}{_fmt(row['recall']):>10}{row['support']:>10}")
    print(f"accuracy {report['accuracy']:.3f}")
    for q, name, confidence in errors[: args.errors]:
        print(f"  {q.intent} -> {name} ({confidence:.2f}): {q.text}")
    return 0
