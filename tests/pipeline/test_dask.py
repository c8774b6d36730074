"""The batch graph on Beam's Dask runner gives the same rows as the DirectRunner.

A real dask.distributed scheduler and two worker processes are started on 127.0.0.1; the CLI
(in-process) runs the seeds and a generated corpus (HTML, text, exact copies, junk) through them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam import pvalue
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from tests.conftest import ROOT, SEEDS, read_table, run_main
from tests.pipeline.corpus import make_corpus

TABLES = ("articles", "duplicates", "dead_letters")
RUN_STAMPS = ("run_id", "ingested_at")
SORT_KEY = {
    "articles": ("article_id", "source_ref"),
    "duplicates": ("article_id", "source_ref"),
    "dead_letters": ("dead_letter_id",),
}


def comparable(output: Path, name: str) -> list[dict]:
    """The rows of a table without the run's stamps, in a fixed order."""
    table: pa.Table = read_table(output, name)
    table = table.drop_columns([c for c in RUN_STAMPS if c in table.column_names])
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in SORT_KEY[name]))


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dask scheduler and two single-threaded worker processes on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("dask")
    scheduler_file = tmp / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "the dask scheduler did not start"
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(scheduler_file), "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1",
             "--no-dashboard"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(worker)
        address = json.loads(scheduler_file.read_text())["address"]
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _run(inputs: Path, output: Path, *extra: str) -> dict:
    done = run_main("run", "--input", str(inputs), "--output", str(output), "--shards", "2", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((output / "_manifest.json").read_text())


@pytest.fixture(scope="module")
def direct_seeds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The seeds on the DirectRunner, compared with both Dask runs of them: (output, manifest)."""
    output = tmp_path_factory.mktemp("direct") / "direct"
    return output, _run(SEEDS, output, "--runner", "direct")


def _assert_same_rows(direct: Path, dask: Path) -> None:
    for name in TABLES:
        assert comparable(dask, name) == comparable(direct, name), f"{name} differs"


@pytest.mark.parametrize("corpus", ["seeds", "generated"])
def test_dask_cluster_rows_equal_direct_runner(
    corpus: str, dask_cluster: str, direct_seeds: tuple[Path, dict], tmp_path: Path
) -> None:
    if corpus == "seeds":
        inputs = SEEDS
        expected_docs = len(list(SEEDS.iterdir()))
        direct_out, direct = direct_seeds
    else:
        inputs = tmp_path / "corpus"
        expected_docs = make_corpus(inputs)
        direct_out = tmp_path / "direct"
        direct = _run(inputs, direct_out, "--runner", "direct")
    dask = _run(
        inputs, tmp_path / "dask", "--runner", "dask", "--dask_client_address", dask_cluster
    )
    _assert_same_rows(direct_out, tmp_path / "dask")
    assert dask["runner"] == "dask"
    assert dask["counts"] == direct["counts"]
    assert sum(dask["counts"].values()) == expected_docs
    # Counters travel back from the workers: the same per-stage figures as the DirectRunner.
    assert dask["stages"] == direct["stages"]
    if corpus == "generated":
        assert dask["counts"]["duplicates"] == 4
        assert dask["counts"]["dead_letters"] == 2


def test_dask_local_cluster_started_and_stopped_by_the_run(
    direct_seeds: tuple[Path, dict], tmp_path: Path
) -> None:
    direct_out, direct = direct_seeds
    dask = _run(SEEDS, tmp_path / "dask", "--runner", "dask", "--workers", "2")
    _assert_same_rows(direct_out, tmp_path / "dask")
    assert dask["counts"] == direct["counts"]
    assert dask["options"]["dask_local_workers"] == 2


class _SplitParity(beam.DoFn):
    def process(self, x: int):  # type: ignore[no-untyped-def]
        if x % 2:
            yield pvalue.TaggedOutput("odd", x)
        else:
            yield x


class _SumInFinishBundle(beam.DoFn):
    def start_bundle(self) -> None:
        self.total = 0

    def process(self, x: int):  # type: ignore[no-untyped-def]
        self.total += x
        return ()

    def finish_bundle(self):  # type: ignore[no-untyped-def]
        yield WindowedValue(self.total, 0, [GlobalWindow()])


def test_runner_semantics_beam_dask_gets_wrong(dask_cluster: str) -> None:
    """Tagged outputs stay apart, every branch runs, finish_bundle output and side inputs
    arrive, and a failing assertion on a worker fails the run."""
    # As flags: Beam's DaskOptions store the address under another name than the flag's, so
    # a keyword argument dask_client_address would be dropped (and a local cluster started).
    options = PipelineOptions(
        [
            "--runner=news_ingest.pipeline.runners.NewsIngestDaskRunner",
            f"--dask_client_address={dask_cluster}",
            "--dask_partition_size=7",
        ]
    )
    with beam.Pipeline(options=options) as p:
        split = (
            p | beam.Create(range(40)) | beam.ParDo(_SplitParity()).with_outputs("odd", main="even")
        )
        assert_that(split.even, equal_to(list(range(0, 40, 2))), label="Evens")
        assert_that(split.odd, equal_to(list(range(1, 40, 2))), label="Odds")
        sums = split.even | "BundleSums" >> beam.ParDo(_SumInFinishBundle())
        total = sums | beam.CombineGlobally(sum)
        assert_that(total, equal_to([sum(range(0, 40, 2))]), label="FinishBundle")
        limit = p | "Limit" >> beam.Create([30])
        small = split.odd | beam.Filter(lambda x, lim: x < lim, lim=beam.pvalue.AsSingleton(limit))
        assert_that(small, equal_to(list(range(1, 30, 2))), label="SideInput")

    with pytest.raises(Exception, match="Failed assert"), beam.Pipeline(options=options) as p:
        assert_that(p | beam.Create([1, 2]), equal_to([1, 2, 3]))


class _SplitSize(beam.DoFn):
    def process(self, x: int):  # type: ignore[no-untyped-def]
        yield pvalue.TaggedOutput("small" if x < 20 else "large", x)


def test_flattened_pcollection_reaches_every_consumer(dask_cluster: str) -> None:
    """A Flatten of tagged outputs read by two transforms (the shape of the batch graph's kept
    articles: Deduplicate's outputs flattened, then read by story terms and the story join).

    Regression: dask.bag's optimizer handed both readers one lazy iterator; the first drained
    it and the second saw nothing, so the articles table was written empty."""
    options = PipelineOptions(
        [
            "--runner=news_ingest.pipeline.runners.NewsIngestDaskRunner",
            f"--dask_client_address={dask_cluster}",
            "--dask_partition_size=7",
        ]
    )
    with beam.Pipeline(options=options) as p:
        parts = p | beam.Create(range(40)) | beam.ParDo(_SplitSize()).with_outputs("small", "large")
        merged = (parts.small, parts.large) | beam.Flatten()
        doubled = merged | "Double" >> beam.Map(lambda x: 2 * x)
        keyed = merged | "Key" >> beam.Map(lambda x: (x % 3, x))
        assert_that(doubled, equal_to([2 * x for x in range(40)]), label="FirstReader")
        sums = keyed | beam.CombinePerKey(sum)
        expected = [(k, sum(x for x in range(40) if x % 3 == k)) for k in range(3)]
        assert_that(sums, equal_to(expected), label="SecondReader")


def test_a_grouping_after_flattens_is_bounded_by_the_cluster_and_groups_everything(
    dask_cluster: str,
) -> None:
    """Flattens add their inputs' partitions up; a grouping merges them into at most twice the
    cluster's worker threads (2 x 1 here) before its shuffle, and still groups every value.

    Regression: groupings kept their input's partition count, so the batch graph's Flattens
    and 16 groupings made 13,014 dask tasks of a 5-document run."""
    from apache_beam.runners.dask.overrides import dask_overrides
    from news_ingest.pipeline.runners import _DaskGraph

    def build(p: beam.Pipeline) -> beam.PCollection:
        branches = [
            p | f"Create{i}" >> beam.Create([(x % 5, x) for x in range(i * 20, i * 20 + 20)])
            for i in range(6)
        ]
        return branches | "Flatten" >> beam.Flatten() | "Group" >> beam.GroupByKey()

    options = PipelineOptions(
        [
            "--runner=news_ingest.pipeline.runners.NewsIngestDaskRunner",
            f"--dask_client_address={dask_cluster}",
            "--dask_partition_size=2",  # 10 partitions per Create, 60 after the Flatten
        ]
    )
    with beam.Pipeline(options=options) as p:
        grouped = build(p)
        expected = [(k, [x for x in range(120) if x % 5 == k]) for k in range(5)]
        assert_that(grouped | beam.MapTuple(lambda k, v: (k, sorted(v))), equal_to(expected))

    # The same graph as the runner builds it: the partitions before and after the grouping
    # (by producing transform: the overrides replace the PCollections).
    p = beam.Pipeline(options=options)
    build(p)
    p.replace_all(dask_overrides())
    graph = _DaskGraph(bag_kwargs={"partition_size": 2}, shuffle_partitions=4)
    p.visit(graph)
    parts = {pc.producer.full_label: bag.npartitions for pc, bag in graph.bags.items()}
    assert (parts["Flatten"], parts["Group/GroupByKey"], parts["Group/GroupByWindow"]) == (60, 4, 4)
