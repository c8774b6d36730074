"""Ablation of the extraction settings on the labelled text sets (shingle F1 and snippet F1).

    python benchmarks/extraction_ablation.py [DATA ...] [--jobs N] [--only NAME ...]

DATA as for ``news-ingest eval-extraction`` (default ../shared/data); the date sets are left
out (dates do not depend on these settings). The baselines (trafilatura default and
favor_precision, comments off) run once; then the pipeline once per setting. Each row gives the
setting's figure on every set and on both halves, and its difference to the reference setting
(the first row). A setting may become a default only when it is ahead of the reference on every
set and both halves ("wins" column); the README reports the whole table.
"""

from __future__ import annotations

import argparse
import os
import sys

from news_ingest.pipeline import config
from news_ingest.pipeline.eval_extraction import (
    BASELINES,
    DATES,
    HALVES,
    PIPELINE,
    PageResult,
    find_sets,
    run_all,
    select,
    set_figures,
)

RULES_OFF = {
    "favor_precision": False,
    "drop_title_block": False,
    "max_link_density": None,
    "second_opinion": False,
    "block_classifier": False,
}

# The first row is the reference each other row is compared with.
VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("default mode, rules off", RULES_OFF),
    ("precision mode, rules off", {**RULES_OFF, "favor_precision": True}),
    # in-sample on the dev sets (the packaged model saw them): the honest figures are the
    # cross-validated ones of benchmarks/train_block_model.py
    ("+ block classifier (in-sample)", {**RULES_OFF, "block_classifier": True}),
    ("+ title block", {**RULES_OFF, "drop_title_block": True}),
    ("+ link density 0.5", {**RULES_OFF, "max_link_density": 0.5}),
    ("+ link density 0.8", {**RULES_OFF, "max_link_density": 0.8}),
    ("+ readability, min_agreement 0.5", {**RULES_OFF, "second_opinion": True}),
    ("no tables", {**RULES_OFF, "include_tables": False}),
    ("deduplicate", {**RULES_OFF, "deduplicate": True}),
    (
        "all three rules (the 0.1 defaults)",
        {"drop_title_block": True, "max_link_density": 0.5, "second_opinion": True},
    ),
]


def _cells(fig: dict, part: str) -> float:
    return float(fig["systems"][PIPELINE][part]["value"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="*", default=[os.path.join("..", "shared", "data")])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--only", action="append", help="only settings whose name starts so")
    args = ap.parse_args(argv)
    sets = [s for s in select(find_sets(args.data), None, args.limit) if s.kind != DATES]
    base = run_all(sets, config.load(), args.jobs, baselines=True)
    variants = [
        (name, over)
        for name, over in VARIANTS
        if not args.only or name == VARIANTS[0][0] or any(name.startswith(o) for o in args.only)
    ]
    header = f"{'setting':46s}" + "".join(
        f"{s.name[:12] + ' ' + part:>17s}" for s in sets for part in ("all", *HALVES)
    )
    print(header + "   wins")
    base_figures = [set_figures(s, base, 1) for s in sets]
    for baseline in BASELINES[sets[0].kind]:
        cells = "".join(
            f"{fig['systems'][baseline][part]['value']:>17.4f}"
            for fig in base_figures
            for part in ("all", *HALVES)
        )
        print(f"{baseline:46s}" + cells, flush=True)
    reference: dict[tuple[str, str], float] = {}
    for name, over in variants:
        results = run_all(sets, config.load(overrides={"extract": over}), args.jobs, False)
        merged = {
            key: PageResult(
                r.set_name, r.key, {**base[key].outputs, PIPELINE: r.outputs[PIPELINE]}, r.rejected
            )
            for key, r in results.items()
        }
        row, wins = [], True
        for s in sets:
            fig = set_figures(s, merged, 1)
            for part in ("all", *HALVES):
                value = _cells(fig, part)
                if name == variants[0][0]:
                    reference[(s.name, part)] = value
                    row.append(f"{value:>17.4f}")
                else:
                    delta = value - reference[(s.name, part)]
                    wins = wins and delta > 0
                    row.append(f"{value:>9.4f} {delta:+.4f}"[:17].rjust(17))
        flag = "" if name == variants[0][0] else ("  yes" if wins else "   no")
        print(f"{name:46s}" + "".join(row) + flag, flush=True)


if __name__ == "__main__":
    sys.exit(main())
