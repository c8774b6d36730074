"""Batch runs and streams into one output share one cross-run dedup index: whichever comes
second keeps none of the articles the first kept (in-process, on the DirectRunner)."""

from __future__ import annotations

import pytest
from news_ingest.pipeline import batch, config
from news_ingest.pipeline.stream import launcher

from tests.conftest import ROOT, read_table

SEEDS = str(ROOT / "seeds")


def _cfg(out):
    return config.load(overrides={"inputs": [SEEDS], "output": {"path": str(out)}})


def _batch(cfg, run_id):
    return batch.run(cfg, run_id).manifest


def _replay(cfg, run_id):
    source = launcher.replay_source(cfg, [SEEDS], speed=1e9)
    return launcher.run_stream(cfg, source, mode="replay", duration_s=None, run_id=run_id)


def _by_run(out, table):
    rows = read_table(out, table).to_pylist()
    runs: dict[str, list[dict]] = {}
    for row in rows:
        runs.setdefault(row["run_id"], []).append(row)
    return runs


@pytest.mark.parametrize("first, second", [("batch", "stream"), ("stream", "batch")])
def test_the_second_driver_keeps_no_second_copy(tmp_path, first, second):
    out = tmp_path / "out"
    cfg = _cfg(out)
    drivers = {"batch": _batch, "stream": _replay}
    drivers[first](cfg, "first")
    body = drivers[second](cfg, "second")

    articles = _by_run(out, "articles")
    kept_first = {row["article_id"] for row in articles["first"]}
    assert len(kept_first) == 5
    assert "second" not in articles  # nothing kept again
    hashes = [row["content_hash"] for rows in articles.values() for row in rows]
    assert len(hashes) == len(set(hashes))
    duplicates = _by_run(out, "duplicates")["second"]
    assert sorted(d["duplicate_of"] for d in duplicates) == sorted(kept_first)
    assert body["counts"]["articles"] == 0
    # ingested_at means the same in both drivers: when the row was ingested (UTC), never the
    # event time; the partition is its date.
    for rows in (*articles.values(), duplicates):
        for row in rows:
            assert row["ingested_at"].tzinfo is not None
            assert row["ingested_at"].year >= 2025
