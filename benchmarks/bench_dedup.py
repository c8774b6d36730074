"""Dedup benchmark: a synthetic corpus with planted duplicates through the dedup stage alone.

Prints, per corpus size: seconds, docs/s, signature docs/s (one core), peak RSS, and precision
and recall of the planted duplicate pairs.

Two engines:

* ``pure`` (default): the decision functions of ``news_ingest.transforms.dedup`` in one process, with the
  corpus streamed from a generator (texts are not kept). Exact duplicates are grouped by
  content hash, one signature per distinct text (``MinHasher``), candidates from LSH bands
  (grouped by sorting each band's keys with numpy instead of a GroupByKey: same rows, same
  buckets), every candidate verified by ``bucket_edges``, clusters by ``components`` and
  keepers by ``resolve_cluster``.
* ``beam``: the ``Deduplicate`` PTransform on Beam's in-process DirectRunner. The documents are
  generated inside the pipeline (chunks of ``--chunk`` indices fan out into articles), so the
  launcher never holds the corpus; every duplicate row is scored in the pipeline (Beam
  counters), nothing is written. Its time includes generating the documents; the generation
  rate, measured alone beforehand, is printed beside it.

Each size runs in a fresh subprocess; peak RSS is the largest summed RSS of that process tree,
sampled every 0.1 s. A size that passes ``--max-rss-mb`` or ``--max-seconds`` is stopped and
reported as such; larger sizes are then not tried, and the figures of the largest size that
finished are extrapolated linearly to the largest size asked for, marked as extrapolated.

The corpus: documents of 150-900 words drawn from a Zipf-like vocabulary, each mixing in a few
of 300 stock sentences shared across the corpus ("The company did not respond to a request for
comment."), so unrelated documents do share some shingles. A share of documents (default 20%)
are planted copies of an earlier document: re-wrapped (exact after normalization), truncated to
85% of its paragraphs, a sentence added and three words changed, or boilerplate added. Every
document is a function of its index alone (its own random generator), so any chunk of the
corpus can be generated anywhere. A planted pair is found when the copy and its original end in
the same cluster; a reported duplicate is correct when it and its keeper come from the same
planted family.

Usage:
    nice python benchmarks/bench_dedup.py                      # 10k, 100k, 1M, pure
    nice python benchmarks/bench_dedup.py --engine beam --docs 1000000
    nice python benchmarks/bench_dedup.py --engine beam --sizes 10000 50000 --max-seconds 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench_throughput import STOPPED, measure  # noqa: E402
from news_ingest.transforms.dedup import (  # noqa: E402
    MinHasher,
    NearParams,
    Node,
    bucket_edges,
    components,
    resolve_cluster,
)
from news_ingest.transforms.normalize import content_hash  # noqa: E402
from news_ingest.transforms.schema import Article  # noqa: E402

BENCH = "bench"
# The target: 1,000,000 documents through the dedup stage in under 2 GB.
TARGET_DOCS = 1_000_000
RSS_TARGET_MB = 2048.0
KINDS = ("rewrap", "truncate", "edit", "boilerplate")
BOILERPLATE = (
    "Sign up for our daily newsletter and get the top stories delivered to your inbox. "
    "Follow us on Facebook, X and Instagram. All rights reserved."
)


@dataclass
class Doc:
    doc_id: str
    family: int  # planted family: the index of the original document
    kind: str  # original | one of KINDS
    text: str
    published: float
    words: int


class Corpus:
    """A reproducible corpus with planted duplicates; document ``i`` depends on ``i`` alone."""

    def __init__(self, size: int, dup_share: float, seed: int = 0):
        self.size = size
        self.dup_share = dup_share
        self.seed = seed
        rng = np.random.default_rng(seed)
        vocab_size = 40000
        self.vocab = np.array([self._word(i) for i in range(vocab_size)])
        ranks = np.arange(1, vocab_size + 1)
        weights = 1.0 / ranks**1.05
        self.cdf = np.cumsum(weights) / np.sum(weights)
        self.stock = [self._sentence(12, rng) for _ in range(300)]

    def _word(self, i: int) -> str:
        letters = "abcdefghijklmnopqrstuvwxyz"
        out, n = [], i + 26
        while n:
            n, r = divmod(n, 26)
            out.append(letters[r])
        return "".join(out)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        idx = np.searchsorted(self.cdf, rng.random(n))
        return np.minimum(idx, len(self.vocab) - 1)

    def _sentence(self, n: int, rng: np.random.Generator) -> str:
        return " ".join(self.vocab[self._draw(n, rng)]).capitalize() + "."

    def _plan(self, i: int) -> tuple[bool, int, np.random.Generator]:
        """(is a copy, the document it copies or itself, its generator for the rest)."""
        rng = np.random.default_rng((self.seed, i))
        if i > 0 and rng.random() < self.dup_share:
            return True, int(rng.integers(i)), rng
        return False, i, rng

    def family_of(self, i: int) -> int:
        """The planted family of document ``i``: the index of the original it descends from."""
        copy, parent, _ = self._plan(i)
        while copy:
            i = parent
            copy, parent, _ = self._plan(i)
        return i

    def original(self, i: int) -> str:
        rng = np.random.default_rng((self.seed, i, 1))
        words = self.vocab[self._draw(int(rng.integers(150, 900)), rng)].tolist()
        paragraphs, k = [], 0
        while k < len(words):
            step = int(rng.integers(30, 70))
            para = " ".join(words[k : k + step]).capitalize() + "."
            if rng.random() < 0.3:
                para += " " + self.stock[int(rng.integers(len(self.stock)))]
            paragraphs.append(para)
            k += step
        return "\n\n".join(paragraphs)

    def copy(self, text: str, kind: str, rng: np.random.Generator) -> str:
        paragraphs = text.split("\n\n")
        if kind == "rewrap":
            words = text.split()
            return "\n".join(" ".join(words[i : i + 11]) for i in range(0, len(words), 11))
        if kind == "truncate":
            return "\n\n".join(paragraphs[: max(1, round(len(paragraphs) * 0.85))])
        if kind == "edit":
            paragraphs.insert(int(rng.integers(len(paragraphs) + 1)), self._sentence(15, rng))
            words = "\n\n".join(paragraphs).split(" ")
            for _ in range(3):
                words[int(rng.integers(len(words)))] = str(self.vocab[int(rng.integers(5000))])
            return " ".join(words)
        return f"{BOILERPLATE}\n\n{text}\n\n{BOILERPLATE}"

    def doc_at(self, i: int) -> Doc:
        copy, _parent, rng = self._plan(i)
        published = 1.7e9 + float(rng.random()) * 7 * 86400.0
        family = self.family_of(i)
        if copy:
            kind = KINDS[int(rng.integers(len(KINDS)))]
            text = self.copy(self.original(family), kind, rng)
        else:
            kind, text = "original", self.original(i)
        return Doc(f"d{i:08d}", family, kind, text, published, len(text.split()))

    def __iter__(self) -> Iterator[Doc]:
        for i in range(self.size):
            yield self.doc_at(i)


def run_pure(size: int, dup_share: float, params: NearParams) -> dict[str, float]:
    hasher = MinHasher(params)
    n_perm = params.num_perm
    sigs = np.zeros((size, n_perm), dtype=np.uint32)
    counts = np.zeros(size, dtype=np.int32)
    published = np.zeros(size)
    words = np.zeros(size, dtype=np.int32)
    families = np.zeros(size, dtype=np.int64)
    has_sig = np.zeros(size, dtype=bool)
    heads: dict[str, int] = {}
    hashes: list[str] = []
    edges: list[tuple[str, str, str]] = []
    t_sig = t_hash = cpu_sig = cpu_hash = 0.0
    kinds: dict[str, int] = {}
    doc_kinds: list[str] = []
    for i, doc in enumerate(Corpus(size, dup_share)):
        published[i], words[i], families[i] = doc.published, doc.words, doc.family
        kinds[doc.kind] = kinds.get(doc.kind, 0) + 1
        doc_kinds.append(doc.kind)
        t0 = time.perf_counter()
        c0 = time.process_time()
        h = content_hash(doc.text)
        t1 = time.perf_counter()
        c1 = time.process_time()
        hashes.append(h)
        if h in heads:
            edges.append((f"a:{heads[h]:08d}", f"a:{i:08d}", "exact"))
        else:
            heads[h] = i
            sig, count = hasher.signature(doc.text)
            sigs[i] = np.frombuffer(sig, dtype=np.uint32)
            counts[i] = count
            has_sig[i] = True
        t2 = time.perf_counter()
        c2 = time.process_time()
        t_hash += t1 - t0
        t_sig += t2 - t1
        cpu_hash += c1 - c0
        cpu_sig += c2 - c1
    n_signed = int(has_sig.sum())

    def node(i: int) -> Node:
        return Node(
            node_id=f"a:{i:08d}",
            article_id=f"d{i:08d}",
            prior=False,
            rank=(published[i], -int(words[i]), 0, f"d{i:08d}", ""),
            canonical_url=None,
            content_hash=hashes[i],
            signature=sigs[i].tobytes() if has_sig[i] else None,
            shingle_count=int(counts[i]),
        )

    t0 = time.perf_counter()
    c0 = time.process_time()
    signed = np.flatnonzero(has_sig)
    rows = params.rows
    mult = np.arange(1, rows + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    buckets = 0
    for b in range(params.bands):
        band = sigs[signed, b * rows : (b + 1) * rows].astype(np.uint64)
        keys = (band * mult).sum(axis=1) ^ (band[:, 0] << np.uint64(32))
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends, strict=True):
            if e - s > 1:
                buckets += 1
                edges.extend(bucket_edges([node(int(signed[j])) for j in order[s:e]], params))
    t_lsh = time.perf_counter() - t0
    t0 = time.perf_counter()
    roots = components(sorted(set(edges)))
    clusters: dict[str, list[int]] = {}
    for node_id, root in roots.items():
        clusters.setdefault(root, []).append(int(node_id[2:]))
    dup_pairs: list[tuple[int, int]] = []
    for members in clusters.values():
        nodes = [node(i) for i in members]
        arts = {
            n.node_id: Article(article_id=n.article_id, source_kind="text", source_ref="")
            for n in nodes
        }
        resolution = resolve_cluster(nodes, arts)
        for d in resolution.duplicates:
            dup_pairs.append((int(d.article.article_id[1:]), int(d.duplicate_of[1:])))
    t_resolve = time.perf_counter() - t0
    cpu_rest = time.process_time() - c0

    planted = size - len(set(families.tolist()))
    correct = sum(1 for d, k in dup_pairs if families[d] == families[k])
    # Recall: planted copies that share a cluster with their family's original.
    cluster_of = {int(n[2:]): r for n, r in roots.items()}
    first_of: dict[int, int] = {}
    for i, f in enumerate(families.tolist()):
        first_of.setdefault(f, i)
    missed: dict[str, int] = {}
    found = 0
    for i, f in enumerate(families.tolist()):
        if first_of[f] == i:
            continue
        if cluster_of.get(i) is not None and cluster_of.get(i) == cluster_of.get(first_of[f]):
            found += 1
        else:
            missed[doc_kinds[i]] = missed.get(doc_kinds[i], 0) + 1
    total = t_hash + t_sig + t_lsh + t_resolve
    return {
        "docs": size,
        "seconds": total,
        "docs_per_s": size / total,
        "signature_docs_per_s": n_signed / t_sig,
        "signature_docs_per_cpu_s": n_signed / cpu_sig,
        "cpu_seconds": cpu_hash + cpu_sig + cpu_rest,
        "hash_s": t_hash,
        "signature_s": t_sig,
        "lsh_verify_s": t_lsh,
        "resolve_s": t_resolve,
        "buckets": buckets,
        "edges": len(set(edges)),
        "planted": planted,
        "reported": len(dup_pairs),
        "precision": correct / len(dup_pairs) if dup_pairs else 1.0,
        "recall": found / planted if planted else 1.0,
        **{f"kind_{k}": v for k, v in kinds.items()},
        **{f"missed_{k}": v for k, v in missed.items()},
    }


def article_of(doc: Doc) -> Article:
    """The article the dedup stage sees for a synthetic document (normalized fields only)."""
    return Article(
        article_id=doc.doc_id,
        source_kind="text",
        source_ref=doc.doc_id,
        text=doc.text,
        published_at=dt.datetime.fromtimestamp(doc.published, tz=dt.UTC),
        word_count=doc.words,
        content_hash=content_hash(doc.text),
    )


class _Generate(beam.DoFn):
    """A chunk of document indices -> their articles, made where the chunk runs."""

    def __init__(self, size: int, dup_share: float, chunk: int):
        self.size, self.dup_share, self.chunk = size, dup_share, chunk

    def setup(self) -> None:
        self.corpus = Corpus(self.size, self.dup_share)
        self.planted = Metrics.counter(BENCH, "planted")

    def process(self, start: int) -> Iterator[Article]:
        for i in range(start, min(start + self.chunk, self.size)):
            doc = self.corpus.doc_at(i)
            if doc.kind != "original":
                self.planted.inc()
            yield article_of(doc)


def _ids(dup: Any) -> tuple[str, str]:
    """(duplicate's article id, its keeper's) of a duplicate row or decision."""
    article = getattr(dup, "article", None) or getattr(dup, "node", None)
    return (article.article_id if article is not None else dup.article_id), dup.duplicate_of


class _Score(beam.DoFn):
    """Counts reported duplicates and those whose keeper is of the same planted family."""

    def __init__(self, size: int, dup_share: float):
        self.size, self.dup_share = size, dup_share

    def setup(self) -> None:
        self.corpus = Corpus(self.size, self.dup_share)
        self.reported = Metrics.counter(BENCH, "reported")
        self.correct = Metrics.counter(BENCH, "correct")

    def process(self, dup: Any) -> Iterator[None]:
        dup_id, keeper_id = _ids(dup)
        self.reported.inc()
        if self.corpus.family_of(int(dup_id[1:])) == self.corpus.family_of(int(keeper_id[1:])):
            self.correct.inc()
        return iter(())


class _Count(beam.DoFn):
    def __init__(self, name: str):
        self.name = name

    def setup(self) -> None:
        self.counter = Metrics.counter(BENCH, self.name)

    def process(self, _element: Any) -> Iterator[None]:
        self.counter.inc()
        return iter(())


def run_beam(size: int, dup_share: float, params: NearParams, chunk: int) -> dict[str, float]:
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from news_ingest.transforms.dedup import Deduplicate, ToNodes

    # Generating documents is part of the pipeline's first stage: time it alone, to subtract.
    corpus = Corpus(size, dup_share)
    sample = min(size, 2000)
    c0 = time.process_time()
    for i in range(sample):
        article_of(corpus.doc_at(i))
    generation = sample / max(time.process_time() - c0, 1e-9)

    t0 = time.perf_counter()
    c0 = time.process_time()
    options = PipelineOptions([], runner="DirectRunner", direct_running_mode="in_memory")
    p = beam.Pipeline(options=options)
    articles = (
        p
        | "Chunks" >> beam.Create(list(range(0, size, chunk)))
        | "Generate" >> beam.ParDo(_Generate(size, dup_share, chunk))
    )
    nodes = articles | "ToNodes" >> ToNodes(params)
    kept, dups, _index = nodes | "Deduplicate" >> Deduplicate(params)
    _ = kept | "CountKept" >> beam.ParDo(_Count("kept"))
    _ = dups | "Score" >> beam.ParDo(_Score(size, dup_share))
    result = p.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(BENCH))["counters"]
    }
    planted, reported = counters.get("planted", 0), counters.get("reported", 0)
    correct = counters.get("correct", 0)
    return {
        "docs": size,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "docs_per_s": size / seconds,
        "generation_docs_per_cpu_s": generation,
        "kept": counters.get("kept", 0),
        "planted": planted,
        "reported": reported,
        "precision": correct / reported if reported else 1.0,
        # Every reported pair is one copy; a family of k copies reports k rows when all found.
        "recall": min(1.0, correct / planted) if planted else 1.0,
    }


def one(args: argparse.Namespace) -> None:
    params = NearParams(threshold=args.threshold, containment=args.containment)
    if args.engine == "pure":
        result = run_pure(args.single, args.dup_share, params)
    else:
        result = run_beam(args.single, args.dup_share, params, args.chunk)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _child(args: argparse.Namespace, size: int) -> list[str]:
    return [
        sys.executable,
        os.path.abspath(__file__),
        "--single",
        str(size),
        "--engine",
        args.engine,
        "--dup-share",
        str(args.dup_share),
        "--threshold",
        str(args.threshold),
        "--containment",
        str(args.containment),
        "--chunk",
        str(args.chunk),
    ]


def _extrapolate(results: list[dict[str, Any]], target: int) -> None:
    """Linear extrapolation of time and peak RSS from the largest finished sizes."""
    last = results[-1]
    scale = target / last["docs"]
    seconds = last["seconds"] * scale
    if len(results) >= 2 and results[-2]["docs"] < last["docs"]:
        prev = results[-2]
        slope = (last["peak_rss_mb"] - prev["peak_rss_mb"]) / (last["docs"] - prev["docs"])
        rss = last["peak_rss_mb"] + slope * (target - last["docs"])
        basis = f"the runs at {prev['docs']} and {last['docs']} documents"
    else:
        # One size says nothing about how memory grows (most of it may be fixed).
        print(
            f"EXTRAPOLATED (not measured) to {target} documents from the run at "
            f"{last['docs']}: ~{seconds:.0f} s (~{target / seconds:.0f} docs/s); peak RSS needs "
            "two sizes to extrapolate"
        )
        return
    verdict = "under" if rss < RSS_TARGET_MB else "OVER"
    print(
        f"EXTRAPOLATED (not measured) to {target} documents, linearly from {basis}: "
        f"~{seconds:.0f} s (~{target / seconds:.0f} docs/s), peak RSS ~{rss:.0f} MB "
        f"({verdict} the {RSS_TARGET_MB:.0f} MB target)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--docs", type=int, help="one corpus size (instead of --sizes)")
    parser.add_argument("--engine", choices=("pure", "beam"), default="pure")
    parser.add_argument("--dup-share", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=NearParams.threshold)
    parser.add_argument("--containment", type=float, default=NearParams.containment)
    parser.add_argument("--chunk", type=int, default=1000, help="documents per generated chunk")
    parser.add_argument(
        "--max-rss-mb",
        type=float,
        default=4096.0,
        help="stop a size whose process tree passes this RSS (default 4096)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        help="stop a size that runs longer (default 1800)",
    )
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        one(args)
        return
    sizes = sorted({args.docs} if args.docs else set(args.sizes))
    params = NearParams(threshold=args.threshold, containment=args.containment)
    print(f"engine={args.engine} dup_share={args.dup_share} params={params}")
    print(f"limits per size: {args.max_seconds:.0f} s, {args.max_rss_mb:.0f} MB RSS")
    print(f"load average at start: {os.getloadavg()}")
    header = (
        f"{'docs':>9} {'wall s':>8} {'cpu s':>8} {'docs/s':>7} {'sig/cpu-s':>9} {'peak RSS MB':>11} "
        f"{'planted':>8} {'reported':>8} {'precision':>9} {'recall':>7}"
    )
    print(header, flush=True)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    logs = Path(tempfile.mkdtemp(prefix="bench-dedup-"))
    results = []
    try:
        for size in sizes:
            key = f"{args.engine}-{size}"
            run = measure(
                key, _child(args, size), env, logs, args.max_seconds, max_rss_mb=args.max_rss_mb
            )
            if run.code:
                why = STOPPED.get(run.code, f"failed with exit code {run.code}")
                print(
                    f"{size:>9} {why} after {run.seconds:.0f} s, peak RSS {run.rss_mb:.0f} MB; "
                    "larger sizes not tried",
                    flush=True,
                )
                break
            out = (logs / f"{key}.out").read_text().strip().splitlines()
            r = json.loads(out[-1])
            r["peak_rss_mb"] = run.rss_mb  # the whole tree's, sampled
            results.append(r)
            print(
                f"{r['docs']:>9} {r['seconds']:>8.1f} {r.get('cpu_seconds', float('nan')):>8.1f} "
                f"{r['docs_per_s']:>7.0f} {r.get('signature_docs_per_cpu_s', float('nan')):>9.0f} "
                f"{r['peak_rss_mb']:>11.0f} "
                f"{r['planted']:>8} {r['reported']:>8} {r['precision']:>9.4f} {r['recall']:>7.4f}",
                flush=True,
            )
            extra = {
                k: v
                for k, v in r.items()
                if k.endswith(("_s", "_per_cpu_s"))
                or k.startswith(("kind_", "missed_"))
                or k in ("buckets", "edges", "kept")
            }
            extra.pop("signature_docs_per_cpu_s", None)
            extra.pop("docs_per_s", None)
            if extra:
                print(
                    "          "
                    + ", ".join(
                        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in extra.items()
                    ),
                    flush=True,
                )
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")
    for a, b in zip(results, results[1:], strict=False):
        wall = b["seconds"] / a["seconds"]
        cpu = b.get("cpu_seconds", b["seconds"]) / a.get("cpu_seconds", a["seconds"])
        print(f"docs x{b['docs'] / a['docs']:.0f}: wall time x{wall:.1f}, cpu time x{cpu:.1f}")
    target = max(TARGET_DOCS, sizes[-1])
    if results and results[-1]["docs"] >= TARGET_DOCS:
        r = results[-1]
        verdict = "met" if r["peak_rss_mb"] < RSS_TARGET_MB else "NOT met"
        print(
            f"{r['docs']} documents: {r['docs_per_s']:.0f} docs/s, peak RSS "
            f"{r['peak_rss_mb']:.0f} MB (target < {RSS_TARGET_MB:.0f} MB: {verdict})"
        )
    elif results:
        _extrapolate(results, target)
    else:
        print("no size finished: nothing to extrapolate from")


if __name__ == "__main__":
    main()
