"""Publication dates on htmldate's evaluation pages: the pipeline beside htmldate.

    python benchmarks/eval_dates.py [DATA_DIR]      (default ../shared/data/date-eval)

DATA_DIR holds ``dates.json`` (``{key: {"url": ..., "date": "YYYY-MM-DD" | null}}``) and
``html/<key>.html.gz``. Each page goes through the real read -> extract -> clean path with the
default configuration; the pipeline's date is its local publication day (``published_at`` plus
``published_offset_min``). The baseline is ``htmldate.find_date(html, original_date=True)``.
Over the pages with an expected date, a page is right when the day is found exactly, wrong
when another day is found and none when no date is. Printed for all pages and for the two
halves of a hash split of the keys (the split eval-extraction uses).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from news_ingest.pipeline.config import load  # noqa: E402
from news_ingest.pipeline.graph import extract_options, rule_packs  # noqa: E402
from news_ingest.transforms.clean import RuleSet, clean_article  # noqa: E402
from news_ingest.transforms.dates import from_fields  # noqa: E402
from news_ingest.transforms.extract import decode_text, extract  # noqa: E402
from news_ingest.transforms.schema import Article  # noqa: E402
from news_ingest.transforms.sources import read_path  # noqa: E402


def half_of(key: str) -> str:
    """Halves "A" and "B" by a hash of the key (as news_ingest.pipeline.eval_extraction splits them)."""
    return "AB"[hashlib.blake2b(key.encode("utf-8"), digest_size=1).digest()[0] % 2]


def pipeline_day(path: str, url: str, options, rules, cfg) -> str | None:  # type: ignore[no-untyped-def]
    for raw in read_path(path, cfg.read.max_bytes):
        if not hasattr(raw, "content"):
            return None
        article = extract(dataclasses.replace(raw, url=url or None), options)
        if isinstance(article, Article):
            article = clean_article(article, rules, cfg.clean.min_words)
        if not isinstance(article, Article):
            return None
        found = from_fields(
            article.published_at, article.published_offset_min, article.published_precision
        )
        return found.local_date.isoformat() if found else None
    return None


def htmldate_day(path: str) -> str | None:
    import gzip

    import htmldate

    with gzip.open(path) as fh:
        html = decode_text(fh.read())
    if html is None:
        return None
    try:
        return htmldate.find_date(html, original_date=True)
    except Exception:  # a baseline that fails on a page has found nothing
        return None


def outcome(found: str | None, expected: str) -> str:
    if found is None:
        return "none"
    return "right" if found == expected else "wrong"


def main(directory: str) -> None:
    with open(os.path.join(directory, "dates.json"), encoding="utf-8") as fh:
        truth = json.load(fh)
    cfg = load()
    options = extract_options(cfg)
    rules = RuleSet(*rule_packs(cfg))
    counts: Counter[tuple[str, str, str]] = Counter()
    changed = []
    started = time.perf_counter()
    for key, entry in sorted(truth.items()):
        expected = entry.get("date")
        path = os.path.join(directory, "html", f"{key}.html.gz")
        if not expected or not os.path.isfile(path):
            continue
        ours = outcome(pipeline_day(path, entry.get("url") or "", options, rules, cfg), expected)
        theirs = outcome(htmldate_day(path), expected)
        for scope in ("all", half_of(key)):
            counts[(scope, "pipeline", ours)] += 1
            counts[(scope, "htmldate", theirs)] += 1
        if ours != theirs:
            changed.append(f"  {key}: pipeline {ours}, htmldate {theirs}")
    seconds = time.perf_counter() - started
    print(f"date-eval: {directory} ({seconds:.0f} s)")
    print(f"{'pages':<6} {'method':<9} {'right':>5} {'wrong':>5} {'none':>5}  {'dated':>5}")
    for scope in ("all", "A", "B"):
        for method in ("pipeline", "htmldate"):
            row = [counts[(scope, method, o)] for o in ("right", "wrong", "none")]
            print(f"{scope:<6} {method:<9} {row[0]:>5} {row[1]:>5} {row[2]:>5}  {sum(row):>5}")
    print(f"pages where the two differ ({len(changed)}):")
    print("\n".join(changed))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / "shared" / "data" / "date-eval"))
