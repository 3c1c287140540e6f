"""Write the intent evaluation sets, and (with --training) derive the committed training files.

    .venv/bin/python bench/intents_datasets.py OUTDIR            # eval QUERIES.jsonl files
    .venv/bin/python bench/intents_datasets.py --training        # knowledge/data/intents-train-*.jsonl

Eval sets (never trained on): CLINC150 `val` + `oos_val` with order_status kept and every other
intent mapped to "other"; our held-out English and Chinese files. Training files come from CLINC150
`train` + `oos_train`, Banking77 and NatCS insurance (refund intents -> return_refund, the rest ->
other); licences in knowledge/data/SOURCES.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "knowledge" / "data"
FIXTURES = REPO.parent / "shared" / "fixtures"

BANKING_REFUND = {"request_refund": "return_refund", "Refund_not_showing_up": "return_refund"}
BANKING_OTHER_PER_INTENT = 25   # banking is far from a shop: a sample of each intent is enough "other"


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)} queries")


def clinc_rows(fixtures: Path, splits: tuple[str, ...]) -> list[dict]:
    data = json.loads((fixtures / "faq" / "clinc150-train-val.json").read_text(encoding="utf-8"))
    rows = []
    for split in splits:
        for text, intent in data[split]:
            rows.append({"text": text, "intent": "order_status" if intent == "order_status" else "other",
                         "source": f"clinc150:{intent}"})
    return rows


def write_eval_sets(outdir: Path, fixtures: Path) -> None:
    _write(outdir / "clinc150-val.jsonl", [{"text": r["text"], "intent": r["intent"]} for r in clinc_rows(fixtures, ("val", "oos_val"))])
    for lang in ("en", "zh"):
        rows = [json.loads(line) for line in (DATA / f"intents-heldout-{lang}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        _write(outdir / f"heldout-{lang}.jsonl", rows)


def write_training(fixtures: Path) -> None:
    _write(DATA / "intents-train-clinc150.jsonl", clinc_rows(fixtures, ("train", "oos_train")))
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (fixtures / "faq" / "banking77-train.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_intent[row["category"]].append(row["text"].strip())
    rng = random.Random(77)
    rows = []
    for intent in sorted(by_intent):
        texts = by_intent[intent]
        if intent not in BANKING_REFUND:
            texts = rng.sample(texts, min(BANKING_OTHER_PER_INTENT, len(texts)))
        rows += [{"text": t, "intent": BANKING_REFUND.get(intent, "other"), "source": f"banking77:{intent}"} for t in texts]
    _write(DATA / "intents-train-banking77.jsonl", rows)
    rows = []
    for line in (fixtures / "faq" / "natcs-insurance-development.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        rows.append({"text": item["utterance"], "intent": "other", "source": f"natcs-insurance:{item['intent']}"})
    _write(DATA / "intents-train-natcs.jsonl", rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", type=Path, help="where to write the eval QUERIES.jsonl files")
    parser.add_argument("--training", action="store_true", help="(re)derive knowledge/data/intents-train-*.jsonl")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args(argv)
    if not args.outdir and not args.training:
        parser.error("give OUTDIR and/or --training")
    if args.training:
        write_training(args.fixtures)
    if args.outdir:
        write_eval_sets(args.outdir, args.fixtures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
