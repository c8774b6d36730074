"""The run manifest (``OUT/_manifest.json``, and one per run under ``OUT/_manifests/``) and the
run summary printed at the end of a run.

The per-run manifest ``OUT/_manifests/<run_id>.json`` is the run's commit marker: it is written
after every file of the run is in place, and removed before a rerun of the run id touches the
committed files. A reader goes by the manifests: the files a manifest lists are a whole run;
any other file under the table folders belongs to a run that has not (or not yet) committed,
which on an object store, where a commit copies files one by one, is visible while it commits.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from news_ingest.transforms import atomic, files
from news_ingest.transforms.schema import SCHEMA_VERSION, TABLES
from news_ingest.transforms.sinks import parquet_metadata, read_parquet

MANIFEST = "_manifest.json"
MANIFESTS = "_manifests"


def table_counts(files: dict[str, list[str]]) -> dict[str, int]:
    """Rows per table, read from the Parquet footers of the committed files."""
    return {name: sum(parquet_metadata(p).num_rows for p in paths) for name, paths in files.items()}


def dead_letter_reasons(paths: list[str]) -> dict[str, int]:
    """Counts of dead letters per ``stage/reason``."""
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        table = read_parquet(path, columns=["stage", "reason"])
        for stage, reason in zip(
            table.column("stage").to_pylist(), table.column("reason").to_pylist(), strict=True
        ):
            counts[f"{stage}/{reason}"] += 1
    return dict(counts.most_common())


def top_rules(paths: list[str], limit: int = 10) -> dict[str, int]:
    """The cleaning rules that fired most often across the kept articles."""
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        for rules in read_parquet(path, columns=["rules_fired"]).column("rules_fired").to_pylist():
            counts.update(rules or [])
    # ties by name: the same rules as the writers' counters give (split.rules_fired)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def manifest_path(output: str, run_id: str | None = None) -> str:
    """The manifest of ``run_id`` (``OUT/_manifests/<run_id>.json``), else the current one."""
    if run_id:
        return files.join(output, MANIFESTS, f"{run_id}.json")
    return files.join(output, MANIFEST)


def relative_files(output: str, committed: dict[str, list[str]]) -> dict[str, list[str]]:
    """Committed paths per table as a manifest lists them: relative to the output root."""
    return {name: [files.relative(p, output) for p in paths] for name, paths in committed.items()}


def write_manifest(output: str, manifest: dict[str, Any]) -> str:
    """Write the manifest of a run (atomically) and make it the output's current manifest."""
    files.makedirs(files.join(output, MANIFESTS))
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    per_run = manifest_path(output, manifest["run_id"])
    for path in (per_run, manifest_path(output)):
        atomic.write_text(path, body)
    return per_run


def withdraw(output: str, run_id: str) -> None:
    """Remove the commit marker of ``run_id`` (its manifest, and the current manifest when it
    is that run's) before a rerun replaces the run's files: until the rerun has written its
    own, no manifest lists files that are being replaced."""
    if files.exists(manifest_path(output)) and read_manifest(output).get("run_id") == run_id:
        files.remove(manifest_path(output))
    files.remove(manifest_path(output, run_id))


def update_manifest(output: str, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set keys in the manifest of ``run_id`` (and in the current one when it is that run's)."""
    body = {**read_manifest(output, run_id), **changes}
    targets = [manifest_path(output, run_id)]
    current = manifest_path(output)
    if files.exists(current) and read_manifest(output).get("run_id") == run_id:
        targets.append(current)
    text = json.dumps(body, indent=2, sort_keys=True, default=str) + "\n"
    for path in targets:
        atomic.write_text(path, text)
    return body


def read_manifest(output: str, run_id: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files.read_text(manifest_path(output, run_id)))
    return data


def committed_files(output: str, run_id: str | None = None) -> dict[str, list[str]]:
    """The files the manifests under ``output`` list, per table (those of ``run_id``'s
    manifest only, when given): what a loader reads. Files of a run without a manifest (killed,
    or still committing) are not among them."""
    if run_id:
        path = manifest_path(output, run_id)
        manifests = [path] if files.exists(path) else []
    else:
        manifests = files.glob(files.join(output, MANIFESTS, "*.json"))
    found: dict[str, list[str]] = {name: [] for name in TABLES}
    for path in manifests:
        listed = json.loads(files.read_text(path)).get("files") or {}
        for name, paths in listed.items():
            if name in found:
                found[name].extend(files.join(output, p) for p in paths)
    return {name: sorted(paths) for name, paths in found.items()}


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
    "committed_files",
    "dead_letter_reasons",
    "exit_code",
    "read_manifest",
    "relative_files",
    "summary_lines",
    "table_counts",
    "top_rules",
    "update_manifest",
    "withdraw",
    "write_manifest",
]
