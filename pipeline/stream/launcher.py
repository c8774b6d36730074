"""The stream launcher (stream-only): what a stream reads, the polling loop that feeds each
round's new work to the streaming graph, and how it stops.

Beam 2.77's Python DirectRunner runs streaming graphs only on its bundle-based engine, which
cannot expand a splittable DoFn in streaming mode; so here the launcher polls and feeds each
round to the graph as a ``TestStream`` (see ``news_ingest.pipeline.stream``). On Dataflow and Flink the same
graph is submitted fed by ``PollFeedsForever`` (``submit_unbounded``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp
from news_ingest.pipeline import __version__, graph
from news_ingest.pipeline.batch import UsageError, check_output, check_run_id, new_run_id
from news_ingest.pipeline.config import (
    Config,
    ConfigError,
    StreamConfig,
    fetch_policy,
    landing_rule,
    resolve,
)
from news_ingest.pipeline.stream import manifest as stream_manifest
from news_ingest.pipeline.stream import state
from news_ingest.pipeline.stream.graph import build_stream, build_unbounded, round_stream
from news_ingest.pipeline.stream.manifest import RUNNER
from news_ingest.transforms import sinks
from news_ingest.transforms.feeds import FeedSource
from news_ingest.transforms.fetch import Fetcher, PageRequest
from news_ingest.transforms.poll import (
    NOT_DUE,
    FeedState,
    Release,
    SeenStore,
    WatchedFile,
    document_time,
    entry_work,
    poll_once,
    replay_schedule,
    scan_files,
    work_key,
)
from news_ingest.transforms.schema import UTC
from news_ingest.transforms.sources import FEED_LIST, kind_of
from news_ingest.transforms.windows import to_timestamp

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class Source:
    """What a stream reads: feeds, watched paths, or a replay schedule."""

    feeds: list[FeedSource] = dataclasses.field(default_factory=list)
    watch: list[str] = dataclasses.field(default_factory=list)
    replay: list[Release] | None = None


@dataclasses.dataclass
class Stats:
    rounds: int = 0
    items: int = 0
    skipped_seen: int = 0
    polls: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


class StopFlag:
    """Set by SIGINT/SIGTERM (first signal: stop after the running round) or a deadline."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    def is_set(self) -> bool:
        if self.deadline is not None and time.time() >= self.deadline:
            self.set("duration")
        return self.event.is_set()

    def wait(self, seconds: float) -> None:
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.time()))
        self.event.wait(max(0.0, seconds))


def _install_signals(stop: StopFlag) -> list[tuple[int, Any]]:
    previous = []

    def handler(signum: int, _frame: Any) -> None:
        stop.set(signal.Signals(signum).name)
        # A second signal stops at once.
        signal.signal(
            signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler
        )

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous.append((sig, signal.signal(sig, handler)))
    return previous


def _run_round(
    items: list[tuple[Any, Timestamp]],
    cfg: Config,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
    watermark: Timestamp | None,
    beam_args: list[str],
) -> None:
    options = PipelineOptions(beam_args, runner=RUNNER, streaming=True)
    p = beam.Pipeline(options=options)
    work = p | "Work" >> round_stream(items, watermark)
    build_stream(work, cfg, ctx, output, known)
    p.run().wait_until_finish()


def watched_files(source: Source, cfg: Config, now: float) -> list[WatchedFile]:
    """The complete files now in the watched folders (the landing rule of the ``stream:``
    section): the one place a stream lists them (each round)."""
    return scan_files(source.watch, landing_rule(cfg), now)


