"""The run manifest (``OUT/_manifest.json``, and one per run under ``OUT/_manifests/``) and the
run summary printed at the end of a run."""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import pyarrow.parquet as pq
from news_ingest.transforms import atomic
from news_ingest.transforms.schema import SCHEMA_VERSION

MANIFEST = "_manifest.json"
MANIFESTS = "_manifests"


def table_counts(files: dict[str, list[str]]) -> dict[str, int]:
    """Rows per table, read from the Parquet footers of the committed files."""
    return {
        name: sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
        for name, paths in files.items()
    }


def dead_letter_reasons(paths: list[str]) -> dict[str, int]:
    """Counts of dead letters per ``stage/reason``."""
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        table = pq.read_table(path, columns=["stage", "reason"])
        for stage, reason in zip(
            table.column("stage").to_pylist(), table.column("reason").to_pylist(), strict=True
        ):
            counts[f"{stage}/{reason}"] += 1
    return dict(counts.most_common())


def top_rules(paths: list[str], limit: int = 10) -> dict[str, int]:
    """The cleaning rules that fired most often across the kept articles."""
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        for rules in pq.read_table(path, columns=["rules_fired"]).column("rules_fired").to_pylist():
            counts.update(rules or [])
    # ties by name: the same rules as the writers' counters give (split.rules_fired)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def write_manifest(output: str, manifest: dict[str, Any]) -> str:
    """Write the manifest of a run (atomically) and make it the output's current manifest."""
    os.makedirs(os.path.join(output, MANIFESTS), exist_ok=True)
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    per_run = os.path.join(output, MANIFESTS, f"{manifest['run_id']}.json")
    for path in (per_run, os.path.join(output, MANIFEST)):
        atomic.write_text(path, body)
    return per_run


def update_manifest(output: str, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set keys in the manifest of ``run_id`` (and in the current one when it is that run's)."""
    body = {**read_manifest(output, run_id), **changes}
    targets = [os.path.join(output, MANIFESTS, f"{run_id}.json")]
    current = os.path.join(output, MANIFEST)
    if os.path.exists(current) and read_manifest(output).get("run_id") == run_id:
        targets.append(current)
    text = json.dumps(body, indent=2, sort_keys=True, default=str) + "\n"
    for path in targets:
        atomic.write_text(path, text)
    return body


def read_manifest(output: str, run_id: str | None = None) -> dict[str, Any]:
    path = (
        os.path.join(output, MANIFESTS, f"{run_id}.json")
        if run_id
        else os.path.join(output, MANIFEST)
    )
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """The short human summary of a run."""
    counts = manifest["counts"]
    lines = [
        f"news-ingest run {manifest['run_id']}: {manifest['status']} in {manifest['seconds']:.1f} s "
        f"({manifest['docs_per_s']:.1f} docs/s, runner {manifest['runner']})",
        f"  inputs        {manifest['inputs']['documents']:>8}",
        f"  articles      {counts.get('articles', 0):>8}",
        f"  duplicates    {counts.get('duplicates', 0):>8}",
        f"  dead letters  {counts.get('dead_letters', 0):>8}",
    ]
    stages = manifest.get("stages") or {}
    if stages:
        lines.append("  per stage:")
        for stage, values in stages.items():
            shown = ", ".join(f"{k} {v}" for k, v in values.items())
            lines.append(f"    {stage:<10} {shown}")
    if manifest.get("dead_letter_reasons"):
        lines.append("  dead-letter reasons:")
        lines += [f"    {k:<28} {v}" for k, v in manifest["dead_letter_reasons"].items()]
    if manifest.get("top_rules"):
        lines.append("  top cleaning rules:")
        lines += [f"    {k:<28} {v}" for k, v in manifest["top_rules"].items()]
    budget = manifest.get("error_budget") or {}
    if budget.get("exceeded"):
        withheld = manifest.get("withheld") or {}
        lines.append(
            f"  ERROR BUDGET EXCEEDED: {budget['failed']} of {budget['records']} records failed "
            f"({budget['failure_ratio']:.1%} > {budget['max_failure_ratio']:.1%}); "
            f"{withheld.get('articles', 0)} articles and {withheld.get('duplicates', 0)} "
            "duplicates not committed, dead letters committed"
        )
    if manifest.get("replay_of"):
        lines.append(
            f"  replay of run {manifest['replay_of']} "
            f"({manifest.get('excluded_already_ingested', 0)} rows already ingested, skipped)"
        )
    lines.append(f"  output: {manifest['output']}")
    return lines


def exit_code(manifest: dict[str, Any]) -> int:
    """0 for a run that succeeded, 1 for one that stopped on its error budget."""
    return 0 if manifest["status"] == "succeeded" else 1


__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "dead_letter_reasons",
    "exit_code",
    "read_manifest",
    "summary_lines",
    "table_counts",
    "top_rules",
    "update_manifest",
    "write_manifest",
]
