"""Parquet sinks that work on every runner, and the atomic commit of a run's files.

Small rows (dead letters, index entries) are keyed by a shard number and grouped, and each group
is written from ``process`` as it is iterated, row group by row group (Beam's DaskRunner loses
what ``finish_bundle`` emits, so ``WriteToParquet`` cannot be used). The articles and duplicates
tables are written from staged rows by ``news_ingest.transforms.split``. Shards are
written under ``OUT/_staging/<run_id>/`` and only moved into the table folders by
``commit_run`` once the whole pipeline has finished, so a crashed run leaves nothing partial
under ``OUT/articles``; ``commit_run`` first removes the files an earlier attempt of the same
run id committed, so a rerun replaces rather than adds.

Every path goes through ``news_ingest.transforms.files``, so ``OUT`` may be a local folder or a
prefix on an object store (``s3://``, ``gs://``). Locally a commit is a rename per file; an object
store has no rename, so there a commit copies each staged file into its table folder and then
deletes the staging area, and the run's files become visible one by one: the run's manifest,
written after them, is the commit marker a reader must go by.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from news_ingest.transforms import files
from news_ingest.transforms.atomic import atomic_path
from news_ingest.transforms.dedup import IndexEntry, is_live
from news_ingest.transforms.rowgroups import (
    COMPRESSION,
    OutputValidationError,
    RowGroupWriter,
    check_footer,
    validate_table,
    write_rows,
)
from news_ingest.transforms.schema import ROW_ID, TABLES, stable_id

STAGING = "_staging"

__all__ = ["COMPRESSION", "OutputValidationError", "validate_table"]


def shard_of(row_id: str, shards: int) -> int:
    """Deterministic shard of a row id (independent of process and hash seed)."""
    return int(stable_id("shard", row_id)[:8], 16) % shards


def shard_name(run_id: str, shard: int) -> str:
    return f"part-{run_id}-{shard:05d}.parquet"


def staging_dir(output: str, run_id: str) -> str:
    return files.join(output, STAGING, run_id)


def write_parquet(table: pa.Table, name: str, path: str) -> None:
    """Write ``table`` to ``path`` through a temporary name: validated first, and its footer
    checked (schema, rows) before it is renamed into place (uploaded, on an object store)."""
    validate_table(table, name)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=COMPRESSION)
        check_footer(tmp, TABLES[name], name, table.num_rows)


def read_parquet(path: str, **options: Any) -> pa.Table:
    """Read a Parquet file, local or on an object store (``options`` go to ``pq.read_table``)."""
    if files.is_remote(path):
        return pq.read_table(pa.BufferReader(files.read_bytes(path)), **options)
    return pq.read_table(path, **options)


def parquet_metadata(path: str) -> pq.FileMetaData:
    """The footer of a Parquet file, local or on an object store (only the footer is read)."""
    if files.is_remote(path):
        with files.open_read(path) as fh:
            return pq.ParquetFile(fh).metadata
    return pq.ParquetFile(path).metadata


def write_shard(
    name: str, rows: Iterable[dict[str, Any]], directory: str, run_id: str, shard: int
) -> tuple[str, str, int]:
    """Write one shard of table ``name`` as its rows are iterated (in their order; each row
    group validated) and return (table, path, rows)."""
    path = files.join(directory, shard_name(run_id, shard))
    return name, path, write_rows(name, rows, path)


class _WriteShard(beam.DoFn):
    def __init__(self, name: str, directory: str, run_id: str):
        self.name = name
        self.directory = directory
        self.run_id = run_id

    def process(
        self, keyed: tuple[int, Iterable[dict[str, Any]]]
    ) -> Iterable[tuple[str, str, int]]:
        shard, rows = keyed
        yield write_shard(self.name, rows, self.directory, self.run_id, shard)


def check_writer_args(name: str, run_id: str, shards: int) -> None:
    """Check a table writer's arguments when the graph is built.

    Raises:
        ValueError: an unknown table, fewer than one shard, or no run id.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    if not run_id:
        raise ValueError("run_id is required")


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
        check_writer_args(name, run_id, shards)
        self.name = name
        self.directory = files.join(staging_dir(output, run_id), name)
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
    files.remove_tree(staging_dir(output, run_id))


def committed_files(output: str, name: str, run_id: str | None = None) -> list[str]:
    """The committed Parquet files of a table (of one run when ``run_id`` is given)."""
    found = files.glob(files.join(output, name, "ingest_date=*", "*.parquet"))
    if run_id is None:
        return found
    # Run ids may contain '-': match the whole name, so run "a" never claims run "a-b"'s files.
    own = re.compile(rf"part-{re.escape(run_id)}-\d{{5}}\.parquet")
    return [f for f in found if own.fullmatch(files.basename(f))]


