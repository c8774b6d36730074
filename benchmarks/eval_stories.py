"""Story grouping quality: the five seeds plus the 121 pages of the article-extraction benchmark.

The benchmark's hand-labelled article bodies are news of different events from November 2019;
a few of them happen to report the same event from different outlets. Those pairs were labelled
by reading their URLs and leads (``SAME_EVENT`` below; a handful of pairs on related but
different events, or opinion pieces on an ongoing event, are ``AMBIGUOUS`` and not scored).
Every other pair is a different story. The seeds are one story.

Scores are pairwise over all scored pairs (after union-find, so transitive links count):
precision = pairs put in one story that are the same event, recall = same-event pairs put in
one story. The pages have no publication time, so the time window cannot help here: this is the
hardest case for precision.

Usage:
    python benchmarks/eval_stories.py PATH/TO/article-extraction [--threshold 0.25]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from news_ingest.transforms.clean import clean_text  # noqa: E402
from news_ingest.transforms.schema import Article  # noqa: E402
from news_ingest.transforms.stories import StoryParams, find_stories  # noqa: E402

SEEDS = Path(__file__).resolve().parents[1] / "seeds"

# URL fragments of the pages that report one event (labelled by hand).
SAME_EVENT = [
    ["doobie-brothers-reunite", "doobie-brothers-michael"],
    ["nasa-finds-water-plumes", "europa-water-vapor"],
    [
        "new-york-state-attorney-general-investigating",
        "new-york-state-attorney-general-reportedly",
    ],
    ["471031-new-york-man", "new-york-man-pleads-guilty-threatening"],
    ["nasa-picks-spacex", "nasa-adds-five-companies"],
    ["home-depot-sales-earnings", "home-depot-stock-earnings"],
    ["newsbeat-50470672", "scooter-braun-frustrated"],
    ["bubonic-plague-china", "three-cases-plague", "hunter-diagnosed-bubonic"],
    ["snooze-cruise", "hibernating-astronauts-smaller"],
    ["duvet-nearly-killed", "bedding-gave-him"],
    ["impeachment-hearings-key-moments", "impeachment-sham"],
    ["google-stadia-red-dead", "stadia-destiny-2", "is-stadia-good"],
]
AMBIGUOUS = [
    ("unpredictable-sondland", "impeachment-hearings-key-moments"),
    ("unpredictable-sondland", "impeachment-sham"),
    ("guardian-view-on-hong", "hong-kong-latest"),
    ("hong-kong-latest", "why-beijing-will-bring"),
    ("guardian-view-on-hong", "why-beijing-will-bring"),
    ("palace-tale-jang-noksu-reviews", "palace-tale-jang-noksu-beauty"),
]


def load(data: Path) -> tuple[list[Article], set[tuple[str, str]], set[tuple[str, str]]]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    articles, url_of = [], {}
    for key, page in sorted(truth.items()):
        articles.append(
            Article(article_id=key, source_kind="html", source_ref=key, text=page["articleBody"])
        )
        url_of[key] = page["url"]
    for path in sorted(SEEDS.glob("*.txt")):
        cleaned = clean_text(path.read_text(encoding="utf-8"))
        articles.append(
            Article(
                article_id=f"seed-{path.stem}",
                source_kind="text",
                source_ref=path.name,
                text=cleaned.text,
            )
        )

    def key_of(fragment: str) -> str:
        (key,) = [k for k, u in url_of.items() if fragment in u]
        return key

    positive: set[tuple[str, str]] = set()
    groups = [[key_of(f) for f in g] for g in SAME_EVENT]
    groups.append([a.article_id for a in articles if a.article_id.startswith("seed-")])
    for group in groups:
        positive.update(tuple(sorted(p)) for p in itertools.combinations(group, 2))  # type: ignore[misc]
    ambiguous = {tuple(sorted((key_of(a), key_of(b)))) for a, b in AMBIGUOUS}
    return articles, positive, ambiguous  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="folder with ground-truth.json (article-extraction)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3])
    parser.add_argument("--lead-words", type=int, default=StoryParams.lead_words)
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "ground-truth.json").exists():
        print(f"eval_stories: no ground-truth.json under {data}; nothing to measure")
        return 0
    articles, positive, ambiguous = load(data)
    print(
        f"{len(articles)} articles, {len(positive)} same-event pairs, "
        f"{len(ambiguous)} ambiguous pairs not scored"
    )
    print(
        f"{'threshold':>9} {'lead':>5} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} "
        f"{'fn':>4} {'seeds one story':>15}"
    )
    for threshold in args.thresholds:
        params = StoryParams(threshold=threshold, lead_words=args.lead_words)
        stories = find_stories(articles, params)
        story = {a.article_id: stories[f"{a.article_id}:{a.source_ref}"] for a in articles}
        tp = fp = fn = 0
        for a, b in itertools.combinations(sorted(story), 2):
            if (a, b) in ambiguous:
                continue
            same, truth = story[a] == story[b], (a, b) in positive
            tp += same and truth
            fp += same and not truth
            fn += truth and not same
        seeds = {s for k, s in story.items() if k.startswith("seed-")}
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(
            f"{threshold:>9} {args.lead_words:>5} {precision:>9.3f} {tp / (tp + fn):>7.3f} "
            f"{tp:>4} {fp:>4} {fn:>4} {str(len(seeds) == 1):>15}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
