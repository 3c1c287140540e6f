"""How well the knowledge base suggests: `servicehub kb eval --articles A.jsonl --queries Q.jsonl`.

The command builds a fresh, temporary index of the articles (never the hub's own), runs every
query through each method (hybrid, lexical, dense) and prints the metrics, as a table or, with
--json, as one JSON object keyed by method.

Input, one JSON object per line:
- ARTICLES.jsonl: {"id": str, "title": str, "body": str} (markdown body; split into passages as
  the hub splits its articles);
- QUERIES.jsonl: {"query": str, "relevant": [article ids]}; "relevant": [] marks a query the
  knowledge base cannot answer, for which the right output is "no good answer".

Metrics, per method (k = 10 hits per query, at most one per article):
- recall@1, recall@3, recall@5: over the answerable queries, the share whose top 1 / 3 / 5 hits
  hold at least one relevant article. A result the method declares answer-less ("no good
  answer") counts as a miss, whatever it ranked.
- mrr: over the answerable queries, the mean of 1 / rank of the first relevant hit in the top
  10, 0 when there is none or the result is answer-less.
- recall@3_ungated, mrr_ungated: the same without the "no good answer" decision (every ranking
  counts): what the decision costs is the difference.
- no_answer_precision: of the queries the method declared unanswerable, the share that are
  (null when it declared none). no_answer_recall: of the unanswerable queries, the share it
  declared so (null when the set has none).
- p50_ms, p95_ms: search latency per query (nearest-rank percentiles), encoding the query
  included; the index is warm (the model is loaded and one search has run before timing).
- queries, unanswerable: how many queries, and how many of them are unanswerable.

With --baselines, two plain rankers are scored on the same questions, for comparison: plain-dense,
the model over each article's "title + body" as one text (cut at the model's window, 256 word
pieces), cosine; plain-bm25, BM25 (bm25s: its tokenizer, English stop words and stemmer, k1 1.5,
b 0.75) over the same text. They have no "no good answer" decision, so their gated figures are
their ungated ones.

Exit codes: 0 done, 2 bad input (a one-line message on stderr names the file and line).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.fusion import METHODS

RANK_DEPTH = 10


class EvalInputError(ValueError):
    """An input file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Query:
    text: str
    relevant: frozenset[str]


def read_articles(path: Path) -> list[dict]:
    articles = []
    seen: set[str] = set()
    for line_no, obj in _jsonl(path):
        for key in ("id", "title", "body"):
            if not isinstance(obj.get(key), str):
                raise EvalInputError(f"{path}:{line_no}: an article needs a string {key!r}")
        if not obj["id"].strip():
            raise EvalInputError(f"{path}:{line_no}: empty article id")
        if obj["id"] in seen:
            raise EvalInputError(f"{path}:{line_no}: article id {obj['id']!r} appears twice")
        seen.add(obj["id"])
        articles.append(obj)
    if not articles:
        raise EvalInputError(f"{path}: no articles")
    return articles


def read_queries(path: Path, article_ids: set[str]) -> list[Query]:
    queries = []
    for line_no, obj in _jsonl(path):
        text, relevant = obj.get("query"), obj.get("relevant")
        if not isinstance(text, str) or not text.strip():
            raise EvalInputError(f"{path}:{line_no}: a query needs a non-empty string 'query'")
        if not isinstance(relevant, list) or not all(isinstance(r, str) for r in relevant):
            raise EvalInputError(f"{path}:{line_no}: 'relevant' must be a list of article ids ([] = unanswerable)")
        unknown = [r for r in relevant if r not in article_ids]
        if unknown:
            raise EvalInputError(f"{path}:{line_no}: relevant article {unknown[0]!r} is not in the articles file")
        queries.append(Query(text, frozenset(relevant)))
    if not queries:
        raise EvalInputError(f"{path}: no queries")
    return queries


