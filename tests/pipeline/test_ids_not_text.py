"""No grouping of the batch graph carries article text: every element that reaches a
GroupByKey (CoGroupByKey and Distinct group through one) of the real graph is checked while
the graph runs on a corpus with exact and near copies and stories."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.pipeline import config, graph
from news_ingest.transforms import lsh, sinks
from news_ingest.transforms.schema import UTC, Article, Duplicate, RawDocument
from news_ingest.transforms.sources import list_inputs

from tests.conftest import SEEDS, read_table

# Longer strings than ids, URLs, paths and excerpts are text.
MAX_STRING = 600
CARRIERS = (Article, Duplicate, RawDocument)


def _text_in(value: Any, depth: int = 0) -> Iterator[str]:
    """What in a grouped element is (or holds) article text."""
    if depth > 8:
        return
    if isinstance(value, CARRIERS):
        yield type(value).__name__
    elif isinstance(value, str | bytes) and len(value) > MAX_STRING:
        yield f"{type(value).__name__} of {len(value)}"
    elif isinstance(value, dict):
        for item in value.values():
            yield from _text_in(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _text_in(item, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _text_in(getattr(value, field.name), depth + 1)


class _GroupingInputs(beam.pipeline.PipelineVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[str, beam.PCollection]] = []

    def visit_transform(self, node) -> None:  # type: ignore[no-untyped-def]
        if isinstance(node.transform, beam.GroupByKey):
            self.found.extend((node.full_label, pcoll) for pcoll in node.inputs)


def _check(label: str):  # type: ignore[no-untyped-def]
    def check(element: Any) -> list[str]:
        if "GroupByBand" in label:
            # the LSH bands carry packed 16-byte (band hash, member key) entries under a shard
            # number, not signed nodes (32 copies each)
            shard, packed = element
            entry = lsh.BAND_ENTRY.itemsize
            if not (isinstance(shard, int) and isinstance(packed, bytes) and packed):
                return [f"{label}: {type(packed).__name__} in a band"]
            if len(packed) % entry:
                return [f"{label}: {len(packed)} bytes are not whole band entries"]
            return []
        return [f"{label}: {what}" for what in _text_in(element)][:1]

    return check


def _inputs(tmp_path) -> str:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    for path in SEEDS.glob("*.txt"):
        shutil.copy(path, folder / path.name)
    seed = (SEEDS / "000_9101e3246db773c2.txt").read_text(encoding="utf-8")
    (folder / "exact_copy.txt").write_text(seed, encoding="utf-8")
    paragraphs = [p for p in seed.split("\n") if p.strip()]
    cut = "\n".join(paragraphs[: round(len(paragraphs) * 0.85)]) + "\n"
    (folder / "near_copy.txt").write_text(cut, encoding="utf-8")
    return str(folder)


def test_no_grouping_of_the_batch_graph_carries_text(tmp_path):
    inputs, out, run_id = _inputs(tmp_path), tmp_path / "out", "ids"
    cfg = config.load(None, {"inputs": [inputs], "output": {"path": str(out)}})
    started = dt.datetime(2026, 1, 2, tzinfo=UTC)
    sinks.prepare_run(str(out), run_id)
    p = beam.Pipeline(runner="DirectRunner")
    outputs = graph.build(p, cfg, list_inputs([inputs]), run_id=run_id)
    ctx = graph.RunContext(run_id=run_id, started_at=started, pipeline_version="test")
    graph.write(outputs, str(out), ctx, 2)
    visitor = _GroupingInputs()
    p.visit(visitor)
    labels = [label for label, _ in visitor.found]
    # the groupings of dedup, stories and the table writers are all checked
    steps = ("JoinRoots", "JoinStories", "JoinKeeperStories", "WriteArticlesAndDuplicates")
    for step in (*steps, "Deduplicate/NearCandidates/Candidates/GroupByBand", "Stories/Candidates"):
        assert any(step in label for label in labels), step
    found = [
        pcoll | f"Check{i}" >> beam.FlatMap(_check(label))
        for i, (label, pcoll) in enumerate(visitor.found)
    ]
    assert_that(found | "AllFound" >> beam.Flatten(), equal_to([]), label="NoText")
    p.run().wait_until_finish()
    sinks.commit_run(str(out), run_id, started.date())
    # and the run did what it does: every input in one table, the copies found
    articles = read_table(out, "articles")
    duplicates = read_table(out, "duplicates").to_pylist()
    assert articles.num_rows == 5
    assert sorted(d["dedup_kind"] for d in duplicates) == ["exact", "near"]
    assert {d["story_id"] for d in duplicates} <= set(articles.column("story_id").to_pylist())
    assert all(t for t in articles.column("text").to_pylist())
