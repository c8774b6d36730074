"""Ablation of the extraction settings on an article-extraction benchmark directory.

    python benchmarks/extraction_ablation.py DIR

Prints F1 / precision / recall of each setting on all pages and on the two fixed halves A and B
(a stable hash split of the page keys), then a two-fold check of the one tuned threshold
(max_link_density): the value chosen on one half is scored on the other. The first row is plain
``trafilatura.extract(html)``, the benchmark's published baseline, which validates the metric.
"""

from __future__ import annotations

import gzip
import sys

from pipeline import config
from pipeline.eval_extraction import Score, evaluate, half_of, load_benchmark, score

OFF = {
    "drop_title_block": False,
    "max_link_density": None,
    "second_opinion": False,
}

VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("pipeline, no rules", OFF),
    ("  + favor_precision", {**OFF, "favor_precision": True}),
    ("  + title block", {**OFF, "drop_title_block": True}),
    ("  + link density 0.5", {**OFF, "max_link_density": 0.5}),
    ("  + second opinion", {**OFF, "second_opinion": True}),
    ("title + link density 0.3", {"max_link_density": 0.3, "second_opinion": False}),
    ("title + link density 0.5", {"max_link_density": 0.5, "second_opinion": False}),
    ("title + link density 0.7", {"max_link_density": 0.7, "second_opinion": False}),
    ("title + link density 0.9", {"max_link_density": 0.9, "second_opinion": False}),
    ("all, link density 0.3", {"max_link_density": 0.3}),
    ("all, link density 0.5 (default)", {}),
    ("all, link density 0.7", {"max_link_density": 0.7}),
    ("all, link density 0.9", {"max_link_density": 0.9}),
    ("all, min_agreement 0.3", {"min_agreement": 0.3}),
    ("all, min_agreement 0.7", {"min_agreement": 0.7}),
    ("all + favor_precision", {"favor_precision": True}),
]


def _row(name: str, total: Score, halves: dict[str, Score]) -> str:
    cells = [f"{total.f1:.4f} {total.precision:.4f} {total.recall:.4f}"]
    cells += [f"{halves[h].f1:.4f}" for h in "AB"]
    return f"{name:34s} " + "  ".join(cells)


def plain_trafilatura(directory: str) -> tuple[Score, dict[str, Score]]:
    import trafilatura

    pages = load_benchmark(directory)
    truth = {k: p["articleBody"] for k, p in pages.items()}
    preds = {}
    for key, page in pages.items():
        with gzip.open(page["path"]) as fh:
            html = fh.read().decode("utf-8", "replace")
        preds[key] = trafilatura.extract(html) or ""
    halves = {h: score({k: v for k, v in truth.items() if half_of(k) == h}, preds)[0] for h in "AB"}
    return score(truth, preds)[0], halves


def main(directory: str) -> None:
    print(f"{'setting':34s} {'F1     P      R':20s}  F1(A)   F1(B)")
    print(_row("plain trafilatura.extract", *plain_trafilatura(directory)), flush=True)
    by_density: dict[float, dict[str, float]] = {}
    for name, over in VARIANTS:
        ev = evaluate(directory, config.load(overrides={"extract": over}))
        print(_row(name, ev.total, ev.halves), flush=True)
        if name.startswith("all, link density"):
            density = float(over.get("max_link_density", 0.5))  # type: ignore[arg-type]
            by_density[density] = {h: ev.halves[h].f1 for h in "AB"}
    for tune, test in (("A", "B"), ("B", "A")):
        best = max(by_density, key=lambda d: (by_density[d][tune], -d))
        print(
            f"two-fold: link density tuned on {tune} -> {best}; "
            f"F1 on {test} {by_density[best][test]:.4f}"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
