"""Streaming mode: ``news-ingest stream`` (feeds and watched folders) and ``replay`` (seed-style
files as a timed stream), through one streaming graph with state, timers and event-time windows.

How it runs here. Beam 2.77's Python DirectRunner runs streaming graphs only on its
bundle-based engine, which cannot expand a splittable DoFn in streaming mode (so no
``PeriodicImpulse`` or other polling source), and whose ``TestStream`` is the one unbounded
source it runs. So the launcher polls (feeds on their own intervals with conditional GET,
watched folders, the replay schedule) and feeds each round's new work to the streaming graph
as a ``TestStream`` on the ``BundleBasedDirectRunner``, named explicitly (Beam's default may try
to download Prism). The graph is the same one ``PollFeedsForever`` feeds on Dataflow/Flink.

Between rounds the launcher keeps, under ``OUT/_stream/``: the seen work keys and each feed's
validators (``state.json``), the dedup index of kept articles (``dedup_index.json``) and the
watermark. They are saved after a round's files are written; on start, rows written after the
last save (a crash mid-round) are read back so their inputs are not written again.

Stopping (SIGINT, SIGTERM or ``--duration``) lets the running round finish: its TestStream ends
with the watermark at infinity, so every open window fires and its files are finalized. Then the
manifest is written.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import glob
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Timestamp

from pipeline import __version__, graph, manifest
from pipeline.batch import UsageError, check_output, check_run_id, new_run_id
from pipeline.config import (
    Config,
    ConfigError,
    fetch_policy,
    landing_rule,
    resolve,
    stream_seconds,
)
from transforms.clean import Clean
from transforms.extract import Extract
from transforms.feeds import FeedSource
from transforms.fetch import Fetcher, FetchPages, PageRequest
from transforms.normalize import Normalize
from transforms.poll import (
    NOT_DUE,
    FeedState,
    PollFeedsForever,
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
from transforms.schema import SCHEMA_VERSION, TABLES, UTC
from transforms.sinks import write_parquet
from transforms.sources import FEED_LIST, ReadSources, kind_of
from transforms.stream_dedup import SeenFilter, StreamDedup, index_keys
from transforms.windows import AssignEventTime, WindowSpec, WriteWindowed, to_timestamp

LOG = logging.getLogger(__name__)

STATE_DIR = "_stream"
STATE_FILE = "state.json"
INDEX_FILE = "dedup_index.json"
RUNNER = "BundleBasedDirectRunner"


@dataclasses.dataclass(frozen=True)
class StreamSettings:
    """The ``stream:`` section in seconds, plus the shards per pane."""

    window_s: float
    allowed_lateness_s: float
    watermark_lag_s: float
    poll_every_s: float
    seen_ttl_s: float
    dedup_ttl_s: float
    shards: int = 1

    @classmethod
    def of(cls, cfg: Config) -> StreamSettings:
        return cls(
            window_s=stream_seconds(cfg, "window"),
            allowed_lateness_s=stream_seconds(cfg, "allowed_lateness"),
            watermark_lag_s=stream_seconds(cfg, "watermark_lag"),
            poll_every_s=stream_seconds(cfg, "poll_every"),
            seen_ttl_s=stream_seconds(cfg, "seen_ttl"),
            dedup_ttl_s=stream_seconds(cfg, "dedup_ttl"),
            shards=cfg.output.shards,
        )


# --- The streaming graph ------------------------------------------------------------------


def _kind_of_work(item: Any, _n: int) -> int:
    if isinstance(item, PageRequest):
        return 0
    if isinstance(item, WatchedFile):
        return 1
    return 2


def build_stream(
    items: beam.PCollection,
    cfg: Config,
    settings: StreamSettings,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
) -> beam.PCollection:
    """Wire the streaming graph: timestamped work items (page requests, watched files, dead
    letters of polling) -> windowed Parquet files. Returns the (table, path, rows) written."""
    fresh = items | "DropSeenWork" >> SeenFilter(work_key, settings.seen_ttl_s)
    pages, files, polled_dead = fresh | "SplitWork" >> beam.Partition(_kind_of_work, 3)
    file_docs, read_dead = (
        files
        | "FilePaths" >> beam.Map(lambda f: f.path)
        | "Read" >> ReadSources(cfg.read.max_bytes)
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
    extracted, extract_dead = docs | "Extract" >> Extract(
        cfg.extract.timeout_s, graph.extract_options(cfg), graph.extract_isolation(cfg)
    )
    default_pack, source_packs = graph.rule_packs(cfg)
    cleaned, clean_dead = extracted | "Clean" >> Clean(
        default_pack, source_packs, cfg.clean.min_words
    )
    normalized, normalize_dead = cleaned | "Normalize" >> Normalize()
    kept, duplicates = (
        normalized
        | "EventTime" >> AssignEventTime()
        | "Deduplicate" >> StreamDedup(settings.dedup_ttl_s, known)
    )
    dead = (
        tuple(
            d | f"DeadGlobal{i}" >> beam.WindowInto(window.GlobalWindows())
            for i, d in enumerate(
                (polled_dead, read_dead, fetch_dead, extract_dead, clean_dead, normalize_dead)
            )
        )
        | "AllDeadLetters" >> beam.Flatten()
    )
    spec = WindowSpec(settings.window_s, settings.allowed_lateness_s)
    written = (
        kept
        | "WriteArticles"
        >> WriteWindowed("articles", output, ctx.run_id, ctx.article_row, spec, settings.shards),
        duplicates
        | "WriteDuplicates"
        >> WriteWindowed(
            "duplicates", output, ctx.run_id, ctx.duplicate_row, spec, settings.shards
        ),
        dead
        | "WriteDeadLetters"
        >> WriteWindowed(
            "dead_letters", output, ctx.run_id, ctx.dead_letter_row, spec, settings.shards
        ),
    )
    return written | "AllFiles" >> beam.Flatten()


def build_unbounded(
    p: beam.Pipeline,
    cfg: Config,
    settings: StreamSettings,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
    feeds: Sequence[FeedSource],
    stop_after_s: float | None = None,
) -> beam.PCollection:
    """The streaming graph fed by the in-pipeline feed poller (``PollFeedsForever``), for
    runners that run splittable DoFns in streaming mode (Dataflow, Flink). ``stop_after_s``
    bounds the source (tests run it on the FnApiRunner this way)."""
    items = p | "PollFeeds" >> PollFeedsForever(
        feeds,
        fetch_policy(cfg),
        tick_s=settings.poll_every_s,
        max_entries=cfg.feeds.max_entries,
        seen_ttl_s=settings.seen_ttl_s,
        stop_after_s=stop_after_s,
    )
    return build_stream(items, cfg, settings, ctx, output, known)


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


# --- State between rounds -----------------------------------------------------------------


def _state_dir(output: str) -> str:
    return os.path.join(output, STATE_DIR)


def load_index(output: str) -> dict[str, str]:
    path = os.path.join(_state_dir(output), INDEX_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {str(k): str(v) for k, v in data.get("kept", {}).items()}


def save_index(output: str, kept: dict[str, str]) -> None:
    path = os.path.join(_state_dir(output), INDEX_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"kept": kept}, fh, sort_keys=True)
    os.replace(tmp, path)


def table_files(output: str, name: str, run_id: str | None = None) -> list[str]:
    pattern = f"part-{run_id}-*.parquet" if run_id else "*.parquet"
    return sorted(glob.glob(os.path.join(output, name, "ingest_date=*", pattern)))


def written_since(output: str, since: float) -> Iterator[dict[str, Any]]:
    """Rows (source_ref, canonical_url, content_hash, article_id) of the articles, duplicates
    and dead letters written after ``since`` (epoch seconds)."""
    for name in TABLES:
        for path in table_files(output, name):
            if os.path.getmtime(path) < since:
                continue
            yield from pq.read_table(path).to_pylist()


def remember_written(
    store: SeenStore, kept: dict[str, str], rows: Iterator[dict[str, Any]], now: float
) -> None:
    """Mark the inputs of written rows as seen and index the kept articles' dedup keys."""
    from transforms.schema import Article

    for row in rows:
        store.add([f"ref:{row['source_ref']}"], now)
        if "content_hash" in row and "duplicate_of" not in row:
            article = Article(
                article_id=row["article_id"],
                source_kind=row["source_kind"],
                source_ref=row["source_ref"],
                canonical_url=row.get("canonical_url"),
                content_hash=row.get("content_hash"),
            )
            for key in index_keys(article):
                kept.setdefault(key, article.article_id)


