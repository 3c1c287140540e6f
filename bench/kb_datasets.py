"""Knowledge-base evaluation sets from the fixtures (../shared/fixtures/faq/).

    python bench/kb_datasets.py OUTDIR [--seed 7]

Two shapes of knowledge base. The intent sets CLINC150, Banking77 and NatCS (insurance) give one
"article" per intent: a list of the ways customers ask it. The help-centre set (CovidFAQ) gives
what real help centres hold: a question-like title and a long answer of several sentences. For
each set it writes OUTDIR/<set>/ with
- ARTICLES.jsonl    one article per intent (the title from the intent name, the body a list of
                    some of the intent's utterances), or per help-centre answer (the title its
                    FAQ question, the body the answer);
- QUERIES.jsonl     the reported queries: other utterances, {"query", "relevant": [intent]}, and
                    unanswerable ones ("relevant": []);
- QUERIES-dev.jsonl development queries, disjoint from the reported ones (and from the article
                    bodies): what any weight or threshold is fitted on.

Unanswerable queries: CLINC150's out-of-scope utterances (oos_train for dev, oos_val reported).
Banking77 and NatCS have none, so a few whole intents get no article; half of those intents give
the dev's unanswerable queries, the other half the reported ones, so the reported "no answer"
cases are about topics no fitted threshold has seen.

CLINC150's reported queries are its val split; its dev queries come from train. CovidFAQ: the
67 distinct answers of its 68 FAQ entries are the articles (one answer has two FAQ questions; the
first is its title); its 1,387 labelled user questions, after merging repeats of the same text
(227 texts carry several labels, usually near-duplicate articles such as three on masks: all
count as relevant), are split in halves per article into dev and reported queries. It has no
unanswerable queries. Seeded and deterministic: the same seed writes the same files.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from pathlib import Path

FAQ = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "faq"
SETS = ("clinc150", "banking77", "natcs", "covidfaq")
# The shape of each set's articles: "intents" (lists of utterances) or "helpcentre" (title + answer).
SHAPES = {"clinc150": "intents", "banking77": "intents", "natcs": "intents", "covidfaq": "helpcentre"}


def title_of(intent: str) -> str:
    """card_arrival -> "Card arrival", GetQuote -> "Get quote"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", intent).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def article(intent: str, utterances: list[str]) -> dict:
    body = "\n".join(f"- {u.strip()}" for u in utterances)
    return {"id": intent, "title": title_of(intent), "body": body}


