"""Feeds lists and dead-letter replays on a bucket of a real S3-compatible server on 127.0.0.1
(moto in server mode): both read through ``transforms/files.py`` (Beam's file systems)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from news_ingest.pipeline import batch, config, graph, manifest, replay_dead_letters
from news_ingest.pipeline.stream import sources
from news_ingest.transforms import feeds, files, sinks
from news_ingest.transforms.schema import TABLES, to_table
from news_ingest.transforms.stage import StageError, dead_letter

from tests.fixtures.bad_inputs import FRENCH
from tests.objectstore import S3Server, s3_server

BUCKET = "inputs-in"
RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>On a bucket</title>'
    "<item><title>One</title><link>https://example.org/one</link><guid>one</guid></item>"
    "</channel></rss>"
)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(
            Bucket=BUCKET,
            Key="lists/feeds.yaml",
            Body=b"- {url: 'https://example.org/feed.xml', publisher: Example}\n- local.rss\n",
        )
        client.put_object(Bucket=BUCKET, Key="lists/local.rss", Body=RSS.encode())
        files.set_options(server.beam_args)
        yield server


def test_a_feeds_list_on_a_bucket_is_read_with_its_relative_entries_on_the_bucket(s3):
    listed = f"s3://{BUCKET}/lists/feeds.yaml"
    found = feeds.load_feed_list(listed)
    assert [(f.url, f.publisher) for f in found] == [
        ("https://example.org/feed.xml", "Example"),
        (f"s3://{BUCKET}/lists/local.rss", None),
    ]
    # The relative entry is a feed file on the bucket, polled (read) as a local one is.
    polled = feeds.poll_feed(None, found[1], feeds.FeedState(), 0.0, 1 << 20)
    assert polled.status == feeds.PARSED
    assert [e.link for e in polled.entries] == ["https://example.org/one"]
    # A batch run and a stream take the list as --input.
    cfg = config.load(overrides={"inputs": [listed]})
    assert graph.feed_inputs(cfg, [listed]) == sorted(found, key=lambda f: (f.url, repr(f)))
    with pytest.raises(batch.UsageError, match="stream polls http"):
        sources.stream_source(cfg)  # found, and its bucket feed file is no http(s) feed
    with pytest.raises(ValueError, match=r"feeds list s3://inputs-in/lists/none\.yaml"):
        feeds.load_feed_list(f"s3://{BUCKET}/lists/none.yaml")
    with pytest.raises(ValueError, match="only http"):
        feeds.feed_source("ftp://example.org/feed.xml")


def test_the_plan_of_a_dead_letter_replay_reads_the_run_and_its_inputs_on_a_bucket(s3):
    """The replay's own steps on a bucket (a run committed there by hand, no pipeline): its
    manifest, its dead letters, which of their inputs are still objects; the replay run is a
    batch run from and into a bucket, tested in test_output_on_object_storage."""
    client = s3.client()
    client.put_object(Bucket=BUCKET, Key="in/empty.txt", Body=FRENCH.encode())  # repaired
    out = f"s3://{BUCKET}/out"
    day = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    run = graph.RunContext(run_id="orig", started_at=day, pipeline_version="test")
    refs = [f"s3://{BUCKET}/in/empty.txt", f"s3://{BUCKET}/in/gone.txt", "https://example.org/a"]
    rows = [
        run.dead_letter_row(dead_letter(StageError("clean", "empty_text", None), ref))
        for ref in refs
    ]
    path = f"{out}/dead_letters/ingest_date=2026-12-01/part-orig-00000.parquet"
    sinks.write_parquet(to_table(rows, TABLES["dead_letters"]), "dead_letters", path)
    manifest.write_manifest(out, {"run_id": "orig", "config": {}, "files": {}})

    assert len(replay_dead_letters.dead_letter_rows(out, "orig", frozenset({"empty_text"}))) == 3
    todo = replay_dead_letters.plan(out, "orig")
    assert todo.inputs == (refs[0],)
    assert todo.missing == (refs[2], refs[1])
    assert replay_dead_letters.ingested_ids(out, ["orig"]) == frozenset()
    with pytest.raises(batch.UsageError, match="no manifest of run none in s3://"):
        replay_dead_letters.replay(out, "none")