# --- The launcher -------------------------------------------------------------------------


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
    settings: StreamSettings,
    ctx: graph.RunContext,
    output: str,
    known: dict[str, str],
    watermark: Timestamp | None,
    beam_args: list[str],
) -> None:
    options = PipelineOptions(beam_args, runner=RUNNER, streaming=True)
    p = beam.Pipeline(options=options)
    work = p | "Work" >> round_stream(items, watermark)
    build_stream(work, cfg, settings, ctx, output, known)
    p.run().wait_until_finish()


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
    for found in scan_files(source.watch, landing_rule(cfg), now):
        offer(found, stamp, None)
    if source.replay is not None:
        elapsed = now - started
        while source.replay and source.replay[0].after_s <= elapsed:
            release = source.replay.pop(0)
            when = stamp if release.event_time is None else to_timestamp(release.event_time)
            offer(release.file, when, None)
    return items, keys


def _finalize_tables(output: str, run_id: str, started: dt.datetime) -> dict[str, list[str]]:
    """This run's files per table; a table without any gets one empty file with its schema."""
    files: dict[str, list[str]] = {}
    for name, schema in TABLES.items():
        found = table_files(output, name, run_id)
        if not found:
            path = os.path.join(
                output,
                name,
                f"ingest_date={started.date().isoformat()}",
                f"part-{run_id}-empty.parquet",
            )
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_parquet(schema.empty_table(), name, path)
            found = [path]
        files[name] = found
    return files


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
    settings = StreamSettings.of(cfg)
    ctx = graph.RunContext(run_id=run_id, started_at=started_at, pipeline_version=__version__)
    state_path = os.path.join(_state_dir(output), STATE_FILE)
    store = SeenStore(state_path, settings.seen_ttl_s)
    kept = load_index(output)
    saved_at = os.path.getmtime(state_path) if os.path.exists(state_path) else 0.0
    # Rows written after the last save (a round that crashed before saving) count as seen.
    remember_written(store, kept, written_since(output, saved_at), started)
    meta = _load_meta(output)
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
                _run_round(items, cfg, settings, ctx, output, kept, watermark, beam_args or [])
                remember_written(store, kept, written_since(output, now), now)
            store.add(keys, now)
            store.prune(now)
            if mode == "stream":
                # The next round starts where the wall clock (less the lag) has got to, so
                # records for windows that closed meanwhile are late, as on a real runner. A
                # replay's time is its documents' dates: each of its rounds starts open.
                lagged = Timestamp(now - settings.watermark_lag_s)
                watermark = lagged if watermark is None else max(watermark, lagged)
                meta["watermark_micros"] = watermark.micros
            # state.json last: its time marks what a restart may take as saved.
            save_index(output, kept)
            _save_meta(output, meta)
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
    files = _finalize_tables(output, run_id, started_at)
    return _write_manifest(
        cfg, output, run_id, started_at, started, files, stats, mode, stop, settings
    )


