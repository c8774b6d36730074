"""Cleaning throughput: documents per second through clean_article (+ normalize) on one core.

Usage: python benchmarks/clean_throughput.py [DIR ...]   (default: seeds/ and the cleaning
fixtures). Prints a table; not a test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from news_ingest.transforms.clean import RuleSet, clean_article
from news_ingest.transforms.extract import extract_text
from news_ingest.transforms.normalize import load_language_identifier, normalize_article
from news_ingest.transforms.rulepack import load_pack, load_packs
from news_ingest.transforms.schema import Article, RawDocument

ROOT = Path(__file__).resolve().parents[1]


def main(dirs: list[str]) -> None:
    paths = [p for d in dirs for p in sorted(Path(d).glob("*.txt"))]
    articles = []
    for p in paths:
        a = extract_text(RawDocument(source_ref=str(p), source_kind="text", content=p.read_bytes()))
        assert isinstance(a, Article)
        articles.append(a)
    t0 = time.perf_counter()
    rules = RuleSet(
        load_pack(str(ROOT / "configs/boilerplate.yaml")), load_packs(str(ROOT / "configs/packs"))
    )
    identifier = load_language_identifier()
    rules.cleaner_for(()).clean("warm up the word list")
    setup = time.perf_counter() - t0
    rounds = max(1, 2000 // len(articles))
    chars = sum(len(a.text) for a in articles) * rounds
    t0 = time.perf_counter()
    for _ in range(rounds):
        cleaned = [clean_article(a, rules) for a in articles]
    t_clean = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for c in cleaned:
            if isinstance(c, Article):
                normalize_article(c, identifier)
    t_norm = time.perf_counter() - t0
    n = len(articles) * rounds
    print(f"{'step':<12} {'docs':>7} {'seconds':>8} {'docs/s':>8} {'MB/s':>6}")
    print(f"{'setup':<12} {'':>7} {setup:>8.2f}")
    print(f"{'clean':<12} {n:>7} {t_clean:>8.2f} {n / t_clean:>8.0f} {chars / t_clean / 1e6:>6.2f}")
    print(
        f"{'normalize':<12} {n:>7} {t_norm:>8.2f} {n / t_norm:>8.0f} {chars / t_norm / 1e6:>6.2f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:] or [str(ROOT / "seeds"), str(ROOT / "tests/fixtures/cleaning")])
