"""What a stream keeps between rounds: under ``OUT/_stream/`` the seen work keys and each
feed's validators (``state.json``, see ``news_ingest.transforms.poll.SeenStore``) and the watermark
(``meta.json``); its kept articles go to the one cross-run dedup index that batch runs read and
write too (``transforms/sinks.py``), so neither driver keeps again what the other kept."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow.parquet as pq
from news_ingest.pipeline.config import Config
from news_ingest.transforms import atomic, dedup, sinks
from news_ingest.transforms.poll import SeenStore
from news_ingest.transforms.schema import TABLES

STATE_DIR = "_stream"
STATE_FILE = "state.json"
META_FILE = "meta.json"


def state_dir(output: str) -> str:
    return os.path.join(output, STATE_DIR)


def index_folder(cfg: Config) -> str | None:
    """The cross-run index a stream into ``cfg.output.path`` shares with batch runs (None when
    ``dedup.index`` is off)."""
    return sinks.index_dir(cfg.output.path, cfg.dedup.index_path) if cfg.dedup.index else None


def known_keys(index: str | None, now: dt.datetime, ttl_s: float) -> dict[str, str]:
    """Dedup key -> kept article id of every live entry of the index (read again each round: a
    batch run may have added to it meanwhile, and entries past the TTL drop out)."""
    if index is None:
        return {}
    not_before = now - dt.timedelta(seconds=ttl_s)
    return dedup.known_keys(sinks.read_index(sinks.index_files(index)), not_before)


def index_kept(
    index: str | None, cfg: Config, run_id: str, rows: Sequence[dict[str, Any]], label: str
) -> str | None:
    """Add the kept article rows of a round to the index (one file per round); returns it."""
    if index is None or not rows:
        return None
    entries = [dedup.entry_of_row(row, cfg.dedup, run_id) for row in rows]
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