def _next_wait(source: Source, settings: StreamSettings, started: float) -> float:
    if source.replay:
        return max(0.0, source.replay[0].after_s - (time.time() - started))
    return settings.poll_every_s


def _load_meta(output: str) -> dict[str, Any]:
    path = os.path.join(_state_dir(output), "meta.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _save_meta(output: str, meta: dict[str, Any]) -> None:
    path = os.path.join(_state_dir(output), "meta.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    os.replace(tmp, path)


def _write_manifest(
    cfg: Config,
    output: str,
    run_id: str,
    started_at: dt.datetime,
    started: float,
    files: dict[str, list[str]],
    stats: Stats,
    mode: str,
    stop: StopFlag,
    settings: StreamSettings,
) -> dict[str, Any]:
    finished = dt.datetime.now(UTC)
    seconds = time.time() - started
    counts = manifest.table_counts(files)
    documents = sum(counts.values())
    windows = sorted(
        {
            os.path.basename(p).split("-w", 1)[1][:16]
            for v in files.values()
            for p in v
            if "-w" in os.path.basename(p)
        }
    )
    body: dict[str, Any] = {
        "run_id": run_id,
        "mode": mode,
        "status": "succeeded",
        "stopped_by": stop.reason,
        "started_at": started_at.isoformat(),
        "finished_at": finished.isoformat(),
        "seconds": round(seconds, 3),
        "docs_per_s": round(documents / seconds, 2) if seconds > 0 else 0.0,
        "pipeline_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "runner": RUNNER,
        "workers": 1,
        "output": output,
        "ingest_date": started_at.date().isoformat(),
        "inputs": {"documents": documents, "items": stats.items, "specs": list(cfg.inputs)},
        "counts": counts,
        "stream": {
            "rounds": stats.rounds,
            "items": stats.items,
            "skipped_seen": stats.skipped_seen,
            "polls": dict(sorted(stats.polls.items())),
            "windows": windows,
            "late_files": sum(1 for v in files.values() for p in v if "-late-" in p),
            "settings": dataclasses.asdict(settings),
        },
        "stages": {},
        "dead_letter_reasons": manifest.dead_letter_reasons(files["dead_letters"]),
        "top_rules": manifest.top_rules(files["articles"]),
        "files": {k: [os.path.relpath(p, output) for p in v] for k, v in files.items()},
        "config": dataclasses.asdict(cfg),
    }
    manifest.write_manifest(output, body)
    return body


# --- Entry points -------------------------------------------------------------------------


def stream_source(cfg: Config) -> Source:
    """Feeds (feed URLs, feed files, feeds lists, ``feeds.sources``) and watched folders."""
    from transforms.feeds import feed_source, load_feed_list

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
    from pipeline.config import feed_sources

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


# --- Command line -------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Register ``stream`` and ``replay`` on the CLI's subparsers."""
    stream = sub.add_parser(
        "stream",
        help="poll feeds and watch folders, writing Parquet per event-time window",
        description=(
            "Run the streaming graph: poll each feed on its own interval (conditional GET), "
            "watch folders for new files, write Parquet per window. Stops on SIGINT/SIGTERM "
            "or after --duration, finalizing the open windows; a restart continues."
        ),
    )
    stream.add_argument(
        "--input",
        action="append",
        metavar="FEEDS_OR_DIR",
        help="feed URL, feeds list (.yaml) or folder to watch; repeatable",
    )
    stream.add_argument("--duration", metavar="D", help="stop after D (e.g. 90s, 10m)")
    stream.add_argument(
        "--runner",
        choices=("direct", "dataflow", "flink"),
        help="direct (default): polling rounds here; dataflow/flink: submit the unbounded job",
    )
    stream.set_defaults(func=_cmd_stream)
    replay = sub.add_parser(
        "replay",
        help="replay seed-style files as a timed stream through the streaming graph",
        description=(
            "Replay files (default seeds/) in the order of their dates, --speed times faster "
            "than the dates are apart, through the streaming graph."
        ),
    )
    replay.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: seeds/)"
    )
    replay.add_argument("--speed", type=float, metavar="X", help="time compression (default 1)")
    replay.set_defaults(func=_cmd_replay)
    for cmd in (stream, replay):
        cmd.add_argument("--output", metavar="DIR", help="output root (default: output/)")
        cmd.add_argument(
            "--config", metavar="FILE", help="YAML file overlaying configs/default.yaml"
        )
        cmd.add_argument("--window", metavar="W", help="window size (default 5m)")
        cmd.add_argument("--run-id", metavar="ID", help="run id carried by every file name")


