"""Staged rows split by verdict: the written rows are exactly the rows the article and
duplicate row builders give, read back with pyarrow; the staged files are read row group by
row group."""

from __future__ import annotations

import dataclasses
import datetime as dt

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from news_ingest.pipeline.graph import RunContext
from news_ingest.transforms import split, staging
from news_ingest.transforms.dedup import NearParams, Node
from news_ingest.transforms.schema import UTC, Duplicate, StagedRef, Verdict

from tests.transforms.test_dedup import corpus

CTX = RunContext("r1", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "test")
# article_id -> (story, duplicate_of) of the verdicts the test gives
DECIDED = {"s0": ("st-a", None), "s1": ("st-b", None), "copy-boiler": ("st-a", "s0")}


def verdict(node: Node) -> list[Verdict]:
    if node.article_id not in DECIDED:
        return []
    assert node.staged is not None
    story, keeper = DECIDED[node.article_id]
    kind = "near" if keeper else None
    return [
        Verdict(
            node.article_id, node.source_ref, node.staged, story, keeper, kind, 0.9 if kind else 1.0
        )
    ]


def written(out, name: str) -> list[dict]:
    files = sorted((out / "_staging" / "r1" / name).glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["article_id"])


@pytest.mark.parametrize("rows_per_group", [1, 1000])
def test_split_rows_equal_the_row_builders(tmp_path, rows_per_group):
    arts = corpus()
    out = tmp_path / "out"
    directory = staging.staged_articles_dir(str(out), "r1")
    with TestPipeline() as p:
        nodes, _terms = (
            p
            | beam.Create(arts)
            | staging.StageArticles(directory, NearParams(), None, rows_per_group)
        )
        verdicts = nodes | beam.FlatMap(verdict)
        kept = verdicts | "Kept" >> beam.Filter(lambda v: v.duplicate_of is None)
        dups = verdicts | "Dups" >> beam.Filter(lambda v: v.duplicate_of is not None)
        (kept, dups) | split.WriteDecided(str(out), CTX.row_stamp, shards=2)

    by_id = {a.article_id: a for a in arts}
    expected_articles = [
        CTX.article_row(dataclasses.replace(by_id[aid], story_id=story))
        for aid, (story, keeper) in sorted(DECIDED.items())
        if keeper is None
    ]
    copy = dataclasses.replace(by_id["copy-boiler"], story_id="st-a")
    expected_dups = [CTX.duplicate_row(Duplicate(copy, "s0", "near", 0.9))]
    assert written(out, "articles") == expected_articles
    assert written(out, "duplicates") == expected_dups
    staged = sorted((out / "_staging" / "r1" / "_articles").glob("*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in staged) == len(arts)
    if rows_per_group == 1:
        assert all(
            pq.ParquetFile(f).metadata.num_row_groups == pq.ParquetFile(f).metadata.num_rows
            for f in staged
        )


def test_staged_rows_reads_only_the_row_groups_it_needs(tmp_path, monkeypatch):
    arts = corpus()[:6]
    path = str(tmp_path / "staged.parquet")
    from news_ingest.transforms.rowgroups import RowGroupWriter
    from news_ingest.transforms.schema import article_row

    writer = RowGroupWriter(path, staging.STAGED_SCHEMA, rows_per_group=2)
    for a in arts:
        writer.add(article_row(a))
    writer.close()
    read: list[int] = []
    real = pq.ParquetFile.read_row_group

    def read_row_group(self, i, *args, **kwargs):
        read.append(i)
        return real(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", read_row_group)
    ref = StagedRef(path, 5)
    wanted = {5: [Verdict(arts[5].article_id, arts[5].source_ref, ref)]}
    ((rows, picked),) = list(split.staged_rows(path, wanted))
    assert read == [2]
    assert rows.column("article_id").to_pylist() == [arts[5].article_id]
    assert picked == wanted[5]


def test_staged_row_groups_are_small_by_default(tmp_path):
    """A worker holds one staged row group until it is written: by default at most
    ``STAGED_ROWS_PER_GROUP`` rows, and a group closes early at ``STAGED_BYTES_PER_GROUP``
    bytes of strings."""
    base = corpus()[0]
    short = [dataclasses.replace(base, article_id=f"a{i:04d}") for i in range(450)]
    long_text = "word " * 300_000  # 1.5 MB of text per row
    long = [dataclasses.replace(base, article_id=f"b{i:04d}", text=long_text) for i in range(6)]
    for name, arts in (("short", short), ("long", long)):
        # One bundle through the stage's DoFn (Beam's coders make 1.5 MB rows slow to Create).
        dofn = staging.StageArticles(str(tmp_path / name), NearParams(near=False))
        stage = staging._StageArticles(dofn.directory, dofn.params, None, dofn.rows_per_group)
        stage.setup()
        stage.start_bundle()
        for article in arts:
            list(stage.process(article))
        stage.finish_bundle()
        files = [pq.ParquetFile(f) for f in (tmp_path / name).glob("*.parquet")]
        assert sum(f.metadata.num_rows for f in files) == len(arts)
        sizes = [
            f.metadata.row_group(g).num_rows
            for f in files
            for g in range(f.metadata.num_row_groups)
        ]
        if name == "short":
            assert max(sizes) == staging.STAGED_ROWS_PER_GROUP
        else:  # 3 rows are 4.5 MB of strings: the group closes at the third
            assert max(sizes) == 3
