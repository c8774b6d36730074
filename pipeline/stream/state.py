"""What a stream keeps between rounds (stream-only): under ``OUT/_stream/`` the seen work keys
(``state.json``, ``SeenStore``) and the watermark (``meta.json``); each feed's validators and
poll time in the one feed-state store of every driver (``feeds.state_dir``, else
``OUT/_stream/feeds/``; ``news_ingest.transforms.feeds.FeedStateStore``). Its kept articles go,
with their MinHash signatures, to the one cross-run dedup index that batch runs read and write
too (``transforms/sinks.py``; the streaming graph's pane writer adds them), so neither driver
keeps again what the other kept, near duplicates included.

Every path goes through ``news_ingest.transforms.files``: the output (and so ``_stream/``), the
feed-state store and the index may be local folders or prefixes on an object store."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from news_ingest.pipeline.config import Config
from news_ingest.transforms import atomic, files, sinks
from news_ingest.transforms.feeds import FeedStateStore
from news_ingest.transforms.schema import TABLES
from news_ingest.transforms.stream.dedup import KnownIndex, signed_entries

STATE_DIR = "_stream"
STATE_FILE = "state.json"
META_FILE = "meta.json"
FEEDS_DIR = "feeds"


def state_dir(output: str) -> str:
    return files.join(output, STATE_DIR)


def feed_state_dir(cfg: Config) -> str:
    """The feed-state store of a stream: ``feeds.state_dir`` (shared with batch runs and the
    unbounded graph), else ``OUT/_stream/feeds/``."""
    return cfg.feeds.state_dir or files.join(state_dir(cfg.output.path), FEEDS_DIR)


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
        if path and files.exists(path):
            data = json.loads(files.read_text(path))
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


def _table_pattern(
    output: str, name: str, run_id: str | None, partition: str = "ingest_date=*"
) -> str:
    return files.join(
        output, name, partition, f"part-{run_id}-*.parquet" if run_id else "*.parquet"
    )


def table_files(
    output: str, name: str, run_id: str | None = None, partition: str = "ingest_date=*"
) -> list[str]:
    """The Parquet files of table ``name`` under ``output`` (of one run when given: its
    pane files and its empty file, never those of a run whose id merely starts with it), in
    the partitions that ``partition`` matches."""
    found = files.glob(_table_pattern(output, name, run_id, partition))
    if run_id is None:
        return found
    own = re.compile(
        rf"part-{re.escape(run_id)}-(w\d{{8}}T\d{{6}}Z(-late)?-[0-9a-f]+|empty)\.parquet"
    )
    return [path for path in found if own.fullmatch(files.basename(path))]


def round_files(output: str, run_id: str, day: dt.date) -> set[str]:
    """The Parquet files of the three tables that run ``run_id`` wrote in partition
    ``ingest_date=day``: where one round's files are (a round's rows are partitioned by its
    start date), listed without listing the rest of the output, so a round costs the same
    on the thousandth day of a stream as on the first."""
    partition = f"ingest_date={day.isoformat()}"
    return {path for name in TABLES for path in table_files(output, name, run_id, partition)}


def written_since(output: str, since: float) -> Iterator[dict[str, Any]]:
    """Rows (source_ref, canonical_url, content_hash, article_id) of the articles, duplicates
    and dead letters written at or after ``since``: a modification time read from the same
    file system as the tables (``saved_at``; on an object store its own clock, in whole
    seconds, so a file of the same second counts as written since)."""
    for name in TABLES:
        for path, modified in files.glob_modified(_table_pattern(output, name, None)):
            if modified < since:
                continue
            yield from sinks.read_parquet(path).to_pylist()


def saved_at(output: str) -> float:
    """When the seen store was last saved (``state.json``'s modification time, on the file
    system of the output), 0.0 when never."""
    return files.modified_time(files.join(state_dir(output), STATE_FILE)) or 0.0


def rows_of(paths: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The rows of the given table files (those a round wrote)."""
    for path in sorted(paths):
        yield from sinks.read_parquet(path).to_pylist()


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
    path = files.join(state_dir(output), META_FILE)
    if not files.exists(path):
        return {}
    data: dict[str, Any] = json.loads(files.read_text(path))
    return data


def save_meta(output: str, meta: dict[str, Any]) -> None:
    atomic.write_json(files.join(state_dir(output), META_FILE), meta)