def _collect(
    source: Source,
    store: SeenStore,
    fetcher: Fetcher | None,
    cfg: Config,
    stats: Stats,
    started: float,
    now: float,
) -> tuple[list[tuple[Any, Timestamp]], list[str]]:
    """The new work of this round with element times, and its seen keys."""
    items: list[tuple[Any, Timestamp]] = []
    keys: list[str] = []
    stamp = Timestamp(now)

    def offer(item: Any, ts: Timestamp, ref: str | None) -> None:
        key = work_key(item)
        if key in store or (ref is not None and f"ref:{ref}" in store) or key in keys:
            stats.skipped_seen += 1
            return
        keys.append(key)
        items.append((item, ts))

    for feed in source.feeds:
        if fetcher is None:
            break
        state = store.feeds.get(feed.url) or FeedState()
        result = poll_once(fetcher, feed, state, now, cfg.feeds.max_entries)
        stats.polls[result.status] += 1
        if result.status == NOT_DUE:
            continue
        store.feeds[feed.url] = result.state
        if result.dead is not None:
            offer(result.dead, stamp, None)
        for entry in result.entries:
            work = entry_work(entry)
            offer(work, stamp, work.source_ref if isinstance(work, PageRequest) else None)
    for found in watched_files(source, cfg, now):
        offer(found, stamp, None)
    if source.replay is not None:
        elapsed = now - started
        while source.replay and source.replay[0].after_s <= elapsed:
            release = source.replay.pop(0)
            when = stamp if release.event_time is None else to_timestamp(release.event_time)
            offer(release.file, when, None)
    return items, keys


def run_stream(
    cfg: Config,
    source: Source,
    *,
    mode: str,
    duration_s: float | None,
    run_id: str | None = None,
    beam_args: list[str] | None = None,
) -> dict[str, Any]:
    """Run a stream until the source is exhausted (replay), ``duration_s`` passes or a signal
    arrives; returns the manifest."""
    started_at = dt.datetime.now(UTC)
    started = time.time()
    run_id = check_run_id(run_id) if run_id else new_run_id(started_at)
    output = cfg.output.path
    check_output(output)
    settings = cfg.stream
    ctx = graph.RunContext(run_id=run_id, started_at=started_at, pipeline_version=__version__)
    state_path = os.path.join(state.state_dir(output), state.STATE_FILE)
    store = SeenStore(state_path, settings.seen_ttl)
    index = state.index_folder(cfg)
    saved_at = os.path.getmtime(state_path) if os.path.exists(state_path) else 0.0
    # Rows written after the last save (a round that crashed before saving) count as seen, and
    # their kept articles are indexed (again, if the crash came after the index file: harmless).
    recovered = state.remember_written(store, state.written_since(output, saved_at), started)
    state.index_kept(index, cfg, run_id, recovered, f"recovered-{int(saved_at * 1e6)}")
    meta = state.load_meta(output)
    watermark: Timestamp | None = None
    if mode == "stream" and meta.get("watermark_micros"):
        watermark = Timestamp(micros=meta["watermark_micros"])

    fetcher = Fetcher(fetch_policy(cfg)) if source.feeds else None
    stop = StopFlag(started + duration_s if duration_s else None)
    previous = _install_signals(stop)
    stats = Stats()
    status = "succeeded"
    try:
        while True:
            now = time.time()
            items, keys = _collect(source, store, fetcher, cfg, stats, started, now)
            if items:
                stats.rounds += 1
                stats.items += len(items)
                LOG.info("round %d: %d new items", stats.rounds, len(items))
                # Rows are stamped with when their round ingested them (as a batch run stamps
                # its start), and partitioned by that date.
                round_ctx = dataclasses.replace(ctx, started_at=dt.datetime.fromtimestamp(now, UTC))
                known = state.known_keys(index, round_ctx.started_at, cfg.dedup.ttl)
                _run_round(items, cfg, round_ctx, output, known, watermark, beam_args or [])
                kept = state.remember_written(store, state.written_since(output, now), now)
                label = f"{round_ctx.started_at:%Y%m%dT%H%M%S%fZ}"
                state.index_kept(index, cfg, run_id, kept, label)
                if index is not None:
                    not_before = round_ctx.started_at - dt.timedelta(seconds=cfg.dedup.ttl)
                    sinks.prune_index(index, not_before)
            store.add(keys, now)
            store.prune(now)
            if mode == "stream":
                # The next round starts where the wall clock (less the lag) has got to, so
                # records for windows that closed meanwhile are late, as on a real runner. A
                # replay's time is its documents' dates: each of its rounds starts open.
                lagged = Timestamp(now - settings.watermark_lag)
                watermark = lagged if watermark is None else max(watermark, lagged)
                meta["watermark_micros"] = watermark.micros
            # state.json last: its time marks what a restart may take as saved.
            state.save_meta(output, meta)
            store.save()
            if mode == "replay" and not source.replay:
                stop.set("replayed")
            if stop.is_set():
                break
            stop.wait(_next_wait(source, settings, started))
            if stop.is_set():
                break
    except BaseException:
        status = "failed"
        raise
    finally:
        for sig, handler in previous:
            signal.signal(sig, handler)
        if fetcher is not None:
            fetcher.close()
        if status == "failed":
            LOG.error("stream %s failed; state saved after the last complete round", run_id)
    files = stream_manifest.finalize_tables(output, run_id, started_at)
    return stream_manifest.write_manifest(
        cfg, output, run_id, started_at, started, files, stats, mode, stop.reason
    )


