"""Event-time windows and the per-window writer, driven by TestStream."""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import os

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to, equal_to_per_window
from apache_beam.transforms import window
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms import schema
from news_ingest.transforms.durations import parse_duration
from news_ingest.transforms.schema import UTC, Article
from news_ingest.transforms.stream.windows import (
    AssignEventTime,
    WindowSpec,
    WriteWindowed,
    pane_path,
    window_label,
    window_start,
)

T0 = 1_730_073_600  # 2024-10-28T00:00:00Z
INGESTED = dt.date(2026, 12, 1)  # the date the rows were ingested, not the windows' date
STREAMING = ["--runner=BundleBasedDirectRunner", "--streaming"]


def _article(n: int, published: dt.datetime | None = None) -> Article:
    return Article(
        article_id=f"a{n:03d}",
        source_kind="text",
        source_ref=f"doc-{n}",
        text=f"text {n}",
        published_at=published,
        ingested_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        run_id="r1",
    )


def _row(article: Article) -> dict:
    return schema.article_row(article)


def _files(out, table="articles"):
    return sorted(glob.glob(os.path.join(str(out), table, "ingest_date=*", "*.parquet")))


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), (2.5, 2.5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "-3s", "m5"])
def test_parse_duration_rejects_junk(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_window_start_label_and_path_are_stable():
    start = window_start(Timestamp(T0 + 301), 300)
    assert start == Timestamp(T0 + 300)
    assert window_label(start) == "20241028T000500Z"
    path = pane_path("OUT", "articles", "r1", start, ["b", "a"], False, INGESTED)
    assert path == pane_path("OUT", "articles", "r1", start, ["a", "b"], False, INGESTED)
    # The partition is the ingestion date (as in batch); the event-time window is in the name.
    assert path.startswith(
        os.path.join("OUT", "articles", "ingest_date=2026-12-01", "part-r1-w20241028T000500Z")
    )
    assert "-late-" in pane_path("OUT", "articles", "r1", start, ["a"], True, INGESTED)
    assert path != pane_path("OUT", "articles", "r1", start, ["a"], False, INGESTED)


def test_event_time_is_published_at_else_the_fetch_time():
    published = dt.datetime(2024, 10, 28, 12, 0, tzinfo=UTC)
    stream = (
        TestStream()
        .add_elements(
            [
                window.TimestampedValue(_article(1, published), T0 + 99_999),
                window.TimestampedValue(_article(2), T0 + 7),
            ]
        )
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=PipelineOptions(STREAMING)) as p:
        stamped = (
            p
            | stream
            | AssignEventTime()
            | beam.Map(lambda a, ts=beam.DoFn.TimestampParam: (a.article_id, ts.micros // 10**6))
        )
        assert_that(stamped, equal_to([("a001", T0 + 12 * 3600), ("a002", T0 + 7)]))


def test_records_are_written_per_window_and_late_ones_are_never_dropped(tmp_path):
    out = tmp_path / "out"
    spec = WindowSpec(size_s=300, allowed_lateness_s=600)
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(_article(1), T0 + 10)])
        .add_elements([window.TimestampedValue(_article(2), T0 + 20)])
        .add_elements([window.TimestampedValue(_article(3), T0 + 310)])
        .advance_watermark_to(T0 + 320)  # first window [T0, T0+300) fires on time
        .add_elements([window.TimestampedValue(_article(4), T0 + 30)])  # late, within lateness
        .advance_watermark_to(T0 + 2000)  # both windows closed for good
        .add_elements([window.TimestampedValue(_article(5), T0 + 40)])  # too late for Beam
        .advance_watermark_to_infinity()
    )
    p = TestPipeline(options=PipelineOptions(STREAMING))
    files = p | stream | WriteWindowed("articles", str(out), "r1", _row, spec, INGESTED)
    # four files: window 1 on time (2 rows), window 2 (1), a late pane (1), the late path (1)
    assert_that(files | beam.Map(lambda f: f[2]), equal_to([2, 1, 1, 1]))
    result = p.run()
    result.wait_until_finish()

    written = {}
    for path in _files(out):
        ids = pq.read_table(path).column("article_id").to_pylist()
        for article_id in ids:
            assert article_id not in written, "a record was written twice"
            written[article_id] = os.path.basename(path)
    assert sorted(written) == ["a001", "a002", "a003", "a004", "a005"]
    first, second = "w20241028T000000Z", "w20241028T000500Z"
    assert first in written["a001"] and written["a001"] == written["a002"]
    assert second in written["a003"]
    assert first in written["a004"] and "-late-" in written["a004"]
    assert first in written["a005"] and "-late-" in written["a005"]
    assert all("ingest_date=2026-12-01" in p for p in _files(out))

    # Beam 2.77's BundleBasedDirectRunner (the one that runs TestStream) reports a counter's
    # value of the first bundle only, so the lateness counters are asserted on files here and
    # on counters in the FnApiRunner tests of the stateful steps.


def test_panes_per_window_with_equal_to_per_window():
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(("k", 1), T0 + 1)])
        .add_elements([window.TimestampedValue(("k", 2), T0 + 301)])
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=PipelineOptions(STREAMING)) as p:
        grouped = (
            p
            | stream
            | beam.WindowInto(window.FixedWindows(300))
            | beam.GroupByKey()
            | beam.MapTuple(lambda k, vs: sorted(vs))
        )
        assert_that(
            grouped,
            equal_to_per_window(
                {
                    window.IntervalWindow(T0, T0 + 300): [[1]],
                    window.IntervalWindow(T0 + 300, T0 + 600): [[2]],
                }
            ),
        )


def test_window_spec_checks_its_arguments():
    with pytest.raises(ValueError):
        WindowSpec(0, 0)
    with pytest.raises(ValueError):
        WindowSpec(60, -1)
    with pytest.raises(ValueError):
        WriteWindowed("nope", "o", "r", _row, WindowSpec(60, 0), INGESTED)
    assert dataclasses.asdict(WindowSpec(60, 0)) == {"size_s": 60, "allowed_lateness_s": 0}


@settings(max_examples=200, deadline=None)
@given(
    micros=st.integers(min_value=0, max_value=4_000_000_000 * 10**6),
    size_s=st.sampled_from([1, 60, 300, 3600, 86400]),
)
def test_window_start_holds_the_timestamp_and_is_idempotent(micros, size_s):
    ts = Timestamp(micros=micros)
    start = window_start(ts, size_s)
    assert start <= ts < start + size_s
    assert window_start(start, size_s) == start


def test_writer_counters_on_the_fnapi_runner(tmp_path):
    items = [window.TimestampedValue(_article(n), T0 + 100 * n) for n in range(1, 5)]
    p = TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    _ = (
        p
        | beam.Create(items)
        | WriteWindowed("articles", str(tmp_path), "r1", _row, WindowSpec(300, 60), INGESTED)
    )
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["on_time_records:articles"] == 4
    assert counters["files:articles"] == 2  # T0+100, T0+200 | T0+300, T0+400
    assert "late_records:articles" not in counters
    assert len(_files(tmp_path)) == 2
