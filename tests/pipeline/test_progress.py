"""Progress reporting: the status line, and counts sent from a real pipeline to a Reporter."""

from __future__ import annotations

import io

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from news_ingest.pipeline import progress


@pytest.mark.parametrize(
    "done, total, seconds, expected",
    [
        (50, 200, 10.0, "50/200 docs  (25%)  5.0 docs/s  ETA 30s  elapsed 10s"),
        (0, 200, 0.0, "0/200 docs  (0%)  0.0 docs/s  elapsed 0s"),
        (200, 200, 100.0, "200/200 docs  (100%)  2.0 docs/s  elapsed 1m40s"),
        # More documents than paths (WARC, feeds): no percentage, no ETA.
        (450, 200, 9.0, "450/200 docs  50.0 docs/s  elapsed 9s"),
        (10, None, 4000.0, "10 docs  0.0 docs/s  elapsed 1h06m"),
    ],
)
def test_format_line(done: int, total: int | None, seconds: float, expected: str) -> None:
    assert progress.format_line(done, total, seconds) == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_counts_reach_the_reporter_from_every_input(workers: int) -> None:
    stream = io.StringIO()
    options = PipelineOptions(
        runner="DirectRunner",
        direct_num_workers=workers,
        direct_running_mode="in_memory" if workers == 1 else "multi_processing",
    )
    reporter = progress.Reporter(total=30, stream=stream, every_s=0.05)
    with reporter, beam.Pipeline(options=options) as p:
        numbers = p | beam.Create(range(30))
        evens = numbers | "Evens" >> beam.Filter(lambda x: x % 2 == 0)
        odds = numbers | "Odds" >> beam.Filter(lambda x: x % 2 == 1)
        (evens, odds) | progress.CountDocuments(reporter.port)
    assert reporter.done == 30
    # The line is cleared at the end, so the summary table starts on a clean line.
    assert stream.getvalue().endswith("\r")
    assert "news-ingest: " in stream.getvalue()


def test_port_is_checked() -> None:
    with pytest.raises(ValueError, match="port"):
        progress.CountDocuments(0)