def _next_wait(source: Source, settings: StreamConfig, started: float) -> float:
    if source.replay:
        return max(0.0, source.replay[0].after_s - (time.time() - started))
    return settings.poll_every


def stream_source(cfg: Config) -> Source:
    """Feeds (feed URLs, feed files, feeds lists, ``feeds.sources``) and watched folders."""
    from news_ingest.transforms.feeds import feed_source, load_feed_list

    feeds: list[FeedSource] = []
    watch: list[str] = []
    for spec in cfg.inputs:
        if spec.startswith(("http://", "https://")):
            try:
                feeds.append(feed_source(spec))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            continue
        path = resolve(spec)
        if os.path.isfile(path) and kind_of(path) == FEED_LIST:
            try:
                feeds.extend(load_feed_list(path))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        elif os.path.exists(path):
            watch.append(path)
        else:
            raise UsageError(f"input not found: {spec}")
    from news_ingest.pipeline.config import feed_sources

    feeds.extend(feed_sources(cfg))
    local = [f for f in feeds if not f.is_remote]
    if local:
        raise UsageError(
            f"stream polls http(s) feeds; watch a folder for local files: {local[0].url}"
        )
    if not feeds and not watch:
        raise UsageError("stream needs feeds (--input URL or a feeds list) or folders to watch")
    return Source(feeds=sorted(set(feeds), key=lambda f: f.url), watch=watch)


def replay_source(cfg: Config, paths: Sequence[str], speed: float) -> Source:
    """The replay schedule of seed-style files (default ``seeds/``)."""
    specs = [resolve(p) for p in paths] or [resolve("seeds")]
    missing = [p for p in specs if not os.path.exists(p)]
    if missing:
        raise UsageError(f"input not found: {missing[0]}")
    files = scan_files(specs)
    if not files:
        raise UsageError(f"no input files under {', '.join(specs)}")
    times = {f.path: document_time(f.path, cfg.read.max_bytes) for f in files}
    return Source(replay=replay_schedule(files, times, speed))


def submit_unbounded(cfg: Config, run_id: str | None, beam_args: list[str]) -> str:
    """Submit the unbounded graph to Dataflow or Flink (state, timers and SDFs run there)."""
    from news_ingest.pipeline import runners

    source = stream_source(cfg)
    if source.watch:
        raise UsageError("on dataflow/flink, stream polls feeds only; folders are watched locally")
    try:
        options = runners.pipeline_options(cfg.runner.name, cfg.runner.workers, beam_args)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    options.view_as(beam.options.pipeline_options.StandardOptions).streaming = True
    started = dt.datetime.now(UTC)
    ctx = graph.RunContext(
        run_id=check_run_id(run_id) if run_id else new_run_id(started),
        started_at=started,
        pipeline_version=__version__,
    )
    p = beam.Pipeline(options=options)
    known = state.known_keys(state.index_folder(cfg), started, cfg.dedup.ttl)
    build_unbounded(p, cfg, ctx, cfg.output.path, known, source.feeds)
    result = p.run()
    return f"news-ingest stream {ctx.run_id}: submitted to {cfg.runner.name} ({result.state})"
