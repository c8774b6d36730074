"""A worker that dies mid-bundle is retried by the runner; the retry must not duplicate rows.

Beam's in-memory DirectRunner stops on an uncaught exception, so these tests run the real
graph and sinks on Beam's BundleBasedDirectRunner, which retries a failed bundle (up to four
times) the way Dataflow and Flink do. Failures are injected, each exactly once across
attempts (a marker file remembers): a step that raises after it has already emitted part of its
bundle, the staging step dying after it staged rows (its orphan staged file must not add rows),
and a shard writer that raises after its file is written.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable

import apache_beam as beam
import pytest
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from news_ingest.pipeline import config, graph
from news_ingest.transforms import sinks, split, staging
from news_ingest.transforms.schema import UTC, Article
from news_ingest.transforms.sources import list_inputs

from tests.conftest import read_table
from tests.fixtures.bad_inputs import write_mixed_corpus

RUN_ID = "retry-1"
SHARDS = 3


class _DieOnceMidBundle(beam.DoFn):
    """Passes articles on; in the first bundle with three or more, raises after two."""

    def __init__(self, marker: str):
        self.marker = marker

    def start_bundle(self) -> None:
        self.seen = 0

    def process(self, article: Article) -> Iterable[Article]:
        self.seen += 1
        if self.seen == 3 and not os.path.exists(self.marker):
            with open(self.marker, "w", encoding="utf-8") as fh:
                fh.write(article.source_ref)
            raise RuntimeError("worker lost mid-bundle")
        yield article


def run_graph(inputs, out, marker: str | None = None) -> None:
    """The batch graph and sinks as ``batch.run`` wires them, on a retrying runner."""
    cfg = config.load(None, {"inputs": [str(inputs)], "output": {"path": str(out)}})
    started = dt.datetime(2026, 1, 2, tzinfo=UTC)
    sinks.prepare_run(str(out), RUN_ID)
    p = beam.Pipeline(runner=BundleBasedDirectRunner())
    outputs = graph.build(p, cfg, list_inputs([str(inputs)]), run_id=RUN_ID)
    if marker:
        outputs.articles = outputs.articles | "DieOnce" >> beam.ParDo(_DieOnceMidBundle(marker))
    ctx = graph.RunContext(run_id=RUN_ID, started_at=started, pipeline_version="test")
    graph.write(outputs, str(out), ctx, SHARDS)
    p.run().wait_until_finish()
    sinks.commit_run(str(out), RUN_ID, started.date())


def rows(out) -> dict[str, list[dict]]:
    return {
        name: sorted(
            read_table(out, name).to_pylist(),
            key=lambda r: r.get("article_id") or r["dead_letter_id"],
        )
        for name in ("articles", "duplicates", "dead_letters")
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("retry")
    write_mixed_corpus(root / "in", 60, seed=3)
    run_graph(root / "in", root / "clean")
    return root / "in", rows(root / "clean")


def test_a_stage_dying_mid_bundle_is_retried_without_duplicates(corpus, tmp_path):
    inputs, clean = corpus
    marker = tmp_path / "died"
    run_graph(inputs, tmp_path / "out", str(marker))
    assert marker.exists(), "the injected failure never happened"
    got = rows(tmp_path / "out")
    assert got == clean
    ids = [r["article_id"] for r in got["articles"]]
    assert len(ids) == len(set(ids)) == len(clean["articles"])


def test_a_writer_dying_after_its_file_is_written_is_retried_without_duplicates(
    corpus, tmp_path, monkeypatch
):
    inputs, clean = corpus
    real_write_shard = split.write_decided_shard
    died = []

    def write_shard(name, verdicts, directory, stamp, shard, *rest):
        written = real_write_shard(name, verdicts, directory, stamp, shard, *rest)
        if name == "articles" and not died:
            died.append(written[1])
            raise RuntimeError("worker lost after writing its shard")
        return written

    monkeypatch.setattr(split, "write_decided_shard", write_shard)
    run_graph(inputs, tmp_path / "out")
    assert died, "the injected failure never happened"
    assert rows(tmp_path / "out") == clean
    committed = sinks.committed_files(str(tmp_path / "out"), "articles", RUN_ID)
    assert len(committed) == SHARDS
    assert not [p for p in os.listdir(os.path.dirname(committed[0])) if ".tmp" in p]


def test_a_staging_bundle_dying_after_it_staged_rows_leaves_an_orphan_that_adds_nothing(
    corpus, tmp_path, monkeypatch
):
    inputs, clean = corpus
    real_process = staging._StageArticles.process
    orphans: list[str] = []

    def process(self, article):
        yield from real_process(self, article)
        if self._writer is not None and self._writer.rows == 3 and not orphans:
            self._writer.flush()  # the rows are on disk in the attempt's file
            orphans.append(self._path)
            raise RuntimeError("worker lost after staging three rows")

    monkeypatch.setattr(staging._StageArticles, "process", process)
    staged_files: list[str] = []
    real_commit = sinks.commit_run

    def commit_run(output, run_id, ingest_date):
        staged_files.extend(os.listdir(staging.staged_articles_dir(output, run_id)))
        return real_commit(output, run_id, ingest_date)

    monkeypatch.setattr(sinks, "commit_run", commit_run)
    run_graph(inputs, tmp_path / "out")
    assert orphans, "the injected failure never happened"
    assert os.path.basename(orphans[0]) in staged_files  # the orphan was there at commit
    assert rows(tmp_path / "out") == clean
    assert not (tmp_path / "out" / sinks.STAGING).exists()
