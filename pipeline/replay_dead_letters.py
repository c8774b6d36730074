"""``news-ingest replay-dead-letters OUT``: re-run the inputs of a run's dead letters.

Once the cause of a run's dead letters is fixed (a bug in a stage, a cap in the config, a file
repaired in place), the replay runs the inputs those dead letters came from again as a new run
in the same output folder. The new run's manifest says ``replay_of: <run id>`` and the
original's gains ``replayed_by: [<run id>, ...]``. Inputs that already succeeded are not
ingested again: only the dead letters' inputs are read, and any article whose id the original
run or an earlier replay of it already committed is dropped before commit (a feed file can hold
both kinds).

The replay starts from the original run's configuration, overlaid by ``--config`` (the fix).
``OUT`` and the inputs may be local or on an object store: every path goes through
``news_ingest.transforms.files``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any

from news_ingest.pipeline import batch, config, manifest
from news_ingest.transforms import files, sinks
from news_ingest.transforms.schema import UTC


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a replay of ``run_id`` will read, and what it cannot."""

    run_id: str
    inputs: tuple[str, ...]
    missing: tuple[str, ...]
    dead_letters: int


def dead_letter_rows(output: str, run_id: str, reasons: frozenset[str] = frozenset()) -> list[dict]:
    """The committed dead letters of ``run_id`` (only those with one of ``reasons`` if given)."""
    rows: list[dict[str, Any]] = []
    for path in sinks.committed_files(output, "dead_letters", run_id):
        rows += sinks.read_parquet(path, columns=["source_ref", "stage", "reason"]).to_pylist()
    return [r for r in rows if not reasons or r["reason"] in reasons]


def plan(output: str, run_id: str, reasons: frozenset[str] = frozenset()) -> Plan:
    """The input files behind the dead letters of ``run_id``; refs that are no file are missing."""
    rows = dead_letter_rows(output, run_id, reasons)
    refs = sorted({r["source_ref"] for r in rows})
    found = {r for r in refs if is_input_file(r)}
    return Plan(
        run_id=run_id,
        inputs=tuple(r for r in refs if r in found),
        missing=tuple(r for r in refs if r not in found),
        dead_letters=len(rows),
    )


def is_input_file(ref: str) -> bool:
    """Whether a dead letter's ``source_ref`` is a file that is still there (local or an
    object); a feed entry or a fetched page (an http(s) URL) is none."""
    if ref.startswith(("http://", "https://")):
        return False
    if files.is_remote(ref):
        return files.is_remote_file(ref)
    return os.path.isfile(ref)


def ingested_ids(output: str, run_ids: list[str]) -> frozenset[str]:
    """Article ids the given runs committed to ``articles`` or ``duplicates``."""
    ids: set[str] = set()
    for run_id in run_ids:
        for table in ("articles", "duplicates"):
            for path in sinks.committed_files(output, table, run_id):
                ids.update(sinks.read_parquet(path, columns=["article_id"]).column(0).to_pylist())
    return frozenset(ids)


def replay_config(original: dict[str, Any], output: str, inputs: tuple[str, ...], path: str | None):
    """The original run's config, overlaid by the user's fix, reading only ``inputs``."""
    data = dict(original)
    if path is not None:
        data = config._merge(data, config.read_yaml(path))
    data["inputs"] = list(inputs)
    data["output"] = {**data.get("output", {}), "path": output}
    return config.load(None, data)


def replay(
    output: str,
    run_id: str | None = None,
    config_path: str | None = None,
    new_run_id: str | None = None,
    reasons: frozenset[str] = frozenset(),
    beam_args: list[str] | None = None,
) -> tuple[Plan, batch.RunResult | None]:
    """Replay the dead letters of ``run_id`` (default: the output's current run).

    Returns the plan and the new run's result (None when there was nothing to replay).

    Raises:
        batch.UsageError: the output or the run is unknown.
    """
    try:
        original = manifest.read_manifest(output, run_id)
    except FileNotFoundError as exc:
        raise batch.UsageError(f"no manifest of run {run_id or '(current)'} in {output}") from exc
    run_id = original["run_id"]
    todo = plan(output, run_id, reasons)
    if not todo.inputs:
        return todo, None
    cfg = replay_config(original.get("config", {}), output, todo.inputs, config_path)
    earlier = [run_id, *original.get("replayed_by", [])]
    new_id = new_run_id or f"{batch.new_run_id(dt.datetime.now(UTC))}-replay"
    result = batch.run(
        cfg, new_id, beam_args, replay_of=run_id, exclude_ids=ingested_ids(output, earlier)
    )
    manifest.update_manifest(
        output, run_id, {"replayed_by": [*original.get("replayed_by", []), new_id]}
    )
    details = {
        "dead_letters": todo.dead_letters,
        "inputs": len(todo.inputs),
        "missing_inputs": list(todo.missing),
        "reasons": sorted(reasons),
    }
    body = manifest.update_manifest(output, new_id, {"replay": details})
    return todo, batch.RunResult(manifest=body, manifest_path=result.manifest_path)
