"""Metadata on the dev sets: bylines that are not names, label lists, declared vs text language.

    python benchmarks/eval_metadata.py [DATA_DIR]     (default ../shared/data)

Every ``DATA_DIR/*/html/*.html.gz`` goes through the real read -> extract -> clean -> normalize
path with the default configuration. Printed:

* authors that hold a weekday, a month, a date or a role word, as trafilatura gives them and
  as the pipeline writes them (the target is 0);
* labels (tags, categories) that still hold a comma or a semicolon;
* pages whose ``<html lang>`` (or Content-Language, og:locale) and text language disagree, and
  the language the pipeline chose.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from news_ingest.pipeline.config import load  # noqa: E402
from news_ingest.pipeline.graph import extract_options, rule_packs  # noqa: E402
from news_ingest.transforms.clean import RuleSet, clean_article  # noqa: E402
from news_ingest.transforms.extract import decode_text, extract  # noqa: E402
from news_ingest.transforms.normalize import (  # noqa: E402
    identify_language,
    load_language_identifier,
    normalize_article,
)
from news_ingest.transforms.schema import Article  # noqa: E402
from news_ingest.transforms.sources import read_path  # noqa: E402

# A wider net than the cleaning rules cast: every month (May, June... too), weekday, role word
# and anything with a digit.
_SUSPECT = re.compile(
    r"(?<!\w)(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february"
    r"|march|april|may|june|july|august|september|october|november|december|montag|dienstag"
    r"|mittwoch|donnerstag|freitag|samstag|sonntag|januar|februar|märz|juni|juli|oktober"
    r"|dezember|staff|writer|reporter|correspondent|editor|contributor|columnist|published"
    r"|posted|updated|says)(?!\w)|\d",
    re.I,
)


def raw_authors(html: str) -> list[str]:
    from trafilatura.metadata import extract_metadata
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return []
    author = extract_metadata(tree).author or ""
    return [a.strip() for a in author.split(";") if a.strip()]


def main(directory: str) -> None:
    cfg = load()
    options = extract_options(cfg)
    rules = RuleSet(*rule_packs(cfg))
    identifier = load_language_identifier()
    counts: Counter[str] = Counter()
    left: list[str] = []
    disagreements: list[str] = []
    started = time.perf_counter()
    for path in sorted(glob.glob(os.path.join(directory, "*", "html", "*.html.gz"))):
        with gzip.open(path) as fh:
            html = decode_text(fh.read())
        if html is None:
            continue
        before = raw_authors(html)
        counts["authors before"] += len(before)
        counts["suspect before"] += sum(1 for a in before if _SUSPECT.search(a))
        for raw in read_path(path, cfg.read.max_bytes):
            if not hasattr(raw, "content"):
                break
            article = extract(raw, options)
            if isinstance(article, Article):
                article = clean_article(article, rules, cfg.clean.min_words)
            if not isinstance(article, Article):
                break
            declared = article.language
            article = normalize_article(article, identifier, cfg.normalize)
            counts["pages"] += 1
            counts["authors after"] += len(article.authors)
            for name in article.authors:
                if _SUSPECT.search(name):
                    counts["suspect after"] += 1
                    left.append(f"  {os.path.relpath(path, directory)}: {name!r}")
            for label in article.tags + article.categories:
                counts["labels"] += 1
                counts["labels with , or ;"] += bool(re.search(r"[,;]", label))
            if declared is None:
                break
            counts["declared language"] += 1
            guess = identify_language(
                article.text, identifier, cfg.normalize.min_language_confidence
            )
            if guess is not None and guess != declared:
                counts["text language differs"] += 1
                counts[f"chose {'text' if article.language == guess else 'declared'}"] += 1
                _, probability = identifier.classify(article.text)
                disagreements.append(
                    f"  {os.path.relpath(path, directory)}: declared {declared}, text {guess}"
                    f" (p={probability:.3f}), chose {article.language}"
                )
            break
    seconds = time.perf_counter() - started
    print(f"metadata on {directory}: {counts['pages']} articles ({seconds:.0f} s)")
    print(
        f"authors with a date, weekday, month or role word: {counts['suspect before']} of"
        f" {counts['authors before']} before cleaning, {counts['suspect after']} of"
        f" {counts['authors after']} written"
    )
    print("\n".join(left))
    print(f"labels with a comma or semicolon: {counts['labels with , or ;']} of {counts['labels']}")
    print(
        f"declared language vs text (py3langid p >= {cfg.normalize.min_language_confidence}):"
        f" {counts['text language differs']} of {counts['declared language']} differ; chose the"
        f" text's {counts['chose text']}, the declared {counts['chose declared']}"
        f" (override at p >= {cfg.normalize.override_language_confidence})"
    )
    print("\n".join(disagreements))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / "shared" / "data"))