def _jsonl(path: Path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EvalInputError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text") from exc
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise EvalInputError(f"{path}:{line_no}: expected a JSON object")
        yield line_no, obj


def build_index(articles: Sequence[dict], embedder=None, config=None):
    """A fresh in-memory index of the articles, split into passages as the hub splits them."""
    from knowledge.embedder import default_embedder
    from knowledge.index import HybridIndex, Passage
    from knowledge.passages import split_article

    embedder = embedder or default_embedder()
    index = HybridIndex(embedder, config)
    passages = [
        Passage(f"{a['id']}:{position}", a["id"], a["title"], piece.heading, piece.text)
        for a in articles
        for position, piece in enumerate(split_article(a["title"], a["body"]) or [_title_only(a["title"])])
    ]
    index.upsert(passages)
    index.compact()
    return index


def _title_only(title: str):
    from knowledge.passages import PassageText

    return PassageText("", title)


def evaluate(index, queries: Sequence[Query], methods: Sequence[str] = METHODS) -> dict[str, dict]:
    """The metrics (see the module docstring) of each method over `queries`."""
    index.search(queries[0].text, RANK_DEPTH)  # warm: the first search pays one-off costs
    return {method: _evaluate_method(index, queries, method) for method in methods}


def _evaluate_method(index, queries: Sequence[Query], method: str) -> dict:
    answerable = [q for q in queries if q.relevant]
    unanswerable = len(queries) - len(answerable)
    hits_at = {1: 0, 3: 0, 5: 0}
    hits3_ungated = 0
    rr = rr_ungated = 0.0
    declared_none = declared_none_right = 0
    latencies = []
    for q in queries:
        started = time.perf_counter()
        result = index.search(q.text, RANK_DEPTH, method=method)
        latencies.append((time.perf_counter() - started) * 1000)
        if not result.answerable:
            declared_none += 1
            declared_none_right += not q.relevant
        if not q.relevant:
            continue
        ranks = [i for i, h in enumerate(result.hits, 1) if h.article_id in q.relevant]
        rank = ranks[0] if ranks else None
        if rank is not None:
            rr_ungated += 1 / rank
            hits3_ungated += rank <= 3
            if result.answerable:
                rr += 1 / rank
                for k in hits_at:
                    hits_at[k] += rank <= k
    n = max(1, len(answerable))
    return {
        "recall@1": hits_at[1] / n,
        "recall@3": hits_at[3] / n,
        "recall@5": hits_at[5] / n,
        "mrr": rr / n,
        "recall@3_ungated": hits3_ungated / n,
        "mrr_ungated": rr_ungated / n,
        "no_answer_precision": declared_none_right / declared_none if declared_none else None,
        "no_answer_recall": declared_none_right / unanswerable if unanswerable else None,
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "queries": len(queries),
        "unanswerable": unanswerable,
    }


def baselines(articles: Sequence[dict], queries: Sequence[Query], embedder=None, query_vectors=None) -> dict[str, dict]:
    """The plain rankers of --baselines (see the module docstring), with the same metrics."""
    import bm25s
    import numpy as np
    import Stemmer

    from knowledge.embedder import default_embedder

    embedder = embedder or default_embedder()
    texts = [f"{a['title']}\n{a['body']}" for a in articles]
    ids = [a["id"] for a in articles]
    if query_vectors is None:
        query_vectors = embedder.encode([q.text for q in queries])
    started = time.perf_counter()
    dense = query_vectors @ embedder.encode(texts).T
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    orders: dict[str, list[list[str]]] = {"plain-dense": [], "plain-bm25": []}
    for i, q in enumerate(queries):
        orders["plain-dense"].append([ids[j] for j in np.argsort(-dense[i], kind="stable")[:RANK_DEPTH]])
        tokens = bm25s.tokenize([q.text], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[0]
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(ids))
        orders["plain-bm25"].append([ids[j] for j in np.argsort(-scores, kind="stable")[:RANK_DEPTH] if scores[j] > 0])
    elapsed_ms = (time.perf_counter() - started) * 1000 / max(1, len(queries))
    return {name: _ranked_metrics(order, queries, elapsed_ms) for name, order in orders.items()}


def _ranked_metrics(orders: list[list[str]], queries: Sequence[Query], ms: float) -> dict:
    answerable = [(o, q) for o, q in zip(orders, queries) if q.relevant]
    n = max(1, len(answerable))
    ranks = [next((i for i, a in enumerate(o, 1) if a in q.relevant), None) for o, q in answerable]
    rr = sum(1 / r for r in ranks if r) / n
    at = {k: sum(1 for r in ranks if r and r <= k) / n for k in (1, 3, 5)}
    return {
        "recall@1": at[1], "recall@3": at[3], "recall@5": at[5], "mrr": rr, "recall@3_ungated": at[3], "mrr_ungated": rr,
        "no_answer_precision": None, "no_answer_recall": None, "p50_ms": ms, "p95_ms": ms,
        "queries": len(queries), "unanswerable": len(queries) - len(answerable),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1] if ordered else float("nan")


def format_table(results: dict[str, dict]) -> str:
    columns = (
        ("recall@1", "R@1"), ("recall@3", "R@3"), ("recall@5", "R@5"), ("mrr", "MRR"),
        ("recall@3_ungated", "R@3 no gate"), ("mrr_ungated", "MRR no gate"), ("no_answer_precision", "no-ans P"), ("no_answer_recall", "no-ans R"),
        ("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"),
    )
    widths = [max(len(label), 6) + 2 for _, label in columns]
    name_width = max(9, max(len(m) for m in results) + 1)
    lines = ["method".ljust(name_width) + "".join(label.rjust(w) for (_, label), w in zip(columns, widths))]
    for method, metrics in results.items():
        cells = []
        for (key, _), width in zip(columns, widths):
            value = metrics[key]
            text = "-" if value is None else f"{value:.1f}" if key.endswith("_ms") else f"{value:.3f}"
            cells.append(text.rjust(width))
        lines.append(method.ljust(name_width) + "".join(cells))
    any_metrics = next(iter(results.values()))
    lines.append(f"{any_metrics['queries']} queries, {any_metrics['unanswerable']} of them unanswerable; "
                 "R@k and MRR count an answer-less result as a miss (see --help)")
    if any(name.startswith("plain-") for name in results):
        lines.append("plain-*: baselines over each article's title + body as one text, no threshold; p50/p95 the mean per query")
    return "\n".join(lines)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--articles", type=Path, required=True, help="ARTICLES.jsonl: {id, title, body} per line")
    parser.add_argument("--queries", type=Path, required=True, help='QUERIES.jsonl: {query, relevant: [article ids]} per line ("relevant": [] = unanswerable)')
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by method")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to evaluate (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the model (default 1: one query at a time needs no more)")
    parser.add_argument("--baselines", action="store_true", help='also score plain dense and BM25 rankers over "title + body" (see --help)')


def run_eval(args) -> int:
    """Run the evaluation the parsed arguments describe; prints the result, returns the exit code."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        articles = read_articles(args.articles)
        queries = read_queries(args.queries, {a["id"] for a in articles})
    except EvalInputError as exc:
        print(f"servicehub kb eval: {exc}", file=sys.stderr)
        return 2
    from knowledge.embedder import ModelUnavailable, default_embedder

    try:
        index = build_index(articles, default_embedder(threads=getattr(args, "threads", 1)))
    except ModelUnavailable as exc:
        print(f"servicehub kb eval: {exc}", file=sys.stderr)
        return 1
    results = evaluate(index, queries, getattr(args, "methods", None) or METHODS)
    if getattr(args, "baselines", False):
        results.update(baselines(articles, queries, index.embedder))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge.evaluation", description="Evaluate knowledge-base suggestions.", epilog="Metrics: see the module docstring of knowledge/evaluation.py.")
    add_eval_arguments(parser)
    return run_eval(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