def _grouped(pairs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text, intent in pairs:
        text = text.strip()
        if text and text not in out.setdefault(intent, []):
            out[intent].append(text)
    return out


def clinc150(rng: random.Random, *, body: int = 10, dev_per_intent: int = 10) -> tuple[list, list, list]:
    data = json.loads((FAQ / "clinc150-train-val.json").read_text())
    train = _grouped(data["train"])
    articles, dev = [], []
    for intent in sorted(train):
        utterances = train[intent][:]
        rng.shuffle(utterances)
        articles.append(article(intent, utterances[:body]))
        dev += [{"query": u, "relevant": [intent]} for u in utterances[body : body + dev_per_intent]]
    dev += [{"query": text, "relevant": []} for text, _ in data["oos_train"]]
    reported = [{"query": text, "relevant": [intent]} for text, intent in data["val"]]
    reported += [{"query": text, "relevant": []} for text, _ in data["oos_val"]]
    return articles, dev, reported


def _held_out_split(
    grouped: dict[str, list[str]], rng: random.Random, *, held_out: int, body: int, dev_per_intent: int, reported_per_intent: int
) -> tuple[list, list, list]:
    intents = sorted(grouped)
    without_article = sorted(rng.sample(intents, held_out))
    dev_unanswerable = set(without_article[::2])
    articles, dev, reported = [], [], []
    for intent in intents:
        utterances = grouped[intent][:]
        rng.shuffle(utterances)
        if intent in without_article:
            queries = [{"query": u, "relevant": []} for u in utterances[:reported_per_intent]]
            (dev if intent in dev_unanswerable else reported).extend(queries)
            continue
        articles.append(article(intent, utterances[:body]))
        rest = utterances[body:]
        dev += [{"query": u, "relevant": [intent]} for u in rest[:dev_per_intent]]
        reported += [{"query": u, "relevant": [intent]} for u in rest[dev_per_intent : dev_per_intent + reported_per_intent]]
    return articles, dev, reported


def banking77(rng: random.Random) -> tuple[list, list, list]:
    with open(FAQ / "banking77-train.csv", newline="", encoding="utf-8") as fh:
        grouped = _grouped((row["text"], row["category"]) for row in csv.DictReader(fh))
    return _held_out_split(grouped, rng, held_out=10, body=10, dev_per_intent=10, reported_per_intent=20)


def natcs(rng: random.Random) -> tuple[list, list, list]:
    rows = [json.loads(line) for line in (FAQ / "natcs-insurance-development.jsonl").read_text().splitlines() if line.strip()]
    grouped = _grouped((row["utterance"], row["intent"]) for row in rows)
    return _held_out_split(grouped, rng, held_out=4, body=8, dev_per_intent=6, reported_per_intent=16)


def covidfaq(rng: random.Random) -> tuple[list, list, list]:
    rows = json.loads((FAQ / "covidfaq-query-answer-pairs.json").read_text())
    article_of: dict[str, str] = {}  # answer text -> article id
    articles = []
    for row in rows:
        if row["query_type"] == "faq" and row["answer"] not in article_of:
            article_of[row["answer"]] = f"faq-{row['id']}"
            articles.append({"id": f"faq-{row['id']}", "title": " ".join(row["question"].split()), "body": row["answer"].strip()})
    relevant: dict[str, set[str]] = {}  # one query per text (case and spaces aside), all its labels
    text_of: dict[str, str] = {}
    for row in rows:
        if row["query_type"] != "user_query":
            continue
        text = " ".join(row["question"].split())
        key = text.casefold()
        text_of.setdefault(key, text)
        relevant.setdefault(key, set()).add(article_of[row["answer"]])
    by_article: dict[str, list[str]] = {}
    for key in sorted(relevant):
        by_article.setdefault(min(relevant[key]), []).append(key)
    dev, reported = [], []
    for article_id in sorted(by_article):
        keys = by_article[article_id]
        rng.shuffle(keys)
        first = rng.randrange(2)  # an article with an odd count gives its extra query to either side
        for i, key in enumerate(keys):
            query = {"query": text_of[key], "relevant": sorted(relevant[key])}
            (dev if (i + first) % 2 == 0 else reported).append(query)
    return articles, dev, reported


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def build(outdir: Path, *, seed: int = 7, sets=SETS) -> dict[str, Path]:
    """Write the sets; returns {set name: its folder}."""
    makers = {"clinc150": clinc150, "banking77": banking77, "natcs": natcs, "covidfaq": covidfaq}
    out = {}
    for name in sets:
        articles, dev, reported = makers[name](random.Random(f"{seed}:{name}"))
        folder = outdir / name
        folder.mkdir(parents=True, exist_ok=True)
        write_jsonl(folder / "ARTICLES.jsonl", articles)
        write_jsonl(folder / "QUERIES.jsonl", reported)
        write_jsonl(folder / "QUERIES-dev.jsonl", dev)
        out[name] = folder
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    args = parser.parse_args(argv)
    for name, folder in build(args.outdir, seed=args.seed, sets=args.sets).items():
        counts = {f.name: sum(1 for _ in f.open()) for f in sorted(folder.glob("*.jsonl"))}
        unanswerable = sum(1 for line in (folder / "QUERIES.jsonl").open() if '"relevant": []' in line)
        print(f"{name}: {counts} ({unanswerable} reported queries unanswerable) -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
