"""Parquet shards written from process(), validated, staged and committed per run."""

from __future__ import annotations

import datetime as dt
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from news_ingest.transforms import schema, sinks
from news_ingest.transforms.schema import Article

DAY = dt.date(2026, 1, 2)
T0 = dt.datetime(2026, 1, 2, tzinfo=schema.UTC)


def _row(i: int) -> dict:
    article = Article(
        article_id=f"id{i:03d}",
        source_kind="text",
        source_ref=f"f{i}.txt",
        text=f"text {i}",
        ingested_at=T0,
        run_id="r1",
        pipeline_version="t",
    )
    return schema.article_row(article)


def test_shard_of_is_stable_and_in_range():
    shards = [sinks.shard_of(f"id{i}", 4) for i in range(200)]
    assert shards == [sinks.shard_of(f"id{i}", 4) for i in range(200)]
    assert set(shards) == {0, 1, 2, 3}


def test_write_table_writes_every_row_once_across_shards(tmp_path):
    rows = [_row(i) for i in range(50)]
    with TestPipeline() as p:
        p | beam.Create(rows) | sinks.WriteTable("articles", str(tmp_path), "r1", lambda r: r, 3)
    files = sorted((tmp_path / "_staging" / "r1" / "articles").glob("*.parquet"))
    assert 1 <= len(files) <= 3
    ids = [i for f in files for i in pq.read_table(f).column("article_id").to_pylist()]
    # Rows are written in the order they arrive (not sorted: a writer holds no shard), and
    # the shard of a row depends on its id alone: deterministic file contents.
    assert sorted(ids) == [r["article_id"] for r in rows]
    for f in files:
        shard = int(f.name.rsplit("-", 1)[1].split(".")[0])
        col = pq.read_table(f).column("article_id").to_pylist()
        assert {sinks.shard_of(i, 3) for i in col} == {shard}
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_a_shard_is_written_row_group_by_row_group_as_rows_come(tmp_path):
    from news_ingest.transforms import rowgroups

    held = []

    def rows():
        for i in range(25):
            yield _row(i)

    class Spy(rowgroups.RowGroupWriter):
        def flush(self):
            held.append(len(self._buffer))
            super().flush()

    path = str(tmp_path / "part.parquet")
    with rowgroups.atomic_path(path) as tmp:
        writer = Spy(tmp, schema.ARTICLES_SCHEMA, "articles", rows_per_group=10)
        writer.add_rows(rows())
        assert writer.close() == 25
    assert max(held) == 10  # never more than a row group in memory
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [10, 10, 5]
    # ids are checked across row groups, not only within one
    dup = [_row(1), *[_row(i) for i in range(2, 12)], _row(1)]
    with pytest.raises(sinks.OutputValidationError, match="not unique"):
        rowgroups.write_rows("articles", dup, str(tmp_path / "dup.parquet"), rows_per_group=4)
    assert not (tmp_path / "dup.parquet").exists()


def test_small_tables_are_gathered_into_full_row_groups(tmp_path):
    """The table writers add the few rows they take from each small staged row group as a
    table: the output's row groups are still ``rows_per_group`` rows, not one per piece."""
    from news_ingest.transforms import rowgroups

    path = str(tmp_path / "part.parquet")
    with rowgroups.table_file(path, "articles", rows_per_group=10) as writer:
        for start in range(0, 23, 3):  # pieces of 3 rows (the last of 2)
            piece = [_row(i) for i in range(start, min(start + 3, 23))]
            writer.add_table(schema.to_table(piece, schema.ARTICLES_SCHEMA))
        writer.add(_row(23))  # a row after tables: written after them, in order
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [12, 11, 1]
    ids = pq.read_table(path).column("article_id").to_pylist()
    assert ids == [f"id{i:03d}" for i in range(24)]
    # ids stay unique across gathered pieces
    dup_path = str(tmp_path / "dup.parquet")
    with (
        pytest.raises(sinks.OutputValidationError, match="not unique"),
        rowgroups.table_file(dup_path, "articles", 10) as writer,
    ):
        writer.add_table(schema.to_table([_row(1), _row(2)], schema.ARTICLES_SCHEMA))
        writer.add_table(schema.to_table([_row(1)], schema.ARTICLES_SCHEMA))
    assert not (tmp_path / "dup.parquet").exists()