def _overrides(args: Any) -> dict[str, Any]:
    over: dict[str, Any] = {}
    stream: dict[str, Any] = {}
    if getattr(args, "input", None):
        over["inputs"] = list(args.input)
    if getattr(args, "runner", None):
        over["runner"] = {"name": args.runner}
    if args.output:
        over["output"] = {"path": args.output}
    if args.window:
        stream["window"] = args.window
    if getattr(args, "duration", None):
        stream["duration"] = args.duration
    if getattr(args, "speed", None) is not None:
        stream["speed"] = args.speed
    if stream:
        over["stream"] = stream
    return over


def _print_summary(body: dict[str, Any]) -> None:
    lines = manifest.summary_lines(body)
    lines[0] = lines[0].replace("news-ingest run", f"news-ingest {body['mode']}", 1)
    info = body["stream"]
    lines.insert(
        1,
        f"  {body['mode']}: {info['rounds']} rounds, {info['items']} new items, "
        f"{len(info['windows'])} windows, {info['late_files']} late files, "
        f"stopped by {body['stopped_by']}",
    )
    print("\n".join(lines))


def _cmd_stream(args: Any, beam_args: list[str]) -> int:
    from pipeline import config

    cfg = config.load(args.config, _overrides(args))
    duration = stream_seconds(cfg, "duration") or None
    if cfg.runner.name != "direct":
        return _submit_unbounded(cfg, args.run_id, beam_args)
    body = run_stream(
        cfg,
        stream_source(cfg),
        mode="stream",
        duration_s=duration,
        run_id=args.run_id,
        beam_args=beam_args,
    )
    _print_summary(body)
    return 0


def _submit_unbounded(cfg: Config, run_id: str | None, beam_args: list[str]) -> int:
    """Submit the unbounded graph to Dataflow or Flink (state, timers and SDFs run there)."""
    from pipeline import runners

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
    settings = StreamSettings.of(cfg)
    build_unbounded(
        p, cfg, settings, ctx, cfg.output.path, load_index(cfg.output.path), source.feeds
    )
    result = p.run()
    print(f"news-ingest stream {ctx.run_id}: submitted to {cfg.runner.name} ({result.state})")
    return 0


def _cmd_replay(args: Any, beam_args: list[str]) -> int:
    from pipeline import config

    cfg = config.load(args.config, _overrides(args))
    source = replay_source(cfg, args.paths, cfg.stream.speed)
    body = run_stream(
        cfg, source, mode="replay", duration_s=None, run_id=args.run_id, beam_args=beam_args
    )
    _print_summary(body)
    return 0
