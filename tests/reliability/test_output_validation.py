"""Output validation through the pipeline: a shard that breaks its table's contract stops the
run before anything is committed, with exit 1 and the violation named; a rerun starts clean.

Faults are injected into the real graph (an extra step that breaks rows) or into the Parquet
writer (a file that does not read back as written), so the tests do not depend on a stage bug.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import cli, graph
from news_ingest.transforms import sinks

from tests.conftest import SEEDS, read_table


def corrupt_articles(monkeypatch, corrupt) -> None:
    """Pass the articles of the real graph through ``corrupt`` (Article -> Articles)."""
    real_build = graph.build

    def build(p, cfg, paths, *args, **kwargs):
        out = real_build(p, cfg, paths, *args, **kwargs)
        out.articles = out.articles | "Corrupt" >> beam.FlatMap(corrupt)
        return out

    monkeypatch.setattr(graph, "build", build)


def twice(article):
    return [article, article]


def without_text(article):
    return [dataclasses.replace(article, text=None)]


def committed(out) -> list[str]:
    return glob.glob(os.path.join(str(out), "*", "ingest_date=*", "*.parquet"))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (twice, "articles: article_id is not unique"),
        (without_text, "articles: required column text has nulls"),
    ],
    ids=["duplicate ids", "null required column"],
)
def test_a_broken_table_stops_the_run_before_commit(
    tmp_path, monkeypatch, capsys, corrupt, message
):
    corrupt_articles(monkeypatch, corrupt)
    args = ["run", "--input", str(SEEDS), "--output", str(tmp_path), "--run-id", "v1"]
    assert cli.main(args) == 1
    assert message in capsys.readouterr().err
    assert committed(tmp_path) == []
    assert not (tmp_path / "_manifest.json").exists()

    monkeypatch.undo()
    assert cli.main(args) == 0
    assert read_table(tmp_path, "articles").num_rows == 5
    assert not (tmp_path / sinks.STAGING).exists()


def test_a_file_that_does_not_read_back_as_written_is_never_renamed_into_place(
    tmp_path, monkeypatch, capsys
):
    real_write_table = pq.write_table

    def lossy_write_table(table, where, **kwargs):
        # Stands for a writer or disk that loses a column on the way.
        if table.schema.metadata.get(b"table") == b"articles":
            table = table.drop_columns(["title"])
        real_write_table(table, where, **kwargs)

    monkeypatch.setattr(sinks.pq, "write_table", lossy_write_table)
    args = ["run", "--input", str(SEEDS), "--output", str(tmp_path), "--run-id", "v2"]
    assert cli.main(args) == 1
    assert "articles: schema differs from the declared schema" in capsys.readouterr().err
    assert committed(tmp_path) == []
    assert glob.glob(os.path.join(str(tmp_path), "**", "*.tmp-*"), recursive=True) == []
