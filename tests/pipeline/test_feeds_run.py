"""End to end: `news-ingest run` on a feeds list served by a local HTTP server, and on a WARC."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from news_ingest.pipeline import config
from news_ingest.pipeline.graph import feed_inputs
from news_ingest.transforms.fetch import FetchPolicy
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.conftest import read_table, run_main
from tests.localhttp import LocalServer, Reply, html_reply, serving


def page(title: str, sentence: str) -> str:
    body = "".join(
        f"<p>{sentence} Paragraph {i} adds the detail that a reader of the story expects.</p>"
        for i in range(4)
    )
    return (
        f"<html lang='en'><head><title>{title}</title>"
        "<meta property='og:site_name' content='Harbour Gazette'>"
        f"</head><body><article><h1>{title}</h1>{body}</article></body></html>"
    )


HARBOUR = "The harbour reopened on Monday after the storm had closed it for a week."
MUSEUM = "The city museum will open a new wing devoted to maritime history next spring."


def rss(base: str) -> bytes:
    items = [
        ("Harbour reopens after the storm", "/news/harbour.html?utm_source=rss", "Weather"),
        ("Secret plans", "/private/plans.html", "Politics"),
        ("Internal memo", "http://10.20.30.40/memo", "Business"),
    ]
    xml = "".join(
        f"<item><title>{t}</title><link>{link if link.startswith('http') else base + link}</link>"
        f"<guid>{link}</guid><pubDate>Sun, 22 Nov 2026 06:00:00 GMT</pubDate>"
        f"<category>{c}</category><author>desk@gazette.example (Jane Porter)</author></item>"
        for t, link, c in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Gazette</title>{xml}'
        "</channel></rss>"
    ).encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        local.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private/\n")
        local.routes["/feed.xml"] = Reply(
            body=rss(local.base), headers={"Content-Type": "application/rss+xml"}
        )
        local.routes["/feed.json"] = Reply(
            body=json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "items": [
                        {
                            "id": "m1",
                            "url": local.url("/news/museum.html"),
                            "title": "Museum wing",
                            "date_published": "2026-11-21T12:00:00Z",
                        }
                    ],
                }
            ).encode(),
            headers={"Content-Type": "application/feed+json"},
        )
        local.routes["/news/harbour.html?utm_source=rss"] = html_reply(
            page("Harbour reopens after the storm", HARBOUR)
        )
        local.routes["/news/museum.html"] = html_reply(page("Museum wing", MUSEUM), "cp1252")
        local.routes["/private/plans.html"] = html_reply(page("Secret plans", "Never fetched."))
        yield local


def write_run_files(tmp_path: Path, server: LocalServer, allow: bool = True) -> tuple[Path, Path]:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        yaml.safe_dump(
            [
                {
                    "url": server.url("/feed.xml"),
                    "publisher": "Harbour Gazette Ltd",
                    "language": "en",
                    "tags": ["local"],
                    "poll_interval": "15m",
                }
            ]
        )
    )
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "fetch": {
                    "allow_networks": ["127.0.0.1/32"] if allow else [],
                    "min_delay_s": 0.0,
                    "backoff_s": 0.01,
                    "retries": 0,
                    "user_agent": "news-ingest-test/1.0",
                },
                "feeds": {"sources": [{"url": server.url("/feed.json"), "publisher": "City"}]},
            }
        )
    )
    return feeds, cfg


def test_run_on_a_feeds_list(server: LocalServer, tmp_path):
    feeds, cfg = write_run_files(tmp_path, server)
    out = tmp_path / "out"
    proc = run_main("run", "--input", str(feeds), "--config", str(cfg), "--output", str(out))
    assert proc.returncode == 0, proc.stderr

    articles = read_table(out, "articles").to_pylist()
    by_url = {a["url"]: a for a in articles}
    assert set(by_url) == {
        server.url("/news/harbour.html?utm_source=rss"),
        server.url("/news/museum.html"),
    }
    harbour = by_url[server.url("/news/harbour.html?utm_source=rss")]
    assert harbour["source_kind"] == "feed"
    assert harbour["title"] == "Harbour reopens after the storm"
    assert HARBOUR in harbour["text"]
    museum = by_url[server.url("/news/museum.html")]
    assert museum["title"] == "Museum wing"
    assert MUSEUM in museum["text"]

    # Feed and page metadata merged: the page gives the site name; the feed entry its date,
    # author and category; the feeds list the publisher, language and tags.
    got = {k: harbour[k] for k in ("published_at", "authors", "publisher", "site_name")}
    assert got == {
        "published_at": dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC),
        "authors": ["Jane Porter"],
        "publisher": "Harbour Gazette Ltd",
        "site_name": "Harbour Gazette",
    }
    assert "Weather" in harbour["categories"]
    assert "local" in harbour["tags"]
    assert harbour["language"] == "en"
    assert harbour["canonical_url"] == server.url("/news/harbour.html")  # tracking param gone
    assert museum["published_at"] == dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
    assert museum["publisher"] == "City"
    assert all("<p>" not in a["text"] and "</" not in a["text"] for a in articles)

    dead = read_table(out, "dead_letters").to_pylist()
    assert sorted((d["stage"], d["reason"], d["url"]) for d in dead) == [
        ("fetch", "blocked_address", "http://10.20.30.40/memo"),
        ("fetch", "robots_disallowed", server.url("/private/plans.html")),
    ]
    # Every entry ends in exactly one table; the disallowed page was never requested.
    assert len(articles) + len(dead) == 4
    assert server.hits["/private/plans.html"] == 0
    assert {h["User-Agent"] for _p, h in server.requests} == {"news-ingest-test/1.0"}
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["counts"]["articles"] == 2


def test_without_the_allowlist_loopback_feeds_are_refused(server: LocalServer, tmp_path):
    feeds, cfg = write_run_files(tmp_path, server, allow=False)
    out = tmp_path / "out"
    proc = run_main("run", "--input", str(feeds), "--config", str(cfg), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    dead = read_table(out, "dead_letters").to_pylist()
    assert sorted((d["stage"], d["reason"], d["source_ref"]) for d in dead) == [
        ("feeds", "blocked_address", server.url("/feed.json")),
        ("feeds", "blocked_address", server.url("/feed.xml")),
    ]
    assert server.requests == []


def test_run_on_a_warc(tmp_path):
    path = tmp_path / "news.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for uri, status, body in [
            ("https://gazette.example/harbour", "200 OK", page("Harbour", HARBOUR).encode()),
            ("https://gazette.example/museum", "200 OK", page("Museum", MUSEUM).encode()),
            ("https://gazette.example/old", "404 Not Found", b"gone"),
        ]:
            http = StatusAndHeaders(status, [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    uri,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={"WARC-Date": "2026-11-20T08:00:00Z"},
                )
            )
    out = tmp_path / "out"
    proc = run_main("run", "--input", str(path), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    articles = read_table(out, "articles").to_pylist()
    assert sorted((a["url"], a["source_kind"]) for a in articles) == [
        ("https://gazette.example/harbour", "warc"),
        ("https://gazette.example/museum", "warc"),
    ]
    assert any(HARBOUR in a["text"] for a in articles)
    dead = read_table(out, "dead_letters").to_pylist()
    assert [(d["stage"], d["reason"], d["url"]) for d in dead] == [
        ("read", "http_404", "https://gazette.example/old")
    ]


def test_feed_inputs_are_listed_on_the_launcher(tmp_path):
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("- url: http://a.example/rss\n  tags: [x]\n- url: http://b.example/atom\n")
    local = tmp_path / "local.rss"
    local.write_text("<rss/>")
    cfg = config.load(
        overrides={"feeds": {"sources": [{"url": "http://a.example/rss", "tags": ["x"]}]}}
    )
    listed = feed_inputs(cfg, [str(feeds), str(local), str(tmp_path / "page.html")])
    # The same feed in the list and the config is polled once; pages are not feeds.
    assert [f.url for f in listed] == [str(local), "http://a.example/rss", "http://b.example/atom"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fetch": {"max_bytes": 0}}, "fetch.max_bytes"),
        ({"fetch": {"allow_networks": ["everything"]}}, "allow_networks"),
        ({"fetch": {"retries": "3"}}, "fetch.retries"),
        ({"feeds": {"sources": [{"url": "gopher://x"}]}}, r"feeds.sources\[0\].url"),
        ({"feeds": {"max_entries": 0}}, "feeds.max_entries"),
    ],
)
def test_bad_fetch_and_feeds_config_fails_at_start(overrides, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(overrides=overrides)


def test_default_yaml_holds_the_dataclass_defaults():
    data = yaml.safe_load(config.DEFAULT_CONFIG.read_text())
    assert FetchPolicy(**{**data["fetch"], "allow_networks": ()}) == FetchPolicy()
    assert config.FeedsConfig(**{**data["feeds"], "sources": ()}) == config.FeedsConfig()


def test_the_example_feeds_list_is_valid():
    from news_ingest.transforms.feeds import load_feed_list

    example = config.CONFIG_DIR / "feeds.example.yaml"
    feeds = load_feed_list(str(example))
    assert feeds and all(f.is_remote for f in feeds)
    assert config.load(example).inputs == ()
