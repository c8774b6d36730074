"""What a stream keeps between rounds (stream-only): under ``OUT/_stream/`` the seen work keys
(``state.json``, ``SeenStore``) and the watermark (``meta.json``); each feed's validators and
poll time in the one feed-state store of every driver (``feeds.state_dir``, else
``OUT/_stream/feeds/``; ``news_ingest.transforms.feeds.FeedStateStore``). Its kept articles go,
with their MinHash signatures, to the one cross-run dedup index that batch runs read and write
too (``transforms/sinks.py``; the streaming graph's pane writer adds them), so neither driver
keeps again what the other kept, near duplicates included."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pyarrow.parquet as pq
from news_ingest.pipeline.config import Config
from news_ingest.transforms import atomic, sinks
from news_ingest.transforms.feeds import FeedStateStore
from news_ingest.transforms.schema import TABLES
from news_ingest.transforms.stream.dedup import KnownIndex, signed_entries

STATE_DIR = "_stream"
STATE_FILE = "state.json"
META_FILE = "meta.json"
FEEDS_DIR = "feeds"


def state_dir(output: str) -> str:
    return os.path.join(output, STATE_DIR)


def feed_state_dir(cfg: Config) -> str:
    """The feed-state store of a stream: ``feeds.state_dir`` (shared with batch runs and the
    unbounded graph), else ``OUT/_stream/feeds/``."""
    return cfg.feeds.state_dir or os.path.join(state_dir(cfg.output.path), FEEDS_DIR)


def feed_store(cfg: Config) -> FeedStateStore:
    return FeedStateStore(feed_state_dir(cfg))


class SeenStore:
    """Work keys already emitted (``sources.work_key``), with the time first seen, persisted as
    one JSON file.

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
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            self.seen = {str(k): float(v) for k, v in data.get("seen", {}).items()}

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
        atomic.write_json(self.path, {"seen": self.seen}, sort_keys=True)


def index_folder(cfg: Config) -> str | None:
    """The cross-run index a stream into ``cfg.output.path`` shares with batch runs (None when
    ``dedup.index`` is off)."""
    return sinks.index_dir(cfg.output.path, cfg.dedup.index_path) if cfg.dedup.index else None


def known_index(index: str | None, cfg: Config, now: dt.datetime) -> KnownIndex:
    """The live entries of the index as the stream's dedup looks them up: keys and signatures
    (read again each round: a batch run may have added to it meanwhile, and entries past the
    TTL drop out)."""
    if index is None:
        return KnownIndex()
    not_before = now - dt.timedelta(seconds=cfg.dedup.ttl)
    return KnownIndex.of(sinks.read_index(sinks.index_files(index)), not_before, cfg.dedup)


def index_kept(
    index: str | None, cfg: Config, run_id: str, rows: Sequence[dict[str, Any]], label: str
) -> str | None:
    """Add kept article rows to the index (one file), signed as the graph's pane writer signs
    them; returns the file. The launcher uses it for rows a crashed round wrote."""
    if index is None or not rows:
        return None
    entries = signed_entries(rows, cfg.dedup, run_id)
    return sinks.write_index_file(entries, sinks.stream_index_path(index, run_id, label))


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
    store: SeenStore, rows: Iterator[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    """Mark the inputs of written rows as seen; returns the kept articles' rows among them."""
    kept = []
    for row in rows:
        store.add([f"ref:{row['source_ref']}"], now)
        if "content_hash" in row and "duplicate_of" not in row:
            kept.append(row)
    return kept


def load_meta(output: str) -> dict[str, Any]:
    path = os.path.join(state_dir(output), META_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def save_meta(output: str, meta: dict[str, Any]) -> None:
    atomic.write_json(os.path.join(state_dir(output), META_FILE), meta)
