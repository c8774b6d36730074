"""Polling for the streaming graph: feeds on their own intervals, watched folders, replays.

Everything the streaming sources need as plain functions on plain values, shared by the two
ways a stream is fed:

* on the DirectRunner, the launcher (``pipeline/stream/launcher.py``) polls between rounds and hands
  each round's new work to the graph (Beam 2.77's Python DirectRunner cannot run a splittable
  source in streaming mode, see the README);
* on Dataflow and Flink, ``PollFeedsForever`` polls inside the pipeline: a ``PeriodicImpulse``
  ticks, and a stateful DoFn keyed by feed keeps each feed's validators in state.

A feed is fetched only when its own ``poll_interval`` has passed, conditionally
(``If-None-Match``/``If-Modified-Since``, through the one ``Fetcher`` of ``news_ingest.transforms.web.http``);
its entries become page requests keyed by ``entry_key`` (the entry guid, else its canonical
link), and ``SeenStore`` remembers the keys already emitted so that only new entries go on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms import userstate
from news_ingest.transforms import atomic
from news_ingest.transforms.feeds import (
    FEED_ACCEPT,
    FeedEntry,
    FeedSource,
    feed_dead_letter,
    parse_feed,
)
from news_ingest.transforms.fetch import FetcherDoFn, PageRequest
from news_ingest.transforms.landing import LandingRule, is_ready, is_temp_name
from news_ingest.transforms.schema import SOURCE_FEED, UTC, DeadLetter
from news_ingest.transforms.sources import kind_of, read_capped
from news_ingest.transforms.stage import StageError
from news_ingest.transforms.web.http import Fetcher, FetchError, FetchPolicy
from news_ingest.transforms.web.urls import canonicalize_url

STAGE = "poll"

# What became of a poll.
PARSED = "parsed"
NOT_MODIFIED = "not_modified"
NOT_DUE = "not_due"
FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class FeedState:
    """What is remembered of a feed between polls: its validators and last poll time."""

    etag: str | None = None
    last_modified: str | None = None
    polled_at: float | None = None  # epoch seconds

    def due(self, interval_s: float, now: float) -> bool:
        return self.polled_at is None or now - self.polled_at >= interval_s


@dataclasses.dataclass(frozen=True)
class PollResult:
    """One poll of one feed: what happened, the new state, the new entries or the failure."""

    status: str
    state: FeedState
    entries: tuple[FeedEntry, ...] = ()
    dead: DeadLetter | None = None


def poll_once(
    fetcher: Fetcher, source: FeedSource, state: FeedState, now: float, max_entries: int
) -> PollResult:
    """Poll ``source`` if its interval has passed since ``state.polled_at``, conditionally.

    A failure is returned as a dead letter (the feed is tried again after its interval), never
    raised: one bad feed must not stop a stream; an unexpected error is one too (reason
    ``exception``).
    """
    if not state.due(source.poll_interval_s, now):
        return PollResult(NOT_DUE, state)
    try:
        result = fetcher.fetch(
            source.url, etag=state.etag, last_modified=state.last_modified, accept=FEED_ACCEPT
        )
        if result.not_modified:
            kept = FeedState(
                result.etag or state.etag, result.last_modified or state.last_modified, now
            )
            return PollResult(NOT_MODIFIED, kept)
        parsed = parse_feed(result.content, result.final_url, result.content_type, source)
    except (FetchError, StageError) as exc:
        dead = feed_dead_letter(source, STAGE, exc.reason, exc.message, type(exc).__name__)
        return PollResult(FAILED, dataclasses.replace(state, polled_at=now), dead=dead)
    except Exception as exc:  # noqa: BLE001 - a bug on one feed's bytes must not stop a stream
        dead = feed_dead_letter(source, STAGE, "exception", repr(exc), type(exc).__name__)
        return PollResult(FAILED, dataclasses.replace(state, polled_at=now), dead=dead)
    fresh = FeedState(result.etag, result.last_modified, now)
    return PollResult(PARSED, fresh, parsed.entries[:max_entries])


def entry_key(entry: FeedEntry) -> str:
    """The identity of a feed entry: its guid, else its canonical link."""
    guid = entry.hint("guid")
    if guid:
        return f"guid:{entry.feed_ref}#{guid}"
    return f"link:{canonicalize_url(entry.link) or entry.link}"


def entry_work(entry: FeedEntry) -> PageRequest | DeadLetter:
    """The page fetch of an entry, or a dead letter when it has no link."""
    if not entry.link:
        return DeadLetter(
            source_ref=f"{entry.feed_ref}#{entry.hint('guid') or ''}",
            stage=STAGE,
            reason="no_link",
            error_message="feed entry without a link",
            excerpt=entry.hint("title"),
            source_kind=SOURCE_FEED,
        )
    return PageRequest(
        url=entry.link, source_ref=entry.link, source_kind=SOURCE_FEED, hints=entry.hints
    )


def work_key(item: Any) -> str:
    """The seen-key of any work item of the stream: a page request, a watched file, a dead
    letter (keyed by what failed, so one failure is written once)."""
    if isinstance(item, PageRequest):
        hint = dict(item.hints)
        if hint.get("guid"):
            return f"guid:{hint['guid']}|{canonicalize_url(item.url) or item.url}"
        return f"link:{canonicalize_url(item.url) or item.url}"
    if isinstance(item, WatchedFile):
        return f"file:{item.path}|{item.signature}"
    if isinstance(item, DeadLetter):
        return f"dead:{item.dead_letter_id}"
    return f"other:{item!r}"


# --- Watched folders and replays ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WatchedFile:
    """A file found in a watched folder: its path and a signature of its size and mtime."""

    path: str
    signature: str


def scan_files(
    specs: Sequence[str], rule: LandingRule | None = None, now: float | None = None
) -> list[WatchedFile]:
    """The input files under folders (recursively) and files, with their signatures.

    A file is an input when its extension is known (``sources.kind_of``). Under a folder, only
    files that ``rule`` says are complete at ``now`` are listed (``news_ingest.transforms.landing``: temporary
    names skipped, settled for ``settle_s``, marker present); the others are listed by a later
    scan, so a file written in parts is read once, whole.
    """
    rule = rule or LandingRule(settle_s=0.0, marker=None)
    now = time.time() if now is None else now
    found: dict[str, WatchedFile] = {}
    for spec in specs:
        paths: Iterable[str]
        landing = os.path.isdir(spec)
        if landing:
            paths = (
                os.path.join(root, name)
                for root, _dirs, names in os.walk(spec)
                for name in names
                if not is_temp_name(name)
            )
        elif os.path.isfile(spec):
            paths = [spec]
        else:
            continue
        for path in paths:
            if not kind_of(path):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed between listing and stat
            if landing and not is_ready(path, st, now, rule):
                continue
            norm = os.path.normpath(path)
            found[norm] = WatchedFile(norm, f"{st.st_size}:{st.st_mtime_ns}")
    return [found[p] for p in sorted(found)]


# The seed header's date. Only the replay's schedule reads it; the article's published_at (and
# so its event time) comes from the cleaning rule pack, as in batch.
_SEED_DATE = re.compile(r"^\ufeff?\s*date\s+(\d{4}-\d{2}-\d{2})\b")


def document_time(path: str, max_bytes: int) -> dt.datetime | None:
    """The date of a seed-style file from its `` date YYYY-MM-DD`` header; None without one."""
    try:
        head = read_capped(path, max_bytes)[:4096].decode("utf-8", "replace")
    except (OSError, ValueError, EOFError):
        return None  # the read stage turns an unreadable file into a dead letter
    match = _SEED_DATE.match(head)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Release:
    """A replayed file: when (seconds after the replay starts) and with which event time
    (None: the file has no date, and its event time is when it is released)."""

    after_s: float
    event_time: dt.datetime | None
    file: WatchedFile


def replay_schedule(
    files: Sequence[WatchedFile], times: Mapping[str, dt.datetime | None], speed: float
) -> list[Release]:
    """Dated files in date order, released ``speed`` times faster than their dates are apart;
    undated files at the start, like documents fetched when the replay begins.

    Raises:
        ValueError: ``speed`` is not positive.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    undated = [Release(0.0, None, f) for f in files if times.get(f.path) is None]
    dated = sorted(
        ((t, f) for f in files if (t := times.get(f.path)) is not None),
        key=lambda tf: (tf[0], tf[1].path),
    )
    if not dated:
        return undated
    first = dated[0][0]
    return undated + [Release((t - first).total_seconds() / speed, t, f) for t, f in dated]


