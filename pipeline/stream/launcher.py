"""The stream launcher (stream-only): the polling loop that feeds each round's new work to the
streaming graph, and how it stops (what a stream reads is ``sources``).

Beam 2.77's Python DirectRunner runs streaming graphs only on its bundle-based engine, which
cannot expand a splittable DoFn in streaming mode; so here the launcher polls and feeds each
round to the graph as a ``TestStream`` (see ``news_ingest.pipeline.stream``). On Dataflow and
Flink the same graph is submitted fed by ``PollFeedsForever`` (``submit_unbounded``). Both poll
feeds through the one poller (``feeds.poll_feed``) on the one feed state.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import signal
import threading
import time
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp
from news_ingest.pipeline import __version__, graph
from news_ingest.pipeline.batch import UsageError, check_output, check_run_id, new_run_id
from news_ingest.pipeline.config import Config, StreamConfig, fetch_policy, landing_rule
from news_ingest.pipeline.stream import manifest as stream_manifest
from news_ingest.pipeline.stream import state
from news_ingest.pipeline.stream.graph import build_stream, build_unbounded, round_stream
from news_ingest.pipeline.stream.manifest import RUNNER
from news_ingest.pipeline.stream.sources import (
    Source,
    WatchedFile,
    replay_source,
    scan_files,
    stream_source,
    work_key,
)
from news_ingest.pipeline.stream.state import SeenStore
from news_ingest.transforms import files, sinks
from news_ingest.transforms.feeds import (
    NOT_DUE,
    FeedState,
    FeedStateStore,
    entry_work,
    poll_feed,
)
from news_ingest.transforms.fetch import Fetcher, PageRequest
from news_ingest.transforms.schema import UTC
from news_ingest.transforms.stream.dedup import KnownIndex
from news_ingest.transforms.stream.windows import to_timestamp

# Defined in ``sources``; imported here too because the CLI and tests reach them as
# ``launcher.stream_source`` and ``launcher.replay_source``.
__all__ = ["replay_source", "run_stream", "stream_source", "submit_unbounded"]

LOG = logging.getLogger(__name__)


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
    previous: list[tuple[int, Any]] = []

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
    known: KnownIndex,
    index: str | None,
    watermark: Timestamp | None,
    beam_args: list[str],
) -> None:
    options = PipelineOptions(beam_args, runner=RUNNER, streaming=True)
    p = beam.Pipeline(options=options)
    work = p | "Work" >> round_stream(items, watermark)
    build_stream(work, cfg, ctx, output, known, index)
    p.run().wait_until_finish()


def watched_files(source: Source, cfg: Config, now: float) -> list[WatchedFile]:
    """The complete files now in the watched folders (the landing rule of the ``stream:``
    section): the one place a stream lists them (each round)."""
    return scan_files(source.watch, landing_rule(cfg), now)


def _collect(
    source: Source,
    store: SeenStore,
    feed_store: FeedStateStore,
    polled_states: dict[str, FeedState],
    fetcher: Fetcher | None,
    cfg: Config,
    stats: Stats,
    started: float,
    now: float,
) -> tuple[list[tuple[Any, Timestamp]], list[str]]:
    """The new work of this round with element times, and its seen keys; the feeds' new states
    go to ``polled_states``, saved once the round's files are written (a round that fails
    leaves the validators as they were, so its entries are fetched again, not lost)."""
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
        feed_state = feed_store.load(feed.url)
        polled = poll_feed(
            fetcher, feed, feed_state, now, cfg.read.max_bytes, cfg.feeds.max_entries
        )
        stats.polls[polled.status] += 1
        if polled.status == NOT_DUE:
            continue
        if polled.state != feed_state:
            polled_states[feed.url] = polled.state
        if polled.dead is not None:
            offer(polled.dead, stamp, None)
        for entry in polled.entries:
            work = entry_work(entry, cfg.feeds.fetch_pages)
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
    state_path = files.join(state.state_dir(output), state.STATE_FILE)
    store = SeenStore(state_path, settings.seen_ttl)
    feed_store = state.feed_store(cfg)
    index = state.index_folder(cfg)
    # On the output's own file system and clock (an object store's, for a bucket).
    saved_at = state.saved_at(output)
    # Rows written after the last save (a round that crashed before saving) count as seen, and
    # their kept articles are indexed (again, if the graph indexed them already: harmless).
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
            polled_states: dict[str, FeedState] = {}
            items, keys = _collect(
                source, store, feed_store, polled_states, fetcher, cfg, stats, started, now
            )
            if items:
                stats.rounds += 1
                stats.items += len(items)
                LOG.info("round %d: %d new items", stats.rounds, len(items))
                # Rows are stamped with when their round ingested them (as a batch run stamps
                # its start), and partitioned by that date.
                round_ctx = dataclasses.replace(ctx, started_at=dt.datetime.fromtimestamp(now, UTC))
                known = state.known_index(index, cfg, round_ctx.started_at)
                day = round_ctx.started_at.date()
                before = state.round_files(output, run_id, day)
                # The graph adds the round's kept articles to the index, pane by pane.
                _run_round(items, cfg, round_ctx, output, known, index, watermark, beam_args or [])
                # The round's files by listing, not by time: an object store's clock is not ours.
                written = state.round_files(output, run_id, day) - before
                state.remember_written(store, state.rows_of(written), now)
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
            for url, feed_state in polled_states.items():
                feed_store.save(url, feed_state)
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
    tables = stream_manifest.finalize_tables(output, run_id, started_at)
    return stream_manifest.write_manifest(
        cfg, output, run_id, started_at, started, tables, stats, mode, stop.reason
    )


def _next_wait(source: Source, settings: StreamConfig, started: float) -> float:
    if source.replay:
        return max(0.0, source.replay[0].after_s - (time.time() - started))
    return settings.poll_every


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
    index = state.index_folder(cfg)
    known = state.known_index(index, cfg, started)
    build_unbounded(p, cfg, ctx, cfg.output.path, known, source.feeds, index)
    result = p.run()
    return f"news-ingest stream {ctx.run_id}: submitted to {cfg.runner.name} ({result.state})"
