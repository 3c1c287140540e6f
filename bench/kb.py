"""Knowledge-base figures: indexing throughput, suggestion (search) latency at 1,000 / 10,000 /
100,000 passages, the cost of one model forward pass, memory, and the exact-vs-approximate index
choice.

    .venv/bin/python bench/kb.py                      # sizes 1000 10000 100000
    .venv/bin/python bench/kb.py --sizes 1000 10000   # any sizes
    .venv/bin/python bench/kb.py --quick              # 1000 and 10000 passages, fewer queries, no ANN table

Passages are synthesised from the fixture utterances (CLINC150, Banking77, NatCS): a title, three
to six customer questions and, in one passage of five, a part number; three passages an article.
Each passage has three vectors (knowledge/index.py: sentence mean, whole passage, title), stored
as float16. Encoding costs minutes per 10,000 passages on two cores, so only the first `--encode`
passages (default 2,000) are encoded for real; larger knowledge bases reuse those vectors mixed
with a small random perturbation, which the output says (every passage of an article keeps one
title vector, as real ones do). The lexical index always holds the real text.

Latency is of `HybridIndex.search(query, k=5)` (hybrid, as the hub suggests), warm, one query at a
time, queries from CLINC150 val; it includes encoding the query, whose own cost (the floor) is
measured in the same run. It is measured again at 10,000 passages (or the largest size below)
with a full memory of agents' verdicts (knowledge/feedback.py: 20,000 remembered questions, the
hub's capacity). Memory is the process's resident set with the model loaded and the largest index
built (after the build's temporary arrays are freed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
# the repository first, this folder last: bench/email.py must never stand in for the stdlib's email
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))
sys.path.append(str(BENCH))

import numpy as np
from _bench_common import loadavg, percentile, proc_status_mb

from knowledge.embedder import Embedder
from knowledge.feedback import NOT_HELPFUL, USED, FeedbackMemory, Judgement
from knowledge.index import HybridIndex, IndexConfig, Passage, encode_passages

FAQ = BENCH.parent.parent / "shared" / "fixtures" / "faq"


def utterances() -> tuple[list[str], list[str], list[str]]:
    """(texts for passages, intent names for titles, held-out queries)."""
    import csv

    clinc = json.loads((FAQ / "clinc150-train-val.json").read_text())
    texts = [t for t, _ in clinc["train"]]
    titles = sorted({i for _, i in clinc["train"]})
    with open(FAQ / "banking77-train.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            titles.append(row["category"])
    for line in (FAQ / "natcs-insurance-development.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["utterance"])
            titles.append(row["intent"])
    queries = [t for t, _ in clinc["val"]]
    return texts, sorted(set(titles)), queries


def synthesise(n: int, texts: list[str], titles: list[str], rng: random.Random) -> list[Passage]:
    passages = []
    for i in range(n):
        article = i // 3
        title = titles[article % len(titles)].replace("_", " ").capitalize() + f" ({article})"
        body = "\n".join(f"- {t}" for t in rng.sample(texts, rng.randint(3, 6)))
        if i % 5 == 0:
            body += f"\nPart number: SKU-{rng.randint(1000, 99999)}-{rng.choice('ABCDEFGHJK')}"
        passages.append(Passage(f"a{article}:{i % 3}", f"a{article}", title, "", body))
    return passages


def perturbed(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n passages' vectors (shape (n, views, dimension)) made from the encoded ones: a random mix
    of two of them plus a little noise, normalised. They lie where real passage vectors lie, and
    (unlike near-copies of a few thousand vectors, which no graph index can tell apart) they are
    distinct. The three passages of an article share one title vector, as real ones do."""
    out = np.empty((n, *base.shape[1:]), dtype=np.float16)
    for start in range(0, n, 9_999):  # in pieces (a multiple of 3: whole articles), float16 out: the bench's own memory
        m = min(9_999, n - start)
        first = base[rng.integers(0, len(base), m)].astype(np.float32)
        second = base[rng.integers(0, len(base), m)].astype(np.float32)
        share = rng.uniform(0.5, 1.0, (m, 1, 1)).astype(np.float32)
        piece = share * first + (1 - share) * second
        piece += rng.normal(0, 0.05 / np.sqrt(base.shape[2]), piece.shape).astype(np.float32)
        piece /= np.linalg.norm(piece, axis=2, keepdims=True)
        piece[:, 2] = np.repeat(piece[::3, 2], 3, axis=0)[:m]
        out[start : start + m] = piece
    return out


