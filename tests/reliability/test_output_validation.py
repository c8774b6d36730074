"""Output validation through the pipeline: a shard that breaks its table's contract stops the
run before anything is committed, with exit 1 and the violation named; a rerun starts clean.

Faults are injected into the real graph (an extra step that breaks verdicts, or staged rows
that break the contract) or into the Parquet writer (a file that does not read back as
written), so the tests do not depend on a stage bug.
"""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import cli, graph
from news_ingest.transforms import rowgroups, sinks, staging

from tests.conftest import SEEDS, read_table


def twice(monkeypatch) -> None:
    """Every kept article's verdict twice: the writer writes its staged row twice."""
    real_build = graph.build

    def build(p, cfg, paths, *args, **kwargs):
        out = real_build(p, cfg, paths, *args, **kwargs)
        out.articles = out.articles | "Corrupt" >> beam.FlatMap(lambda v: [v, v])
        return out

    monkeypatch.setattr(graph, "build", build)


def without_text(monkeypatch) -> None:
    """Articles staged without their text."""
    real_row = staging.article_row
    monkeypatch.setattr(staging, "article_row", lambda a: {**real_row(a), "text": None})


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
    corrupt(monkeypatch)
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
    real_writer = pq.ParquetWriter

    class LossyWriter(real_writer):  # type: ignore[misc,valid-type]
        """Stands for a writer or disk that loses a column on the way."""

        def __init__(self, where, schema, **kwargs):
            self.lossy = (schema.metadata or {}).get(b"table") == b"articles"
            if self.lossy:
                schema = schema.remove(schema.get_field_index("title"))
            super().__init__(where, schema, **kwargs)

        def write_table(self, table, **kwargs):
            if self.lossy:
                table = table.drop_columns(["title"])
            super().write_table(table, **kwargs)

    monkeypatch.setattr(rowgroups.pq, "ParquetWriter", LossyWriter)
    args = ["run", "--input", str(SEEDS), "--output", str(tmp_path), "--run-id", "v2"]
    assert cli.main(args) == 1
    assert "articles: schema differs from the declared schema" in capsys.readouterr().err
    assert committed(tmp_path) == []
    assert glob.glob(os.path.join(str(tmp_path), "**", "*.tmp-*"), recursive=True) == []
