"""The streaming graph: timestamped work items -> the shared core -> stream dedup -> windowed
Parquet files (stream-only; state and timers live here, never in the batch graph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Timestamp
from news_ingest.pipeline import graph
from news_ingest.pipeline.config import Config, fetch_policy
from news_ingest.transforms.feeds import FeedSource
from news_ingest.transforms.fetch import FetchPages, PageRequest
from news_ingest.transforms.poll import PollFeedsForever, WatchedFile, work_key
from news_ingest.transforms.sources import ReadSources
from news_ingest.transforms.stream_dedup import SeenFilter, StreamDedup
from news_ingest.transforms.windows import AssignEventTime, WindowSpec, WriteWindowed


def _kind_of_work(item: Any, _n: int) -> int:
    if isinstance(item, PageRequest):
        return 0
    if isinstance(item, WatchedFile):
        return 1
    return 2


def build_stream(
    items: beam.PCollection,
    cfg: Config,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
) -> beam.PCollection:
    """Wire the streaming graph: timestamped work items (page requests, watched files, dead
    letters of polling) -> windowed Parquet files. Returns the (table, path, rows) written."""
    settings = cfg.stream
    fresh = items | "DropSeenWork" >> SeenFilter(work_key, ttl_s=settings.seen_ttl)
    pages, files, polled_dead = fresh | "SplitWork" >> beam.Partition(_kind_of_work, 3)
    file_docs, read_dead = (
        files | "FilePaths" >> beam.Map(lambda f: f.path) | "Read" >> ReadSources(cfg.read)
    )
    # FetchPages groups requests by host; in a stream its GroupByKey must fire per element
    # (not at the end of the global window), and keep the poll time as the element time.
    page_docs, fetch_dead = (
        pages
        | "FirePerRequest"
        >> beam.WindowInto(
            window.GlobalWindows(),
            trigger=trigger.Repeatedly(trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
            timestamp_combiner=window.TimestampCombiner.OUTPUT_AT_EARLIEST,
        )
        | "FetchPages" >> FetchPages(fetch_policy(cfg))
    )
    docs = (
        file_docs | "FileDocsGlobal" >> beam.WindowInto(window.GlobalWindows()),
        page_docs | "PageDocsGlobal" >> beam.WindowInto(window.GlobalWindows()),
    ) | "AllDocuments" >> beam.Flatten()
    normalized, core_dead = docs | "ToArticles" >> graph.core(cfg)
    kept, duplicates = (
        normalized
        | "EventTime" >> AssignEventTime()
        | "Deduplicate" >> StreamDedup(ttl_s=cfg.dedup.ttl, known=known)
    )
    dead = (
        tuple(
            d | f"DeadGlobal{i}" >> beam.WindowInto(window.GlobalWindows())
            for i, d in enumerate((polled_dead, read_dead, fetch_dead, core_dead))
        )
        | "AllDeadLetters" >> beam.Flatten()
    )
    spec = WindowSpec(settings.window, settings.allowed_lateness)
    day, shards = ctx.started_at.date(), cfg.output.shards
    written = tuple(
        records
        | f"Write{label}"
        >> WriteWindowed(name, output, ctx.run_id, to_row, spec, ingest_date=day, shards=shards)
        for label, name, records, to_row in (
            ("Articles", "articles", kept, ctx.article_row),
            ("Duplicates", "duplicates", duplicates, ctx.duplicate_row),
            ("DeadLetters", "dead_letters", dead, ctx.dead_letter_row),
        )
    )
    return written | "AllFiles" >> beam.Flatten()


def build_unbounded(
    p: beam.Pipeline,
    cfg: Config,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
    feeds: Sequence[FeedSource],
    stop_after_s: float | None = None,
) -> beam.PCollection:
    """The streaming graph fed by the in-pipeline feed poller (``PollFeedsForever``), for
    runners that run splittable DoFns in streaming mode (Dataflow, Flink). ``stop_after_s``
    bounds the source (tests run it on the FnApiRunner this way)."""
    settings = cfg.stream
    items = p | "PollFeeds" >> PollFeedsForever(
        feeds,
        fetch_policy(cfg),
        tick_s=settings.poll_every,
        max_entries=cfg.feeds.max_entries,
        seen_ttl_s=settings.seen_ttl,
        stop_after_s=stop_after_s,
    )
    return build_stream(items, cfg, ctx, output, known)


def round_stream(items: Sequence[tuple[Any, Timestamp]], watermark: Timestamp | None) -> TestStream:
    """One round's work as a TestStream: the watermark where the last round left it, the
    items in event-time order, then the watermark to infinity (every window fires)."""
    stream = TestStream()
    if watermark is not None:
        # TestStream's watermark events carry whole milliseconds.
        stream = stream.advance_watermark_to(Timestamp(micros=watermark.micros // 1000 * 1000))
    # One element event, so one bundle: per-bundle costs (an extraction subprocess, a fetcher)
    # are paid once per round, not once per item.
    ordered = sorted(items, key=lambda it: (it[1], work_key(it[0])))
    if ordered:
        stream = stream.add_elements([window.TimestampedValue(item, ts) for item, ts in ordered])
    return stream.advance_watermark_to_infinity()