def commit_run(output: str, run_id: str, ingest_date: dt.date) -> dict[str, list[str]]:
    """Move the staged shards of ``run_id`` into the table folders, replacing that run's files.

    A table with no rows gets one empty file with its schema, so every table exists for loaders.
    Returns the committed paths per table. On an object store each file is copied, then its
    staged copy deleted (``files.rename``): a crash part-way leaves whole files of the run in
    the table folders and no manifest; the rerun removes them before it commits its own.
    """
    stage = staging_dir(output, run_id)
    committed: dict[str, list[str]] = {}
    for name, schema in TABLES.items():
        staged = files.glob(files.join(stage, name, "*.parquet"))
        if not staged:
            empty = files.join(stage, name, shard_name(run_id, 0))
            write_parquet(schema.empty_table(), name, empty)
            staged = [empty]
        for old in committed_files(output, name, run_id):
            files.remove(old)
        target_dir = files.join(output, name, f"ingest_date={ingest_date.isoformat()}")
        files.makedirs(target_dir)
        committed[name] = []
        for path in staged:
            target = files.join(target_dir, files.basename(path))
            files.rename(path, target)
            committed[name].append(target)
    files.remove_tree(stage)
    files.remove_empty_dir(files.join(output, STAGING))
    return committed


# --------------------------------------------------------------------------------------------
# The one cross-run dedup index, read and written by batch runs and streams alike: one folder
# per run, ``<index>/run=<run_id>/part-*.parquet``. A batch run stages its files under
# ``<index>/_staging/<run_id>/`` and renames them into place by ``commit_index`` after the
# tables are committed (a crash in between makes the next run re-ingest this run's articles as
# new, never lose any); a rerun of a run id replaces that run's folder. A stream adds one file
# per round to its run's folder once the round's tables are written (``stream_index_path``).
# ``prune_index`` deletes files whose entries are all older than the TTL. On an object store
# the "rename" of the staged folder is a copy of each file and a delete (``files.rename``).

INDEX_DIR = "_index"
_RUN_PREFIX = "run="

