"""The one step that joins decisions back to text: staged rows split by verdict into the
``articles`` and ``duplicates`` tables.

Verdicts (ids, the staged row's place, story id, duplicate_of/kind/similarity) are grouped by
output shard; each shard writer reads the staged files that hold its rows, row group by row
group, keeps its rows, applies the verdicts and the run's stamps, and writes its file row group
by row group (``news_ingest.transforms.rowgroups``). No grouping carries text and no writer
holds a shard. Rows inside a file follow the staged files' order, not ``article_id`` order.
File names are deterministic (``part-<run_id>-<shard:05d>.parquet``): a retried writer
overwrites its file.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from news_ingest.transforms import files
from news_ingest.transforms.rowgroups import table_file
from news_ingest.transforms.schema import TABLES, DeadLetter, Verdict
from news_ingest.transforms.sinks import check_writer_args, shard_name, shard_of, staging_dir

STAGE = "write"
ARTICLES = "articles"
DUPLICATES = "duplicates"
# Counter names of the writers (namespace ``STAGE``): the manifest's figures come from them
# instead of from reading the written rows back.
ROWS = "rows:"
FIRED = "kept_fired:"
DEAD_LETTER = "dead_letter:"


@dataclasses.dataclass(frozen=True)
class Stamp:
    """What every row of a run is stamped with when it is written."""

    run_id: str
    ingested_at: dt.datetime
    pipeline_version: str


def staged_rows(
    path: str, wanted: dict[int, list[Verdict]]
) -> Iterator[tuple[pa.Table, list[Verdict]]]:
    """The rows of one staged file that verdicts refer to, one row group at a time: (rows,
    their verdicts in the same order). Row groups with none of them are not read."""
    with FileSystems.open(path) as fh:
        staged = pq.ParquetFile(fh)
        start = 0
        for group in range(staged.metadata.num_row_groups):
            size = staged.metadata.row_group(group).num_rows
            picks = [
                (row - start, verdict)
                for row in range(start, start + size)
                for verdict in wanted.get(row, ())
            ]
            start += size
            if picks:
                rows = staged.read_row_group(group).take([i for i, _ in picks])
                yield rows, [verdict for _, verdict in picks]


def apply_verdicts(rows: pa.Table, verdicts: list[Verdict], name: str, stamp: Stamp) -> pa.Table:
    """Staged rows with their verdicts and the run's stamps, as rows of table ``name``."""
    count = rows.num_rows
    columns = {field.name: rows.column(field.name) for field in rows.schema}
    columns["story_id"] = pa.array([v.story_id for v in verdicts], pa.string())
    columns["run_id"] = pa.array([stamp.run_id] * count, pa.string())
    columns["ingested_at"] = pa.array(
        [stamp.ingested_at] * count, TABLES[name].field("ingested_at").type
    )
    columns["pipeline_version"] = pa.array([stamp.pipeline_version] * count, pa.string())
    if name == DUPLICATES:
        columns["duplicate_of"] = pa.array([v.duplicate_of for v in verdicts], pa.string())
        columns["dedup_kind"] = pa.array([v.dedup_kind for v in verdicts], pa.string())
        columns["similarity"] = pa.array([float(v.similarity) for v in verdicts], pa.float64())
    schema = TABLES[name]
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def write_decided_shard(
    name: str,
    verdicts: Iterable[Verdict],
    directory: str,
    stamp: Stamp,
    shard: int,
    fired: collections.Counter[str] | None = None,
) -> tuple[str, str, int]:
    """Write one shard of ``articles`` or ``duplicates`` from the staged rows its verdicts
    refer to; returns (table, path, rows). Only the verdicts (ids) are held. ``fired``, when
    given, counts the cleaning rules of the rows written."""
    by_file: dict[str, dict[int, list[Verdict]]] = {}
    for verdict in verdicts:
        rows = by_file.setdefault(verdict.staged.path, {})
        rows.setdefault(verdict.staged.row, []).append(verdict)
    path = files.join(directory, shard_name(stamp.run_id, shard))
    with table_file(path, name) as out:
        for staged in sorted(by_file):
            for rows, picked in staged_rows(staged, by_file[staged]):
                out.add_table(apply_verdicts(rows, picked, name, stamp))
                if fired is not None:
                    for rules in rows.column("rules_fired").to_pylist():
                        fired.update(rules or ())
    return name, path, out.rows


class _WriteDecidedShard(beam.DoFn):
    def __init__(self, directory: str, stamp: Stamp):
        self.directory = directory
        self.stamp = stamp

    def setup(self) -> None:
        self.rows = {n: Metrics.counter(STAGE, f"{ROWS}{n}") for n in (ARTICLES, DUPLICATES)}

    def process(
        self, keyed: tuple[tuple[str, int], Iterable[Verdict]]
    ) -> Iterable[tuple[str, str, int]]:
        (name, shard), verdicts = keyed
        fired: collections.Counter[str] = collections.Counter()
        written = write_decided_shard(
            name,
            verdicts,
            files.join(self.directory, name),
            self.stamp,
            shard,
            fired if name == ARTICLES else None,
        )
        self.rows[name].inc(written[2])
        for rule, n in fired.items():
            Metrics.counter(STAGE, f"{FIRED}{rule}").inc(n)
        yield written


def count_dead_letter(dead: DeadLetter) -> DeadLetter:
    """Count a dead letter by stage and reason as it goes to its writer (the error budget's
    and the manifest's figures)."""
    Metrics.counter(STAGE, f"{DEAD_LETTER}{dead.stage}/{dead.reason}").inc()
    return dead


def dead_letter_reasons(written: dict[str, int]) -> dict[str, int]:
    """``stage/reason`` -> dead letters, from the writers' counters."""
    found = {k[len(DEAD_LETTER) :]: n for k, n in written.items() if k.startswith(DEAD_LETTER)}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def rules_fired(written: dict[str, int], limit: int = 10) -> dict[str, int]:
    """The cleaning rules most often named by the kept articles, from the writers' counters."""
    found = {k[len(FIRED) :]: n for k, n in written.items() if k.startswith(FIRED)}
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


class WriteDecided(beam.PTransform):
    """(kept Verdicts, duplicate Verdicts) -> the ``articles`` and ``duplicates`` shards in
    the run's staging folder; returns the files written as (table, path, rows).

    Args:
        output: the output root.
        stamp: the run's id, ingestion time and pipeline version.
        shards: files per table.
    """

    def __init__(self, output: str, stamp: Stamp, shards: int = 1):
        super().__init__()
        check_writer_args(ARTICLES, stamp.run_id, shards)
        self.directory = staging_dir(output, stamp.run_id)
        self.stamp = stamp
        self.shards = shards

    def expand(self, verdicts):  # type: ignore[no-untyped-def]
        kept, duplicates = verdicts
        shards = self.shards

        def key(name: str):  # type: ignore[no-untyped-def]
            return lambda v: ((name, shard_of(v.article_id, shards)), v)

        return (
            (
                kept | "KeyKept" >> beam.Map(key(ARTICLES)),
                duplicates | "KeyDuplicates" >> beam.Map(key(DUPLICATES)),
            )
            | "AllVerdicts" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteDecidedShard(self.directory, self.stamp))
        )
