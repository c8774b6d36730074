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


def _near_copy(folder, seed="003_cacfdc32ae52a058.txt"):
    """A copy of a seed with one word changed: another content hash, the same story."""
    words = (ROOT / "seeds" / seed).read_text(encoding="utf-8").split(" ")
    middle = len(words) // 2
    words[middle] = "altered"
    folder.mkdir()
    (folder / f"near_{seed}").write_text(" ".join(words), encoding="utf-8")
    return str(folder)


@pytest.mark.parametrize("first, second", [("batch", "stream"), ("stream", "batch")])
def test_a_near_copy_of_what_the_first_driver_kept_is_a_near_duplicate(tmp_path, first, second):
    out = tmp_path / "out"
    near = _near_copy(tmp_path / "near")
    cfg = _cfg(out)
    later = config.load(overrides={"inputs": [near], "output": {"path": str(out)}})

    def replay(c, run_id, paths):
        source = launcher.replay_source(c, paths, speed=1e9)
        return launcher.run_stream(c, source, mode="replay", duration_s=None, run_id=run_id)

    drivers = {
        "batch": lambda c, run_id, _paths: _batch(c, run_id),
        "stream": replay,
    }
    drivers[first](cfg, "first", [SEEDS])
    body = drivers[second](later, "second", [near])

    articles = _by_run(out, "articles")
    assert "second" not in articles
    (dup,) = _by_run(out, "duplicates")["second"]
    original = [
        r for r in articles["first"] if r["source_ref"].endswith("003_cacfdc32ae52a058.txt")
    ]
    assert dup["dedup_kind"] == "near"
    assert dup["duplicate_of"] == original[0]["article_id"]
    assert dup["content_hash"] != original[0]["content_hash"]
    assert 0.8 <= dup["similarity"] < 1.0
    assert body["counts"] == {"articles": 0, "duplicates": 1, "dead_letters": 0}


def test_stream_index_entries_carry_the_batch_signatures(tmp_path):
    """A stream signs what it keeps as the batch dedup does: same text, same signature."""
    from news_ingest.transforms import sinks

    batch_out, stream_out = tmp_path / "batch", tmp_path / "stream"
    _batch(_cfg(batch_out), "b")
    _replay(_cfg(stream_out), "s")

    def signatures(out):
        entries = sinks.read_index(sinks.index_files(str(out / "_index")))
        return {e.content_hash: (e.signature, e.shingle_count, e.fingerprint) for e in entries}

    batch_sigs, stream_sigs = signatures(batch_out), signatures(stream_out)
    assert len(stream_sigs) == 5
    assert all(sig for sig, _count, _fp in stream_sigs.values())
    assert stream_sigs == batch_sigs
