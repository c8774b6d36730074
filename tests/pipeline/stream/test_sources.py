"""What a stream reads: work keys, watched folders, replay schedules and the persisted seen
store."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from news_ingest.pipeline.stream.sources import (
    WatchedFile,
    document_time,
    replay_schedule,
    scan_files,
    work_key,
)
from news_ingest.pipeline.stream.state import SeenStore
from news_ingest.transforms.feeds import FeedEntry, entry_work
from news_ingest.transforms.schema import UTC, DeadLetter


def test_work_keys_are_the_feed_page_keys():
    with_guid = FeedEntry("f", "http://example.org/a/1?utm_source=x", (("guid", "g-1"),))
    no_guid = FeedEntry("f", "http://example.org/a/2#top", ())
    assert work_key(entry_work(with_guid)) == "guid:g-1|http://example.org/a/1"
    assert work_key(entry_work(no_guid)) == "link:http://example.org/a/2"
    dead = entry_work(FeedEntry("f", None, (("guid", "x"),)))
    assert isinstance(dead, DeadLetter) and work_key(dead).startswith("dead:")
    own = entry_work(FeedEntry("f", "http://example.org/a/3", (), "<p>Body</p>"), False)
    assert work_key(own) == "doc:http://example.org/a/3"


def test_scan_files_signs_inputs_and_skips_the_rest(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text("<p>two</p>")
    (tmp_path / ".hidden.txt").write_text("no")
    (tmp_path / "notes.csv").write_text("no")
    found = scan_files([str(tmp_path), str(tmp_path / "missing")])
    assert [os.path.basename(f.path) for f in found] == ["a.txt", "b.html"]
    before = found[0].signature
    (tmp_path / "a.txt").write_text("one, changed")
    assert scan_files([str(tmp_path)])[0].signature != before


def test_replay_schedule_orders_by_date_and_compresses_time(tmp_path):
    day = dt.datetime(2024, 10, 28, tzinfo=UTC)
    files = [WatchedFile(p, "s") for p in ("c", "a", "b", "u")]
    times = {"a": day, "b": day + dt.timedelta(hours=1), "c": day, "u": None}
    plan = replay_schedule(files, times, speed=3600)
    assert [(r.file.path, r.after_s) for r in plan] == [
        ("u", 0.0),
        ("a", 0.0),
        ("c", 0.0),
        ("b", 1.0),
    ]
    assert plan[0].event_time is None and plan[3].event_time == times["b"]
    with pytest.raises(ValueError):
        replay_schedule(files, times, speed=0)


def test_document_time_reads_the_seed_header(tmp_path):
    dated = tmp_path / "d.txt"
    dated.write_text(" date 2024-10-28 (MENAFN- X) Body text.")
    undated = tmp_path / "u.txt"
    undated.write_text("Body text only.")
    assert document_time(str(dated), 10_000) == dt.datetime(2024, 10, 28, tzinfo=UTC)
    assert document_time(str(undated), 10_000) is None
    assert document_time(str(tmp_path / "gone.txt"), 10_000) is None


def test_seen_store_persists_and_prunes(tmp_path):
    path = str(tmp_path / "state" / "state.json")
    store = SeenStore(path, ttl_s=100)
    store.add(["a", "b"], now=10)
    store.add(["a"], now=50)  # first sighting wins
    store.save()
    again = SeenStore(path, ttl_s=100)
    assert "a" in again and "b" in again and "c" not in again
    assert again.seen["a"] == 10
    again.add(["c"], now=105)
    assert again.prune(now=115) == 2
    assert sorted(again.seen) == ["c"]
    with pytest.raises(ValueError):
        SeenStore(None, ttl_s=0)
