"""Batch runs, streams and the unbounded graph poll feeds through one poller on one feed state:
the same failing feed and the same failing entry give the same dead-letter rows in batch and
stream, and a feed polled by one driver is not due for another that shares the store
(in-process, on the DirectRunner, against a feed server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from news_ingest.pipeline import batch, config
from news_ingest.pipeline.stream import launcher

from tests.conftest import read_table
from tests.localhttp import LocalServer, Reply, html_reply, serving

STORY = "The harbour reopened on Monday after the storm had closed it for a week. " * 8


def _rss(base: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Gazette</title>'
        f"<item><title>Harbour reopens</title><link>{base}/news/harbour.html</link>"
        "<guid>h-1</guid></item>"
        "<item><title>A teaser without a link</title><guid isPermaLink='false'>no-link-1</guid></item>"
        "</channel></rss>"
    ).encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        local.routes["/robots.txt"] = Reply(status=404)
        local.routes["/feed.xml"] = Reply(
            body=_rss(local.base),
            headers={"Content-Type": "application/rss+xml", "ETag": '"rev1"'},
        )
        local.routes["/broken.xml"] = Reply(status=500)
        local.routes["/news/harbour.html"] = html_reply(
            f"<html><head><title>Harbour reopens</title></head><body><article>"
            f"<h1>Harbour reopens</h1><p>{STORY}</p></article></body></html>"
        )
        yield local


def _cfg(server: LocalServer, out, state_dir) -> config.Config:
    return config.load(
        overrides={
            "inputs": [],
            "output": {"path": str(out)},
            "fetch": {"allow_networks": ["127.0.0.1/32"], "min_delay_s": 0.0, "retries": 0},
            "feeds": {
                "sources": [
                    {"url": server.url("/feed.xml"), "poll_interval": "1h"},
                    {"url": server.url("/broken.xml"), "poll_interval": "1h"},
                ],
                "state_dir": str(state_dir),
            },
        }
    )


def _stream(cfg, run_id):
    source = launcher.stream_source(cfg)
    return launcher.run_stream(cfg, source, mode="stream", duration_s=1.0, run_id=run_id)


def _dead_rows(out):
    rows = read_table(out, "dead_letters").drop(["run_id", "ingested_at"]).to_pylist()
    return sorted(rows, key=lambda r: r["dead_letter_id"])


def test_batch_and_stream_give_the_same_dead_letters_and_one_feed_state(server, tmp_path):
    batch_cfg = _cfg(server, tmp_path / "batch", tmp_path / "batch-state")
    stream_cfg = _cfg(server, tmp_path / "stream", tmp_path / "stream-state")
    batch.run(batch_cfg, "b-1")
    body = _stream(stream_cfg, "s-1")

    batch_dead, stream_dead = _dead_rows(tmp_path / "batch"), _dead_rows(tmp_path / "stream")
    assert sorted((d["stage"], d["reason"]) for d in batch_dead) == [
        ("feeds", "http_500"),
        ("feeds", "no_link"),
    ]
    assert stream_dead == batch_dead  # the same rows, field by field
    assert read_table(tmp_path / "batch", "articles").num_rows == 1
    assert read_table(tmp_path / "stream", "articles").num_rows == 1
    assert body["stream"]["polls"] == {"failed": 1, "parsed": 1}

    # One stored form of a feed's state in both drivers.
    def stored(folder):
        found = {}
        for path in sorted(folder.glob("feed-*.json")):
            data = json.loads(path.read_text())
            found[path.name] = {k: v for k, v in data.items() if k != "polled_at"}
            assert data["polled_at"]
        return found

    assert stored(tmp_path / "batch-state") == stored(tmp_path / "stream-state")
    assert len(stored(tmp_path / "batch-state")) == 2

    # A stream sharing the batch run's store finds both feeds polled within their interval.
    hits = server.hits["/feed.xml"]
    shared = _cfg(server, tmp_path / "stream-2", tmp_path / "batch-state")
    body = _stream(shared, "s-2")
    assert body["stream"]["polls"] == {"not_due": 2}
    assert server.hits["/feed.xml"] == hits
