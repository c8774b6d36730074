"""Does cleaning help or hurt on real pages? Shingle F1 of extracted text before and after
cleaning, against the hand-labelled article bodies of the article-extraction benchmark.

Usage: python benchmarks/clean_on_extraction.py DATA_DIR
  DATA_DIR holds html/<key>.html.gz and ground-truth.json ({key: {"articleBody", "url"}}).
Scoring is the benchmark's own: tokens are \\w+ runs; per page, the multisets of 4-token
shingles give tp, fp, fn normalised to sum 1; precision is averaged over pages with tp+fp > 0,
recall over pages with tp+fn > 0; F1 is the harmonic mean of the two averages.
Prints a table and the pages whose recall dropped most; not a test.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import sys
from pathlib import Path

from news_ingest.transforms.clean import RuleSet, clean_article
from news_ingest.transforms.extract import extract
from news_ingest.transforms.rulepack import load_pack, load_packs
from news_ingest.transforms.schema import SOURCE_HTML, Article, RawDocument

ROOT = Path(__file__).resolve().parents[1]


def shingles(text: str) -> collections.Counter[tuple[str, ...]]:
    tokens = re.findall(r"\w+", text)
    return collections.Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def page_scores(truth: str, pred: str) -> tuple[float, float, float]:
    t, p = shingles(truth), shingles(pred)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    if total == 0:
        return 0.0, 0.0, 0.0
    return tp / total, fp / total, fn / total


def summary(rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    precisions = [tp / (tp + fp) for tp, fp, _ in rows if tp + fp > 0]
    recalls = [tp / (tp + fn) for tp, _, fn in rows if tp + fn > 0]
    p = sum(precisions) / len(precisions)
    r = sum(recalls) / len(recalls)
    return 2 * p * r / (p + r), p, r


def main(data: str) -> int:
    truth_path = os.path.join(data, "ground-truth.json")
    if not os.path.exists(truth_path):
        print(f"no benchmark data at {data}; skipping")
        return 0
    with open(truth_path, encoding="utf-8") as fh:
        truth = json.load(fh)
    rules = RuleSet(
        load_pack(str(ROOT / "configs/boilerplate.yaml")), load_packs(str(ROOT / "configs/packs"))
    )
    before, after, changes = [], [], []
    fired: collections.Counter[str] = collections.Counter()
    for key, item in sorted(truth.items()):
        with gzip.open(os.path.join(data, "html", f"{key}.html.gz"), "rb") as fh:
            html = fh.read()
        raw = RawDocument(source_ref=key, source_kind=SOURCE_HTML, content=html, url=item["url"])
        extracted = extract(raw)
        text = extracted.text if isinstance(extracted, Article) else ""
        cleaned = clean_article(extracted, rules) if isinstance(extracted, Article) else None
        clean_text = cleaned.text if isinstance(cleaned, Article) else ""
        if isinstance(cleaned, Article):
            fired.update(cleaned.rules_fired)
        b = page_scores(item["articleBody"], text)
        a = page_scores(item["articleBody"], clean_text)
        before.append(b)
        after.append(a)
        rb = b[0] / (b[0] + b[2]) if b[0] + b[2] else 0.0
        ra = a[0] / (a[0] + a[2]) if a[0] + a[2] else 0.0
        changes.append((ra - rb, key))
    print(f"{'text':<22} {'F1':>6} {'prec':>6} {'recall':>6}   ({len(truth)} pages)")
    for name, rows in (("extracted", before), ("extracted + cleaned", after)):
        f1, p, r = summary(rows)
        print(f"{name:<22} {f1:>6.3f} {p:>6.3f} {r:>6.3f}")
    print("rules fired (pages):", ", ".join(f"{k} {v}" for k, v in fired.most_common(15)))
    worst = sorted(changes)[:5]
    print("largest recall drops:", ", ".join(f"{k[:12]} {d:+.3f}" for d, k in worst if d < 0))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
