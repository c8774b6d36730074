"""What a stream reads (stream-only): feeds, watched folders and replays, as the launcher lists
them, and the identity of each work item.

Feeds are polled through the one poller of both drivers (``news_ingest.transforms.feeds``); here
are the stream's own sources: the complete files in watched folders (the landing rule), the
schedule of a replay, and ``work_key``, the key the streaming graph's ``SeenFilter`` and the
launcher's seen store remember an item by (a feed entry's work by ``feeds.work_item_key``, the
same identity the unbounded graph's poller uses).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from news_ingest.pipeline.batch import UsageError
from news_ingest.pipeline.config import Config, ConfigError, feed_sources, resolve
from news_ingest.transforms import files
from news_ingest.transforms.feeds import FeedSource, feed_source, load_feed_list, work_item_key
from news_ingest.transforms.fetch import PageRequest
from news_ingest.transforms.landing import LandingRule, is_ready, is_temp_name
from news_ingest.transforms.schema import UTC, DeadLetter, RawDocument
from news_ingest.transforms.sources import FEED_LIST, kind_of, read_capped


def work_key(item: Any) -> str:
    """The seen-key of any work item of the stream: a watched file by path and signature, a
    feed entry's work by ``feeds.work_item_key``."""
    if isinstance(item, WatchedFile):
        return f"file:{item.path}|{item.signature}"
    if isinstance(item, PageRequest | RawDocument | DeadLetter):
        return work_item_key(item)
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


@dataclasses.dataclass
class Source:
    """What a stream reads: feeds, watched paths, or a replay schedule."""

    feeds: list[FeedSource] = dataclasses.field(default_factory=list)
    watch: list[str] = dataclasses.field(default_factory=list)
    replay: list[Release] | None = None


def stream_source(cfg: Config) -> Source:
    """Feeds (feed URLs, feed files, feeds lists, ``feeds.sources``) and watched folders."""
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
        # a feeds list may be on an object store (read through Beam); folders to watch are local
        if kind_of(path) == FEED_LIST and (os.path.isfile(path) or files.is_remote_file(path)):
            try:
                feeds.extend(load_feed_list(path))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        elif os.path.exists(path):
            watch.append(path)
        else:
            raise UsageError(f"input not found: {spec}")
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
