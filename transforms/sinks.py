"""Parquet sinks that work on every runner, and the atomic commit of a run's files.

Rows are keyed by a shard number and grouped, and each group is written from ``process`` (Beam's
DaskRunner loses what ``finish_bundle`` emits, so ``WriteToParquet`` cannot be used). Shards are
written under ``OUT/_staging/<run_id>/`` and only moved into the table folders by
``commit_run`` once the whole pipeline has finished, so a crashed run leaves nothing partial
under ``OUT/articles``; ``commit_run`` first removes the files an earlier attempt of the same
run id committed, so a rerun replaces rather than adds.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schema import ROW_ID, TABLES, stable_id, to_table

STAGING = "_staging"
COMPRESSION = "zstd"


class OutputValidationError(RuntimeError):
    """A written file does not match its table's schema or contract."""


def shard_of(row_id: str, shards: int) -> int:
    """Deterministic shard of a row id (independent of process and hash seed)."""
    return int(stable_id("shard", row_id)[:8], 16) % shards


def shard_name(run_id: str, shard: int) -> str:
    return f"part-{run_id}-{shard:05d}.parquet"


def staging_dir(output: str, run_id: str) -> str:
    return os.path.join(output, STAGING, run_id)


def validate_table(table: pa.Table, name: str) -> None:
    """Check a table against its schema: types, required columns non-null, ids unique.

    Raises:
        OutputValidationError: on the first violation.
    """
    schema = TABLES[name]
    if not table.schema.equals(schema, check_metadata=False):
        raise OutputValidationError(f"{name}: schema differs from the declared schema")
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise OutputValidationError(f"{name}: required column {field.name} has nulls")
    ids = table.column(ROW_ID[name]).to_pylist()
    if len(set(ids)) != len(ids):
        raise OutputValidationError(f"{name}: {ROW_ID[name]} is not unique")


def write_parquet(table: pa.Table, name: str, path: str) -> None:
    """Write ``table`` to ``path`` through a temporary name; read it back and validate first."""
    validate_table(table, name)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        pq.write_table(table, tmp, compression=COMPRESSION)
        validate_table(pq.read_table(tmp), name)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_shard(
    name: str, rows: list[dict[str, Any]], directory: str, run_id: str, shard: int
) -> tuple[str, str, int]:
    """Write one shard of table ``name`` (rows sorted by id) and return (table, path, rows)."""
    rows = sorted(rows, key=lambda r: (r[ROW_ID[name]], r.get("source_ref") or ""))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, shard_name(run_id, shard))
    write_parquet(to_table(rows, TABLES[name]), name, path)
    return name, path, len(rows)


class _WriteShard(beam.DoFn):
    def __init__(self, name: str, directory: str, run_id: str):
        self.name = name
        self.directory = directory
        self.run_id = run_id

    def process(
        self, keyed: tuple[int, Iterable[dict[str, Any]]]
    ) -> Iterable[tuple[str, str, int]]:
        shard, rows = keyed
        yield write_shard(self.name, list(rows), self.directory, self.run_id, shard)


class WriteTable(beam.PTransform):
    """records -> Parquet shards of table ``name`` in the run's staging folder.

    Args:
        name: ``articles``, ``duplicates`` or ``dead_letters``.
        output: the output root.
        run_id: the run id (file names carry it).
        to_row: record -> row dict of the table's schema.
        shards: number of files (and of parallel writers).
    """

    def __init__(
        self,
        name: str,
        output: str,
        run_id: str,
        to_row: Callable[[Any], dict[str, Any]],
        shards: int = 1,
    ):
        super().__init__()
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        if not run_id:
            raise ValueError("run_id is required")
        self.name = name
        self.directory = os.path.join(staging_dir(output, run_id), name)
        self.run_id = run_id
        self.to_row = to_row
        self.shards = shards

    def expand(self, records):  # type: ignore[no-untyped-def]
        key, shards = ROW_ID[self.name], self.shards
        return (
            records
            | "ToRows" >> beam.Map(self.to_row)
            | "KeyByShard" >> beam.Map(lambda row: (shard_of(row[key], shards), row))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteShard(self.name, self.directory, self.run_id))
        )


def prepare_run(output: str, run_id: str) -> None:
    """Clear what an interrupted attempt of ``run_id`` left in staging."""
    shutil.rmtree(staging_dir(output, run_id), ignore_errors=True)


def committed_files(output: str, name: str, run_id: str | None = None) -> list[str]:
    """The committed Parquet files of a table (of one run when ``run_id`` is given)."""
    pattern = shard_name(run_id, 0).replace("00000", "*") if run_id else "*.parquet"
    return sorted(glob.glob(os.path.join(output, name, "ingest_date=*", pattern)))


def commit_run(output: str, run_id: str, ingest_date: dt.date) -> dict[str, list[str]]:
    """Move the staged shards of ``run_id`` into the table folders, replacing that run's files.

    A table with no rows gets one empty file with its schema, so every table exists for loaders.
    Returns the committed paths per table.
    """
    stage = staging_dir(output, run_id)
    committed: dict[str, list[str]] = {}
    for name, schema in TABLES.items():
        staged = sorted(glob.glob(os.path.join(stage, name, "*.parquet")))
        if not staged:
            os.makedirs(os.path.join(stage, name), exist_ok=True)
            empty = os.path.join(stage, name, shard_name(run_id, 0))
            write_parquet(schema.empty_table(), name, empty)
            staged = [empty]
        for old in committed_files(output, name, run_id):
            os.remove(old)
        target_dir = os.path.join(output, name, f"ingest_date={ingest_date.isoformat()}")
        os.makedirs(target_dir, exist_ok=True)
        committed[name] = []
        for path in staged:
            target = os.path.join(target_dir, os.path.basename(path))
            os.replace(path, target)
            committed[name].append(target)
    shutil.rmtree(stage, ignore_errors=True)
    staging_root = os.path.join(output, STAGING)
    if os.path.isdir(staging_root) and not os.listdir(staging_root):
        os.rmdir(staging_root)
    return committed