# --- What was seen ------------------------------------------------------------------------


class SeenStore:
    """Keys already emitted, with the time first seen, persisted as one JSON file.

    Entries older than ``ttl_s`` are forgotten on ``prune``: a feed that still lists an entry
    after that long would emit it again, so ``ttl_s`` should exceed how long feeds keep
    entries (days, not minutes).
    """

    def __init__(self, path: str | None, ttl_s: float):
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.path = path
        self.ttl_s = ttl_s
        self.seen: dict[str, float] = {}
        self.feeds: dict[str, FeedState] = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            self.seen = {str(k): float(v) for k, v in data.get("seen", {}).items()}
            self.feeds = {url: FeedState(**state) for url, state in data.get("feeds", {}).items()}

    def __contains__(self, key: str) -> bool:
        return key in self.seen

    def add(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            self.seen.setdefault(key, now)

    def prune(self, now: float) -> int:
        old = [k for k, t in self.seen.items() if now - t > self.ttl_s]
        for key in old:
            del self.seen[key]
        return len(old)

    def save(self) -> None:
        """Write the store whole under a temporary name, then rename it."""
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        body = {
            "seen": self.seen,
            "feeds": {url: dataclasses.asdict(s) for url, s in sorted(self.feeds.items())},
        }
        atomic.write_json(self.path, body, sort_keys=True)


# --- The in-pipeline source for runners with unbounded sources ----------------------------

_FEED_STATE = userstate.ReadModifyWriteStateSpec("feed_state", PickleCoder())
_SEEN_KEYS = userstate.ReadModifyWriteStateSpec("seen_keys", PickleCoder())
_FEED_STATE_PARAM = beam.DoFn.StateParam(_FEED_STATE)
_SEEN_KEYS_PARAM = beam.DoFn.StateParam(_SEEN_KEYS)


class _PollFeed(FetcherDoFn):
    """Keyed by feed URL: on each tick, poll the feed if due; emit page requests of entries
    not seen before. The feed's validators and seen keys live in state."""

    def __init__(self, policy: FetchPolicy, max_entries: int, seen_ttl_s: float):
        super().__init__(policy)
        self.max_entries = max_entries
        self.seen_ttl_s = seen_ttl_s
        self.new = Metrics.counter(STAGE, "entries_new")
        self.repeated = Metrics.counter(STAGE, "entries_seen")

    def process(
        self,
        keyed: tuple[str, FeedSource],
        feed_state: Any = _FEED_STATE_PARAM,
        seen_keys: Any = _SEEN_KEYS_PARAM,
    ) -> Iterator[Any]:
        assert self.fetcher is not None
        _url, source = keyed
        now = time.time()
        result = poll_once(
            self.fetcher, source, feed_state.read() or FeedState(), now, self.max_entries
        )
        feed_state.write(result.state)
        Metrics.counter(STAGE, result.status).inc()
        if result.dead is not None:
            yield result.dead
        seen: dict[str, float] = {
            k: t for k, t in (seen_keys.read() or {}).items() if now - t <= self.seen_ttl_s
        }
        for entry in result.entries:
            key = entry_key(entry)
            if key in seen:
                self.repeated.inc()
                continue
            seen[key] = now
            self.new.inc()
            yield entry_work(entry)
        seen_keys.write(seen)


class PollFeedsForever(beam.PTransform):
    """An unbounded source of page requests (and dead letters) for runners that run
    splittable DoFns in streaming mode (Dataflow, Flink): every ``tick_s`` seconds each feed
    is polled if its own interval has passed, and only entries not seen before are emitted,
    timestamped with the poll time."""

    def __init__(
        self,
        feeds: Sequence[FeedSource],
        policy: FetchPolicy,
        tick_s: float,
        max_entries: int,
        seen_ttl_s: float,
        stop_after_s: float | None = None,
    ):
        super().__init__()
        if not feeds:
            raise ValueError("PollFeedsForever needs at least one feed")
        if tick_s <= 0 or max_entries <= 0 or seen_ttl_s <= 0:
            raise ValueError("tick_s, max_entries and seen_ttl_s must be positive")
        self.feeds = list(feeds)
        self.policy = policy
        self.tick_s = tick_s
        self.max_entries = max_entries
        self.seen_ttl_s = seen_ttl_s
        self.stop_after_s = stop_after_s

    def expand(self, pbegin):  # type: ignore[no-untyped-def]
        from apache_beam.transforms.periodicsequence import PeriodicImpulse

        start = time.time()
        bounds: dict[str, Any] = {"start_timestamp": start, "fire_interval": self.tick_s}
        if self.stop_after_s is not None:
            bounds["stop_timestamp"] = start + self.stop_after_s
        feeds = self.feeds
        ticks = pbegin | "Tick" >> PeriodicImpulse(**bounds)
        return (
            ticks
            | "EveryFeed" >> beam.FlatMap(lambda _tick: [(f.url, f) for f in feeds])
            | "PollIfDue" >> beam.ParDo(_PollFeed(self.policy, self.max_entries, self.seen_ttl_s))
        )