def test_validation_rejects_duplicate_ids_and_missing_required_values(tmp_path):
    with pytest.raises(sinks.OutputValidationError, match="not unique"):
        sinks.write_shard("articles", [_row(1), _row(1)], str(tmp_path), "r", 0)
    bad = _row(2)
    bad["run_id"] = None
    with pytest.raises(sinks.OutputValidationError, match="run_id"):
        sinks.write_shard("articles", [bad], str(tmp_path), "r", 0)
    assert not list(tmp_path.glob("*"))  # nothing left behind, not even a temp file


def test_commit_moves_staged_files_and_replaces_the_same_run(tmp_path):
    out = str(tmp_path)
    stage = os.path.join(sinks.staging_dir(out, "r1"), "articles")
    sinks.write_shard("articles", [_row(1), _row(2)], stage, "r1", 0)
    sinks.write_shard("articles", [_row(3)], stage, "r1", 1)
    # nothing is visible before the commit
    assert sinks.committed_files(out, "articles") == []
    files = sinks.commit_run(out, "r1", DAY)
    assert len(files["articles"]) == 2
    assert all("ingest_date=2026-01-02" in f for f in files["articles"])
    # empty tables still get a file with their schema
    (dups,) = files["duplicates"]
    assert pq.read_table(dups).num_rows == 0
    assert pq.read_schema(dups).names == schema.DUPLICATES_SCHEMA.names
    assert not os.path.exists(os.path.join(out, sinks.STAGING))

    # a second attempt of the same run with fewer shards replaces, never adds
    sinks.prepare_run(out, "r1")
    sinks.write_shard("articles", [_row(9)], stage, "r1", 0)
    sinks.commit_run(out, "r1", DAY)
    committed = sinks.committed_files(out, "articles", "r1")
    assert len(committed) == 1
    assert pq.read_table(committed[0]).column("article_id").to_pylist() == ["id009"]


def test_commit_leaves_other_runs_alone(tmp_path):
    out = str(tmp_path)
    for run in ("r1", "r2"):
        stage = os.path.join(sinks.staging_dir(out, run), "articles")
        sinks.write_shard("articles", [_row(1)], stage, run, 0)
        sinks.commit_run(out, run, DAY)
    assert len(sinks.committed_files(out, "articles")) == 2


def test_write_table_checks_arguments():
    with pytest.raises(ValueError):
        sinks.WriteTable("nope", "o", "r", dict)
    with pytest.raises(ValueError):
        sinks.WriteTable("articles", "o", "r", dict, shards=0)
    with pytest.raises(ValueError):
        sinks.WriteTable("articles", "o", "", dict)


def test_a_rerun_never_touches_a_run_whose_id_extends_its_own(tmp_path):
    out = str(tmp_path)
    for run in ("a-b", "a"):
        stage = os.path.join(sinks.staging_dir(out, run), "articles")
        sinks.write_shard("articles", [_row(1)], stage, run, 0)
        sinks.commit_run(out, run, DAY)
    assert [os.path.basename(f) for f in sinks.committed_files(out, "articles", "a")] == [
        "part-a-00000.parquet"
    ]
    # rerun "a": "a-b" keeps its file
    stage = os.path.join(sinks.staging_dir(out, "a"), "articles")
    sinks.write_shard("articles", [_row(2)], stage, "a", 0)
    sinks.commit_run(out, "a", DAY)
    assert len(sinks.committed_files(out, "articles")) == 2
    assert len(sinks.committed_files(out, "articles", "a-b")) == 1


def test_duplicates_rows_may_share_an_id_but_articles_may_not(tmp_path):
    rows = [_row(1), _row(1)]
    rows[1]["source_ref"] = "other/f1.txt"
    dups = [dict(r, duplicate_of="k", dedup_kind="exact", similarity=1.0) for r in rows]
    sinks.write_shard("duplicates", dups, str(tmp_path), "r", 0)
    with pytest.raises(sinks.OutputValidationError, match="not unique"):
        sinks.write_shard("articles", rows, str(tmp_path), "r", 1)
