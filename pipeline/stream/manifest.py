"""A stream's end: every table gets a file, and the manifest is written (stream-only).

The manifest (``OUT/_manifests/<run_id>.json``, then ``OUT/_manifest.json``) is written after
every file it lists, as a batch run's: it is the stream's commit marker, locally and on an
object store, and ``news-ingest load`` reads only the files a manifest lists."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

from news_ingest.pipeline import __version__, manifest
from news_ingest.pipeline.config import Config
from news_ingest.pipeline.stream.state import table_files
from news_ingest.transforms import files as fs
from news_ingest.transforms.schema import SCHEMA_VERSION, TABLES, UTC
from news_ingest.transforms.sinks import write_parquet

RUNNER = "BundleBasedDirectRunner"


def finalize_tables(output: str, run_id: str, started: dt.datetime) -> dict[str, list[str]]:
    """This run's files per table; a table without any gets one empty file with its schema."""
    files: dict[str, list[str]] = {}
    for name, schema in TABLES.items():
        found = table_files(output, name, run_id)
        if not found:
            path = fs.join(
                output,
                name,
                f"ingest_date={started.date().isoformat()}",
                f"part-{run_id}-empty.parquet",
            )
            write_parquet(schema.empty_table(), name, path)
            found = [path]
        files[name] = found
    return files


def write_manifest(
    cfg: Config,
    output: str,
    run_id: str,
    started_at: dt.datetime,
    started: float,
    files: dict[str, list[str]],
    stats: Any,
    mode: str,
    stopped_by: str | None,
) -> dict[str, Any]:
    finished = dt.datetime.now(UTC)
    seconds = time.time() - started
    counts = manifest.table_counts(files)
    documents = sum(counts.values())
    windows = sorted(
        {
            fs.basename(p).split("-w", 1)[1][:16]
            for v in files.values()
            for p in v
            if "-w" in fs.basename(p)
        }
    )
    body: dict[str, Any] = {
        "run_id": run_id,
        "mode": mode,
        "status": "succeeded",
        "stopped_by": stopped_by,
        "started_at": started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 3),
        "docs_per_s": round(documents / seconds, 2) if seconds > 0 else 0.0,
        "pipeline_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "runner": RUNNER,
        "workers": 1,
        "output": output,
        "ingest_date": started_at.date().isoformat(),
        "inputs": {"documents": documents, "items": stats.items, "specs": list(cfg.inputs)},
        "counts": counts,
        "stream": {
            "rounds": stats.rounds,
            "items": stats.items,
            "skipped_seen": stats.skipped_seen,
            "polls": dict(sorted(stats.polls.items())),
            "windows": windows,
            "late_files": sum(1 for v in files.values() for p in v if "-late-" in p),
            "settings": dataclasses.asdict(cfg.stream),
        },
        "stages": {},
        "dead_letter_reasons": manifest.dead_letter_reasons(files["dead_letters"]),
        "top_rules": manifest.top_rules(files["articles"]),
        "files": manifest.relative_files(output, files),
        "config": dataclasses.asdict(cfg),
    }
    manifest.write_manifest(output, body)
    return body


def summary_lines(body: dict[str, Any]) -> list[str]:
    """The run summary of a stream or replay manifest, as printed by the CLI."""
    lines = manifest.summary_lines(body)
    lines[0] = lines[0].replace("news-ingest run", f"news-ingest {body['mode']}", 1)
    info = body["stream"]
    lines.insert(
        1,
        f"  {body['mode']}: {info['rounds']} rounds, {info['items']} new items, "
        f"{len(info['windows'])} windows, {info['late_files']} late files, "
        f"stopped by {body['stopped_by']}",
    )
    return lines