def full_memory(embedder: Embedder, articles: int, size: int, rng: np.random.Generator) -> FeedbackMemory:
    """A memory of `size` verdicts on questions near the benchmark's queries (random mixes of a few
    encoded ones), about random articles: the cost of consulting it at each search."""
    base = embedder.encode(utterances()[2][:500])
    vectors = base[rng.integers(0, len(base), size)] + rng.normal(0, 0.3 / np.sqrt(base.shape[1]), (size, base.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    memory = FeedbackMemory(base.shape[1], capacity=size)
    memory.add(Judgement(i, v, f"a{rng.integers(0, articles)}", USED if i % 3 else NOT_HELPFUL) for i, v in enumerate(vectors))
    return memory


def timed_searches(index: HybridIndex, queries: list[str], method: str = "hybrid") -> list[float]:
    index.search(queries[0], 5, method=method)
    out = []
    for q in queries:
        started = time.perf_counter()
        index.search(q, 5, method=method)
        out.append((time.perf_counter() - started) * 1000)
    return out


def ann_table(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> list[str]:
    """Exact flat search against HNSW and IVF at this size: build time, latency, recall@k."""
    import faiss

    d = vectors.shape[1]
    flat = faiss.IndexFlatIP(d)
    flat.add(vectors)
    truth = flat.search(queries, k)[1]
    lines = [f"{'index':28} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}"]

    def measure(name: str, index, build_s: float, params=None) -> None:
        lat, found = [], []
        for q in queries:
            started = time.perf_counter()
            _, ids = index.search(q[None, :], k, params=params) if params is not None else index.search(q[None, :], k)
            lat.append((time.perf_counter() - started) * 1000)
            found.append(ids[0])
        recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])
        lines.append(f"{name:28} {build_s:8.1f} {percentile(lat, 50):7.2f} {percentile(lat, 95):7.2f} {recall:9.3f}")

    measure("flat (exact)", flat, 0.0)
    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(vectors)
    built = time.perf_counter() - started
    for ef in (64, 128, 256):
        measure(f"HNSW M=32 efSearch={ef}", hnsw, built, faiss.SearchParametersHNSW(efSearch=ef))
    started = time.perf_counter()
    nlist = max(16, int(4 * np.sqrt(len(vectors))))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)])
    ivf.add(vectors)
    built = time.perf_counter() - started
    for nprobe in (8, 32, 64):
        measure(f"IVF nlist={nlist} nprobe={nprobe}", ivf, built, faiss.SearchParametersIVF(nprobe=nprobe))
    return lines


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def fresh_process_rss(index: HybridIndex, queries: list[str]) -> str:
    """Save the index, load it in a new process with the model, search, report that process's RSS."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        index.save(Path(tmp))
        saved = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
        script = (
            "import json, os, sys, time\n"
            f"sys.path.insert(0, {str(BENCH.parent)!r}); sys.path.append({str(BENCH)!r})\n"
            "from _bench_common import proc_status_mb\n"
            "from knowledge.embedder import Embedder\n"
            "from knowledge.index import HybridIndex\n"
            "e = Embedder(); e.warm_up()\n"
            "t = time.perf_counter(); idx = HybridIndex.load(sys.argv[1], e); load = time.perf_counter() - t\n"
            "for q in json.loads(sys.argv[2]): idx.search(q)\n"
            "print(json.dumps({'rss': proc_status_mb(os.getpid())['VmRSS'], 'load': load}))\n"
        )
        out = subprocess.run([sys.executable, "-c", script, tmp, json.dumps(queries[:50])], capture_output=True, text=True, check=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    return f"RSS {figures['rss']:.0f} MiB after 50 searches (saved in {saved:.1f} s, {size:.0f} MiB on disk, loaded in {figures['load']:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 passages, 100 queries, no ANN table")
    parser.add_argument("--queries", type=int, default=300, help="timed searches per size")
    parser.add_argument("--encode", type=int, default=2_000, help="passages encoded for real (the rest reuse their vectors)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 10_000] or [1_000]
        args.queries = min(args.queries, 100)
        args.encode = min(args.encode, 1_000)
    rng = random.Random(11)
    texts, titles, all_queries = utterances()
    queries = rng.sample(all_queries, args.queries)
    print(f"cores: {os.cpu_count()}  load average at start: {loadavg()}")

    embedder = Embedder(threads=args.threads)
    started = time.perf_counter()
    embedder.warm_up()
    print(f"model load + first pass: {time.perf_counter() - started:.1f} s")
    floor = []
    for q in queries[:100]:
        started = time.perf_counter()
        embedder.encode([q])
        floor.append((time.perf_counter() - started) * 1000)
    print(f"one model forward pass (encode one query): p50 {percentile(floor, 50):.1f} ms, p95 {percentile(floor, 95):.1f} ms")

    biggest = max(args.sizes)
    passages = synthesise(biggest, texts, titles, rng)
    n_encode = min(args.encode, biggest)
    started = time.perf_counter()
    base = encode_passages(embedder, passages[:n_encode])
    encode_s = time.perf_counter() - started
    print(f"encoding: {n_encode} passages in {encode_s:.1f} s = {n_encode / encode_s:.0f} passages/s with {torch_threads()} torch thread(s) "
          f"(each passage: its title, every sentence and the whole, ~6 model inputs)")
    if (os.cpu_count() or 1) > torch_threads():
        import torch

        threads = torch_threads()
        torch.set_num_threads(os.cpu_count())
        sample = passages[: min(n_encode, 500)]
        started = time.perf_counter()
        encode_passages(embedder, sample)
        print(f"          {len(sample) / (time.perf_counter() - started):.0f} passages/s with {os.cpu_count()} threads (an import on an idle machine)")
        torch.set_num_threads(threads)
    np_rng = np.random.default_rng(5)
    base = base.astype(np.float16)  # as the index stores them: half the memory of the bench's own copy
    vectors = np.concatenate([base, perturbed(base, biggest - n_encode, np_rng)]) if biggest > n_encode else base
    if biggest > n_encode:
        print(f"  passages beyond the first {n_encode} reuse those vectors with a small perturbation (not encoded)")

    print()
    print(f"{'passages':>9} {'index build s':>14} {'passages/s':>11} {'faiss':>6} {'hybrid p50 ms':>14} {'p95 ms':>7} {'lexical p50':>12} {'upsert 1 article ms':>20}")
    index = None
    memory_lines: list[str] = []
    for size in sorted(args.sizes):
        index = None
        gc.collect()
        config = IndexConfig()
        started = time.perf_counter()
        index = HybridIndex(embedder, config)
        index.upsert(passages[:size], vectors[:size])
        index.compact()
        build_s = time.perf_counter() - started
        kind = index._snapshot().segment.vectors.kind
        lat = timed_searches(index, queries)
        lex = timed_searches(index, queries[:100], method="lexical")
        # One article (three passages, encoded) into the built index, as an edit in the hub does.
        upserts = []
        for j in range(10):
            article = [Passage(f"new{j}:{p}", f"new{j}", "Gift cards", "", f"Gift card question {j}/{p}: can I top up a gift card with SKU-{j}{p}?") for p in range(3)]
            started = time.perf_counter()
            index.upsert(article)
            upserts.append((time.perf_counter() - started) * 1000)
        print(f"{size:9,} {build_s:14.1f} {size / build_s:11,.0f} {kind:>6} {percentile(lat, 50):14.1f} {percentile(lat, 95):7.1f} "
              f"{percentile(lex, 50):12.1f} {percentile(upserts, 50):20.0f}", flush=True)
        if size == max(s for s in args.sizes if s <= 10_000 or s == min(args.sizes)):
            index.memory = full_memory(embedder, size // 3, 20_000, np.random.default_rng(3))
            remembered = timed_searches(index, queries)
            index.memory = None
            memory_lines.append(f"  with a full memory of agents' verdicts (20,000 questions) at {size:,} passages: hybrid p50 "
                                f"{percentile(remembered, 50):.1f} ms, p95 {percentile(remembered, 95):.1f} ms")

    for line in memory_lines:
        print(line)
    filler = vectors[:5].copy()
    del vectors, base
    gc.collect()
    status = proc_status_mb(os.getpid())
    print(f"\nmemory, this process (model, the {biggest:,}-passage index, the build's leftovers): RSS {status.get('VmRSS', float('nan')):.0f} MiB "
          f"(peak {status.get('VmHWM', float('nan')):.0f} MiB)")
    print(f"memory, a fresh process with the model and the {biggest:,}-passage index loaded from disk: {fresh_process_rss(index, queries)}")
    started = time.perf_counter()
    index.upsert([Passage(f"merge{i}", f"merge{i}", "x", "", f"merge filler {i}") for i in range(5)], filler)
    index.compact()
    print(f"full merge (rebuild of the segment) at {len(index):,} passages: {time.perf_counter() - started:.1f} s "
          f"(runs in a background thread when due; searches go on meanwhile)")

    if not args.quick and biggest >= 20_000:
        print(f"\nexact vs approximate vector search at {biggest:,} passages (vectors only, no query encoding, one thread):")
        qv = embedder.encode(queries[:200])
        seg = index._snapshot().segment.vectors
        print("  (the sentence-mean rows alone, float32: the index searches two rows a passage, in float16)")
        for line in ann_table(np.ascontiguousarray(seg.rows[:, 0], dtype=np.float32), qv):
            print("  " + line)
    print(f"\nload average at end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
