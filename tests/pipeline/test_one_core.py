"""Batch and stream share one core: both graphs apply the same DocumentsToArticles."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.testing.test_stream import TestStream
from news_ingest.pipeline import config, graph
from news_ingest.pipeline.stream.graph import build_stream
from news_ingest.transforms.core import DocumentsToArticles


class _FindCores(beam.pipeline.PipelineVisitor):
    def __init__(self) -> None:
        self.found: list[str] = []

    def enter_composite_transform(self, node) -> None:  # type: ignore[no-untyped-def]
        if isinstance(node.transform, DocumentsToArticles):
            self.found.append(node.full_label)


def _cores(p: beam.Pipeline) -> list[str]:
    visitor = _FindCores()
    p.visit(visitor)
    return visitor.found


def test_the_batch_and_the_streaming_graph_apply_the_one_core(tmp_path):
    cfg = config.load(overrides={"output": {"path": str(tmp_path)}})
    batch = beam.Pipeline(runner="DirectRunner")
    graph.build(batch, cfg, [])
    stream = beam.Pipeline(runner="BundleBasedDirectRunner")
    ctx = graph.RunContext("r1", dt.datetime.now(dt.UTC), "test")
    items = stream | TestStream().advance_watermark_to_infinity()
    build_stream(items, cfg, ctx, str(tmp_path), {})
    assert _cores(batch) == ["ToArticles"]
    assert _cores(stream) == ["ToArticles"]
