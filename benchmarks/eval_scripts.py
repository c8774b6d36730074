"""Snippet F1 per writing system on a snippet-eval set, through read -> extract -> clean.

Each page is put in the group of the script most of its "with" snippets' letters are in
(Han and kana as CJK); scoring is trafilatura's snippet scoring (whitespace normalised, counts
summed over the pages of a group). Run from the repository root; compare two checkouts by
running this file in each (with that checkout first on PYTHONPATH)::

    python benchmarks/eval_scripts.py ../shared/data/snippet-eval [--config FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import unicodedata

from news_ingest.pipeline import config
from news_ingest.pipeline.eval_extraction import predict
from news_ingest.pipeline.graph import extract_options, rule_packs
from news_ingest.transforms.clean import RuleSet

_CJK = ("CJK", "HIRAGANA", "KATAKANA")


def script_of(snippets: list[str]) -> str:
    """The script most letters of ``snippets`` are in (Unicode name prefix; CJK for Han/kana)."""
    letters: collections.Counter[str] = collections.Counter()
    for ch in "".join(snippets):
        if ch.isalpha():
            name = unicodedata.name(ch, "UNKNOWN").split()[0]
            letters["CJK" if name in _CJK else name] += 1
    return letters.most_common(1)[0][0] if letters else "NONE"


def _norm(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    cfg = config.load(args.config)
    options = extract_options(cfg)
    # (a checkout older than clean.min_repeat_words has its fixed default)
    repeat = getattr(cfg.clean, "min_repeat_words", None)
    rules = RuleSet(*rule_packs(cfg), **({} if repeat is None else {"min_repeat_words": repeat}))
    with open(os.path.join(args.directory, "snippets.json"), encoding="utf-8") as fh:
        labels = json.load(fh)
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for key, label in sorted(labels.items()):
        path = os.path.join(args.directory, "html", f"{key}.html.gz")
        text, _ = predict(path, label.get("url"), cfg, options, rules)
        text = _norm(text)
        page = collections.Counter(
            tp=sum(_norm(s) in text for s in label["with"]),
            fn=sum(_norm(s) not in text for s in label["with"]),
            fp=sum(_norm(s) in text for s in label["without"]),
            pages=1,
        )
        counts[script_of(label["with"])] += page
        counts["all"] += page
    print(f"{'script':<10} {'pages':>5} {'tp':>5} {'fp':>5} {'fn':>5} {'F1':>7}")
    for name, c in sorted(counts.items(), key=lambda item: (item[0] == "all", -item[1]["pages"])):
        f1 = 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] else 0.0
        print(f"{name:<10} {c['pages']:>5} {c['tp']:>5} {c['fp']:>5} {c['fn']:>5} {f1:>7.4f}")


if __name__ == "__main__":
    main()
