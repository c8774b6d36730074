"""Dedup benchmark: a synthetic corpus with planted duplicates through the dedup stage alone.

Prints, per corpus size: seconds, docs/s, signature docs/s (one core), peak RSS, and precision
and recall of the planted duplicate pairs.

Two engines:

* ``pure`` (default, all sizes): the decision functions of ``transforms.dedup`` in one process,
  with the corpus streamed from a generator (texts are not kept). Exact duplicates are grouped
  by content hash, one signature per distinct text (``MinHasher``), candidates from LSH bands
  (grouped by sorting each band's keys with numpy instead of a GroupByKey: same rows, same
  buckets), every candidate verified by ``bucket_edges``, clusters by ``components`` and
  keepers by ``resolve_cluster``.
* ``beam``: the ``Deduplicate`` PTransform on Beam's in-process DirectRunner (small sizes: the
  DirectRunner is a test runner, its shuffles are in memory and single-threaded).

The corpus: documents of 150-900 words drawn from a Zipf-like vocabulary, each mixing in a few
of 300 stock sentences shared across the corpus ("The company did not respond to a request for
comment."), so unrelated documents do share some shingles. A share of documents (default 20%)
are planted copies of an earlier document: re-wrapped (exact after normalization), truncated to
85% of its paragraphs, a sentence added and three words changed, or boilerplate added.
A planted pair is found when the copy and its original end in the same cluster; a reported
duplicate is correct when it and its keeper come from the same planted family.

Each size runs in a fresh subprocess so that peak RSS is per size.

Usage:
    nice python benchmarks/bench_dedup.py                      # 10k, 100k, 1M, pure
    nice python benchmarks/bench_dedup.py --sizes 10000 --engine beam
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.dedup import (  # noqa: E402
    MinHasher,
    NearParams,
    Node,
    bucket_edges,
    components,
    resolve_cluster,
)
from transforms.normalize import content_hash  # noqa: E402
from transforms.schema import Article  # noqa: E402

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
    """A reproducible stream of documents with planted duplicates."""

    def __init__(self, size: int, dup_share: float, seed: int = 0):
        self.size = size
        self.dup_share = dup_share
        self.rng = np.random.default_rng(seed)
        vocab_size = 40000
        self.vocab = np.array([self._word(i) for i in range(vocab_size)])
        ranks = np.arange(1, vocab_size + 1)
        self.p = (1.0 / ranks**1.05) / np.sum(1.0 / ranks**1.05)
        self.stock = [self._sentence(12) for _ in range(300)]
        # Originals are remembered only as their (seed, length) recipe, so memory stays flat.
        self.recipes: list[tuple[int, int]] = []

    def _word(self, i: int) -> str:
        letters = "abcdefghijklmnopqrstuvwxyz"
        out, n = [], i + 26
        while n:
            n, r = divmod(n, 26)
            out.append(letters[r])
        return "".join(out)

    def _sentence(self, n: int, rng: np.random.Generator | None = None) -> str:
        rng = rng or self.rng
        words = self.vocab[rng.choice(len(self.vocab), size=n, p=self.p)]
        return " ".join(words).capitalize() + "."

    def original(self, recipe: tuple[int, int]) -> str:
        seed, n_words = recipe
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.vocab), size=n_words, p=self.p)
        words = self.vocab[idx].tolist()
        paragraphs, i = [], 0
        while i < len(words):
            step = int(rng.integers(30, 70))
            para = " ".join(words[i : i + step]).capitalize() + "."
            if rng.random() < 0.3:
                para += " " + self.stock[int(rng.integers(len(self.stock)))]
            paragraphs.append(para)
            i += step
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

    def __iter__(self) -> Iterator[Doc]:
        day = 86400.0
        for i in range(self.size):
            published = 1.7e9 + float(self.rng.random()) * 7 * day
            if self.recipes and self.rng.random() < self.dup_share:
                family = int(self.rng.integers(len(self.recipes)))
                kind = KINDS[int(self.rng.integers(len(KINDS)))]
                text = self.copy(self.original(self.recipes[family]), kind, self.rng)
            else:
                family, kind = len(self.recipes), "original"
                self.recipes.append(
                    (int(self.rng.integers(2**31)), int(self.rng.integers(150, 900)))
                )
                text = self.original(self.recipes[family])
            yield Doc(f"d{i:08d}", family, kind, text, published, len(text.split()))


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


def run_beam(size: int, dup_share: float, params: NearParams) -> dict[str, float]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.dedup import Deduplicate
    from transforms.normalize import normalize_article

    families: dict[str, int] = {}
    articles = []
    for doc in Corpus(size, dup_share):
        families[doc.doc_id] = doc.family
        articles.append(
            normalize_article(
                Article(
                    article_id=doc.doc_id,
                    source_kind="text",
                    source_ref=doc.doc_id,
                    text=doc.text,
                    published_at=__import__("datetime").datetime.fromtimestamp(
                        doc.published, tz=__import__("datetime").timezone.utc
                    ),
                )
            )
        )
    out = tempfile.mkdtemp(prefix="bench-dedup-")
    t0 = time.perf_counter()
    c0 = time.process_time()
    options = PipelineOptions(runner="DirectRunner", direct_running_mode="in_memory")
    with beam.Pipeline(options=options) as p:
        _kept, dups, _index = p | beam.Create(articles) | Deduplicate(params)
        (
            dups
            | beam.Map(lambda d: f"{d.article.article_id}\t{d.duplicate_of}")
            | beam.io.WriteToText(os.path.join(out, "dups"), num_shards=1)
        )
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    pairs = []
    for name in os.listdir(out):
        with open(os.path.join(out, name), encoding="utf-8") as fh:
            pairs += [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    planted = size - len(set(families.values()))
    correct = sum(1 for d, k in pairs if families[d] == families[k])
    return {
        "docs": size,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "docs_per_s": size / seconds,
        "planted": planted,
        "reported": len(pairs),
        "precision": correct / len(pairs) if pairs else 1.0,
        # Every reported pair is one copy; a family of k copies reports k rows when all found.
        "recall": min(1.0, correct / planted) if planted else 1.0,
    }


def one(args: argparse.Namespace) -> None:
    params = NearParams(threshold=args.threshold, containment=args.containment)
    run = run_pure if args.engine == "pure" else run_beam
    result = run(args.single, args.dup_share, params)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--engine", choices=("pure", "beam"), default="pure")
    parser.add_argument("--dup-share", type=float, default=0.2)
    parser.add_argument("--threshold", type=float, default=NearParams.threshold)
    parser.add_argument("--containment", type=float, default=NearParams.containment)
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        one(args)
        return
    params = NearParams(threshold=args.threshold, containment=args.containment)
    print(f"engine={args.engine} dup_share={args.dup_share} params={params}")
    print(f"load average at start: {os.getloadavg()}")
    header = (
        f"{'docs':>9} {'wall s':>8} {'cpu s':>8} {'docs/s':>7} {'sig/cpu-s':>9} {'peak RSS MB':>11} "
        f"{'planted':>8} {'reported':>8} {'precision':>9} {'recall':>7}"
    )
    print(header)
    results = []
    for size in args.sizes:
        cmd = [
            sys.executable,
            __file__,
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
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
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
            if k.endswith("_s") or k.startswith(("kind_", "missed_")) or k in ("buckets", "edges")
        }
        if extra:
            print(
                "          "
                + ", ".join(
                    f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()
                ),
                flush=True,
            )
    for a, b in zip(results, results[1:], strict=False):
        wall = b["seconds"] / a["seconds"]
        cpu = b.get("cpu_seconds", b["seconds"]) / a.get("cpu_seconds", a["seconds"])
        print(f"docs x{b['docs'] / a['docs']:.0f}: wall time x{wall:.1f}, cpu time x{cpu:.1f}")


if __name__ == "__main__":
    main()