INDEX_SCHEMA = pa.schema(
    [
        pa.field("article_id", pa.string(), nullable=False),
        pa.field("canonical_url", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("published_at", pa.timestamp("us", tz="UTC")),
        pa.field("word_count", pa.int32(), nullable=False),
        pa.field("signature", pa.binary()),
        pa.field("shingle_count", pa.int32(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        # null in files of index version 1 (read with this schema, the column comes back null)
        pa.field("indexed_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"table": "dedup_index", "producer": "news-ingest", "index_version": "2"},
)


def index_dir(output: str, configured: str | None = None) -> str:
    """The index folder: the configured path, else ``OUT/_index``."""
    return configured or files.join(output, INDEX_DIR)


def index_staging_dir(index: str, run_id: str) -> str:
    return files.join(index, STAGING, run_id)


def write_index_file(entries: Iterable[IndexEntry], path: str) -> str:
    """Write index entries to ``path`` atomically, row group by row group as they are
    iterated; returns the path."""
    with atomic_path(path) as tmp:
        writer = RowGroupWriter(tmp, INDEX_SCHEMA)
        try:
            writer.add_rows(dataclasses.asdict(e) for e in entries)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return path


def write_index_shard(entries: Iterable[IndexEntry], directory: str, shard: int) -> str:
    """Write one staged index shard; returns its path."""
    return write_index_file(entries, files.join(directory, f"part-{shard:05d}.parquet"))


def stream_index_path(index: str, run_id: str, label: str) -> str:
    """Where a stream's round adds its kept articles to the index (``label``: the round)."""
    return files.join(index, f"{_RUN_PREFIX}{run_id}", f"part-{label}.parquet")


def newest_entry_time(path: str) -> dt.datetime | None:
    """The latest ``indexed_at`` of an index file, from its footer's column statistics (the
    rows are not read); None when unknown (an old file, or an entry without a time)."""
    meta = parquet_metadata(path)
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "indexed_at" not in names:
        return None
    column = names.index("indexed_at")
    newest: dt.datetime | None = None
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return None
        value = stats.max
        if isinstance(value, int):  # pyarrow gives raw micros for some writers
            value = dt.datetime.fromtimestamp(value / 1e6, tz=dt.UTC)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        newest = value if newest is None else max(newest, value)
    return newest


def prune_index(index: str, not_before: dt.datetime) -> list[str]:
    """Delete the committed index files whose entries were all ingested before ``not_before``
    (and run folders left empty); returns the deleted files. Files of other entries stay:
    their expired entries are skipped on reading."""
    removed = []
    for path in index_files(index):
        newest = newest_entry_time(path)
        if newest is not None and newest < not_before:
            files.remove(path)
            removed.append(path)
    if not files.is_remote(index):  # an object store has no folders to leave empty
        for folder in glob.glob(os.path.join(index, f"{_RUN_PREFIX}*")):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
    return removed


class _WriteIndexShard(beam.DoFn):
    def __init__(self, directory: str):
        self.directory = directory

    def process(self, keyed: tuple[int, Iterable[IndexEntry]]) -> Iterable[str]:
        yield write_index_shard(keyed[1], self.directory, keyed[0])


class WriteIndex(beam.PTransform):
    """IndexEntry -> Parquet shards in the index's staging folder for ``run_id``, each entry
    stamped with the run and ``indexed_at`` (when the run ingested it)."""

    def __init__(self, index: str, run_id: str, indexed_at: dt.datetime, shards: int = 1):
        super().__init__()
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        if not run_id:
            raise ValueError("run_id is required")
        self.directory = index_staging_dir(index, run_id)
        self.run_id = run_id
        self.indexed_at = indexed_at
        self.shards = shards

    def expand(self, entries):  # type: ignore[no-untyped-def]
        run_id, at, shards = self.run_id, self.indexed_at, self.shards
        return (
            entries
            | "StampRun" >> beam.Map(lambda e: dataclasses.replace(e, run_id=run_id, indexed_at=at))
            | "KeyByShard" >> beam.Map(lambda e: (shard_of(e.article_id, shards), e))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteIndexShard(self.directory))
        )


def prepare_index(index: str, run_id: str) -> None:
    """Clear what an interrupted attempt of ``run_id`` left in the index's staging folder."""
    files.remove_tree(index_staging_dir(index, run_id))


def commit_index(index: str, run_id: str) -> list[str]:
    """Move the staged index of ``run_id`` into ``<index>/run=<run_id>/``, replacing an earlier
    attempt's; returns the committed files (one empty file when the run kept nothing)."""
    stage = index_staging_dir(index, run_id)
    if not files.glob(files.join(stage, "*.parquet")):
        write_index_shard([], stage, 0)
    target = files.join(index, f"{_RUN_PREFIX}{run_id}")
    files.remove_tree(target)
    files.rename(stage, target)
    files.remove_empty_dir(files.join(index, STAGING))
    return files.glob(files.join(target, "*.parquet"))


def index_files(index: str, exclude_run: str | None = None) -> list[str]:
    """The committed index files of every run but ``exclude_run`` (listed on the launcher),
    run folder by run folder."""
    found = files.glob(files.join(index, f"{_RUN_PREFIX}*", "*.parquet"))
    by_run = sorted(found, key=lambda path: (_run_folder(path), files.basename(path)))
    if exclude_run is None:
        return by_run
    return [path for path in by_run if _run_folder(path) != f"{_RUN_PREFIX}{exclude_run}"]


def _run_folder(path: str) -> str:
    """The ``run=<run_id>`` folder name of an index file's path."""
    return files.basename(files.parent(path))


def read_index_file(
    path: str, exclude_run: str | None = None, not_before: dt.datetime | None = None
) -> Iterator[IndexEntry]:
    """The live entries of one index file: an entry of ``exclude_run`` is skipped (a rerun must
    not find its own earlier attempt), and so is one ingested before ``not_before`` (the TTL)."""
    table = read_parquet(path, schema=INDEX_SCHEMA)
    for row in table.to_pylist():
        if exclude_run is not None and row["run_id"] == exclude_run:
            continue
        entry = IndexEntry(**row)
        if is_live(entry, not_before):
            yield entry


def read_index(
    paths: Iterable[str], exclude_run: str | None = None, not_before: dt.datetime | None = None
) -> Iterator[IndexEntry]:
    """The live entries of several index files (on the launcher: a stream's start)."""
    for path in paths:
        yield from read_index_file(path, exclude_run, not_before)


class _ReadIndexFile(beam.DoFn):
    def __init__(self, exclude_run: str | None, not_before: dt.datetime | None):
        self.exclude_run = exclude_run
        self.not_before = not_before

    def process(self, path: str) -> Iterable[IndexEntry]:
        yield from read_index_file(path, self.exclude_run, self.not_before)


class ReadIndex(beam.PTransform):
    """Listed index files -> live IndexEntry (read inside the pipeline, one file per element)."""

    def __init__(
        self,
        paths: list[str],
        exclude_run: str | None = None,
        not_before: dt.datetime | None = None,
    ):
        super().__init__()
        self.paths = list(paths)
        self.exclude_run = exclude_run
        self.not_before = not_before

    def expand(self, pbegin):  # type: ignore[no-untyped-def]
        return (
            pbegin
            | "ListedIndexFiles" >> beam.Create(self.paths)
            | "ReadIndexFiles" >> beam.ParDo(_ReadIndexFile(self.exclude_run, self.not_before))
        )
