"""What a stream keeps between rounds, under ``OUT/_stream/``: the seen work keys and each
feed's validators (``state.json``, see ``transforms.poll.SeenStore``), the dedup index of kept
articles and the watermark (``meta.json``)."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq

from transforms import atomic
from transforms.poll import SeenStore
from transforms.schema import TABLES
from transforms.stream_dedup import index_keys

STATE_DIR = "_stream"
STATE_FILE = "state.json"
INDEX_FILE = "dedup_index.json"
META_FILE = "meta.json"


def state_dir(output: str) -> str:
    return os.path.join(output, STATE_DIR)


def load_index(output: str) -> dict[str, str]:
    path = os.path.join(state_dir(output), INDEX_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return {str(k): str(v) for k, v in data.get("kept", {}).items()}


def save_index(output: str, kept: dict[str, str]) -> None:
    atomic.write_json(os.path.join(state_dir(output), INDEX_FILE), {"kept": kept}, sort_keys=True)


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


def load_meta(output: str) -> dict[str, Any]:
    path = os.path.join(state_dir(output), META_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def save_meta(output: str, meta: dict[str, Any]) -> None:
    atomic.write_json(os.path.join(state_dir(output), META_FILE), meta)
