"""Polling for the stream: conditional GET against a real local server, entry keys, watched
folders, replay schedules and the persisted seen store."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import socket
import threading

import pytest
from news_ingest.transforms.feeds import FeedEntry, FeedSource
from news_ingest.transforms.fetch import PageRequest
from news_ingest.transforms.poll import (
    FAILED,
    NOT_DUE,
    NOT_MODIFIED,
    PARSED,
    FeedState,
    PollFeedsForever,
    SeenStore,
    WatchedFile,
    document_time,
    entry_key,
    entry_work,
    poll_once,
    replay_schedule,
    scan_files,
    work_key,
)
from news_ingest.transforms.schema import UTC, DeadLetter
from news_ingest.transforms.web.http import Fetcher, FetchPolicy

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>One</title><link>http://example.org/a/1?utm_source=x</link>"
    b"<guid>g-1</guid></item>"
    b"<item><title>Two</title><link>http://example.org/a/2</link></item>"
    b"</channel></rss>"
)


@pytest.fixture
def feed_server():
    hits: list[dict[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append({"path": self.path, "inm": self.headers.get("If-None-Match")})
            if self.path == "/broken.xml":
                self.send_response(500)
                self.end_headers()
                return
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _fetcher():
    policy = FetchPolicy(
        allow_networks=("127.0.0.1/32",), respect_robots=False, min_delay_s=0, retries=0
    )
    return Fetcher(policy)


def test_poll_once_is_conditional_and_respects_the_interval(feed_server):
    base, hits = feed_server
    source = FeedSource(url=f"{base}/feed.xml", poll_interval_s=60)
    fetcher = _fetcher()
    try:
        first = poll_once(fetcher, source, FeedState(), now=1000.0, max_entries=10)
        assert first.status == PARSED
        assert [e.link for e in first.entries] == [
            "http://example.org/a/1?utm_source=x",
            "http://example.org/a/2",
        ]
        assert first.state == FeedState('"v1"', None, 1000.0)
        early = poll_once(fetcher, source, first.state, now=1030.0, max_entries=10)
        assert early.status == NOT_DUE and early.state == first.state
        again = poll_once(fetcher, source, first.state, now=1061.0, max_entries=10)
        assert again.status == NOT_MODIFIED and again.entries == ()
        assert again.state.polled_at == 1061.0 and again.state.etag == '"v1"'
        capped = poll_once(fetcher, source, FeedState(), now=2000.0, max_entries=1)
        assert len(capped.entries) == 1
    finally:
        fetcher.close()
    assert [h["inm"] for h in hits] == [None, '"v1"', None]


def test_a_failing_feed_is_a_dead_letter_not_an_exception(feed_server):
    base, _ = feed_server
    source = FeedSource(url=f"{base}/broken.xml", poll_interval_s=60)
    fetcher = _fetcher()
    try:
        result = poll_once(fetcher, source, FeedState(), now=5.0, max_entries=10)
    finally:
        fetcher.close()
    assert result.status == FAILED
    assert isinstance(result.dead, DeadLetter)
    assert result.dead.stage == "poll" and result.dead.reason
    assert result.state.polled_at == 5.0  # tried again after the interval, not at once


def test_a_down_feed_server_is_a_dead_letter_named_after_what_happened():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = FeedSource(url=f"http://127.0.0.1:{port}/feed.xml", poll_interval_s=60)
    policy = FetchPolicy(allow_networks=("127.0.0.1/32",), min_delay_s=0, retries=0)
    fetcher = Fetcher(policy)  # robots.txt on: asking for it is what finds the host down
    try:
        result = poll_once(fetcher, source, FeedState(), now=5.0, max_entries=10)
    finally:
        fetcher.close()
    assert result.status == FAILED and result.dead is not None
    assert (result.dead.stage, result.dead.reason) == ("poll", "connection_refused")


def test_an_unexpected_error_on_one_feed_is_its_dead_letter_not_the_streams_end(
    feed_server, monkeypatch
):
    import news_ingest.transforms.poll as poll

    def parse_with_a_bug(*args, **kwargs):
        raise RuntimeError("a bug that only this feed's bytes reach")

    monkeypatch.setattr(poll, "parse_feed", parse_with_a_bug)
    base, _ = feed_server
    source = FeedSource(url=f"{base}/feed.xml", poll_interval_s=60)
    fetcher = _fetcher()
    try:
        result = poll_once(fetcher, source, FeedState(), now=5.0, max_entries=10)
    finally:
        fetcher.close()
    assert result.status == FAILED and result.dead is not None
    assert (result.dead.reason, result.dead.source_ref) == ("exception", source.url)
    assert result.dead.error_type == "RuntimeError"
    assert result.state.polled_at == 5.0


def test_entry_keys_and_work():
    with_guid = FeedEntry("f", "http://example.org/a/1?utm_source=x", (("guid", "g-1"),))
    no_guid = FeedEntry("f", "http://example.org/a/2#top", ())
    assert entry_key(with_guid) == "guid:f#g-1"
    assert entry_key(no_guid) == "link:http://example.org/a/2"
    work = entry_work(with_guid)
    assert isinstance(work, PageRequest) and work.source_kind == "feed"
    assert work_key(work) == work_key(entry_work(with_guid))
    assert work_key(entry_work(no_guid)) == "link:http://example.org/a/2"
    dead = entry_work(FeedEntry("f", None, (("guid", "x"),)))
    assert isinstance(dead, DeadLetter) and dead.reason == "no_link"
    assert work_key(dead).startswith("dead:")


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


def test_seen_store_persists_prunes_and_keeps_feed_state(tmp_path):
    path = str(tmp_path / "state" / "state.json")
    store = SeenStore(path, ttl_s=100)
    store.add(["a", "b"], now=10)
    store.add(["a"], now=50)  # first sighting wins
    store.feeds["http://x/feed"] = FeedState('"e"', "Mon", 10.0)
    store.save()
    again = SeenStore(path, ttl_s=100)
    assert "a" in again and "b" in again and "c" not in again
    assert again.seen["a"] == 10
    assert again.feeds == {"http://x/feed": FeedState('"e"', "Mon", 10.0)}
    again.add(["c"], now=105)
    assert again.prune(now=115) == 2
    assert sorted(again.seen) == ["c"]
    with pytest.raises(ValueError):
        SeenStore(None, ttl_s=0)


def test_poll_feeds_forever_checks_its_arguments():
    policy = FetchPolicy()
    with pytest.raises(ValueError):
        PollFeedsForever([], policy, tick_s=1, max_entries=10, seen_ttl_s=10)
    with pytest.raises(ValueError):
        PollFeedsForever([FeedSource("http://x/f")], policy, tick_s=0, max_entries=1, seen_ttl_s=1)
