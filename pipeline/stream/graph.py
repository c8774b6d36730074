"""The streaming graph: timestamped work items -> the shared core -> stream dedup -> windowed
Parquet files and the cross-run index (stream-only; state and timers live here, never in the
batch graph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Timestamp
from news_ingest.pipeline import graph
from news_ingest.pipeline.config import Config, fetch_policy
from news_ingest.pipeline.stream.sources import WatchedFile, work_key
from news_ingest.transforms.feeds import FeedSource
from news_ingest.transforms.fetch import FetchPages, PageRequest
from news_ingest.transforms.schema import RawDocument
from news_ingest.transforms.sources import ReadSources
from news_ingest.transforms.stream.dedup import KnownIndex, SeenFilter, StreamDedup
from news_ingest.transforms.stream.poll import PollFeedsForever
from news_ingest.transforms.stream.windows import (
    AssignEventTime,
    IndexPanes,
    WindowSpec,
    WriteWindowed,
)

# What a work item is: a page to fetch, a watched file, a feed entry's own content, or the
# dead letter of a poll or an entry.
_PAGE, _FILE, _DOC, _DEAD = range(4)


def _kind_of_work(item: Any, _n: int) -> int:
    if isinstance(item, PageRequest):
        return _PAGE
    if isinstance(item, WatchedFile):
        return _FILE
    if isinstance(item, RawDocument):
        return _DOC
    return _DEAD


def build_stream(
    items: beam.PCollection,
    cfg: Config,
    ctx: graph.RunContext,
    output: str,
    known: KnownIndex,
    index: str | None = None,
) -> beam.PCollection:
    """Wire the streaming graph: timestamped work items (page requests, watched files, feed
    entries' own content, dead letters of polling) -> windowed Parquet files, and each kept
    article, signed, into the cross-run ``index`` (None: not indexed). Returns the (table,
    path, rows) written."""
    settings = cfg.stream
    fresh = items | "DropSeenWork" >> SeenFilter(work_key, ttl_s=settings.seen_ttl)
    pages, files, entry_docs, polled_dead = fresh | "SplitWork" >> beam.Partition(_kind_of_work, 4)  # type: ignore[arg-type]
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
        entry_docs | "EntryDocsGlobal" >> beam.WindowInto(window.GlobalWindows()),
    ) | "AllDocuments" >> beam.Flatten()
    normalized, core_dead = docs | "ToArticles" >> graph.core(cfg)
    kept, duplicates = (
        normalized
        | "EventTime" >> AssignEventTime()
        | "Deduplicate" >> StreamDedup(ttl_s=cfg.dedup.ttl, known=known, params=cfg.dedup)
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
    indexed = IndexPanes(index, cfg.dedup) if index is not None else None
    written = tuple(
        records
        | f"Write{label}"
        >> WriteWindowed(
            name, output, ctx.run_id, to_row, spec, ingest_date=day, shards=shards, index=target
        )
        for label, name, records, to_row, target in (
            ("Articles", "articles", kept, ctx.article_row, indexed),
            ("Duplicates", "duplicates", duplicates, ctx.duplicate_row, None),
            ("DeadLetters", "dead_letters", dead, ctx.dead_letter_row, None),
        )
    )
    return written | "AllFiles" >> beam.Flatten()


def build_unbounded(
    p: beam.Pipeline,
    cfg: Config,
    ctx: graph.RunContext,
    output: str,
    known: KnownIndex,
    feeds: Sequence[FeedSource],
    index: str | None = None,
    stop_after_s: float | None = None,
) -> beam.PCollection:
    """The streaming graph fed by the in-pipeline feed poller (``PollFeedsForever``), for
    runners that run splittable DoFns in streaming mode (Dataflow, Flink): it writes the
    tables and adds kept articles to the cross-run ``index``, as the launcher's rounds do.
    ``stop_after_s`` bounds the source (tests run it on the FnApiRunner this way)."""
    settings = cfg.stream
    items = p | "PollFeeds" >> PollFeedsForever(
        feeds,
        fetch_policy(cfg),
        tick_s=settings.poll_every,
        max_bytes=cfg.read.max_bytes,
        max_entries=cfg.feeds.max_entries,
        seen_ttl_s=settings.seen_ttl,
        fetch_pages=cfg.feeds.fetch_pages,
        # keyed state holds each feed's state; the shared store only when one is configured
        state_dir=cfg.feeds.state_dir,
        stop_after_s=stop_after_s,
    )
    return build_stream(items, cfg, ctx, output, known, index)


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
