"""Sitemap parsing, expansion and URL lists (pure functions; the fetches go to 127.0.0.1)."""

from __future__ import annotations

import gzip
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st
from news_ingest.transforms.fetch import Fetcher, FetchPolicy
from news_ingest.transforms.schema import DeadLetter
from news_ingest.transforms.sitemaps import (
    INDEX,
    STAGE,
    TEXT,
    URLSET,
    ExpandSitemaps,
    SitemapEntry,
    SitemapLimits,
    SitemapSource,
    entry_request,
    expand_sitemap,
    gunzip_capped,
    parse_sitemap,
    parse_url_list,
    w3c_datetime,
)
from news_ingest.transforms.stage import StageError

from tests.localhttp import Reply, serving

NEWS = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <!-- a comment -->
  <url>
    <loc>https://gazette.example/a.html</loc>
    <news:news>
      <news:publication><news:name>Gazette</news:name><news:language>fr</news:language>
      </news:publication>
      <news:publication_date>2026-11-22</news:publication_date>
      <news:title>Le port rouvre</news:title>
      <news:keywords>port, temp\xc3\xaate, , port</news:keywords>
    </news:news>
  </url>
  <url><loc>/relative.html</loc></url>
  <url><loc>file:///etc/passwd</loc></url>
  <url><loc>https://gazette.example/b.html</loc></url>
</urlset>"""


def test_news_sitemap_fields_become_hints() -> None:
    parsed = parse_sitemap(NEWS, "https://gazette.example/news.xml")
    assert parsed.kind == URLSET
    assert [e.loc for e in parsed.entries] == [
        "https://gazette.example/a.html",
        "https://gazette.example/relative.html",
        "https://gazette.example/b.html",
    ]
    assert dict(parsed.entries[0].hints) == {
        "title": "Le port rouvre",
        "published": "2026-11-22T00:00:00+00:00",
        "tags": ("port", "tempête"),
        "language": "fr",
        "publisher": "Gazette",
    }
    assert parsed.entries[2].hints == ()
    request = entry_request(parsed.entries[0])
    assert (request.url, request.source_kind) == ("https://gazette.example/a.html", "sitemap")


def test_a_local_file_cannot_list_relative_or_file_urls() -> None:
    parsed = parse_sitemap(NEWS, "/data/news.xml")
    assert [e.loc for e in parsed.entries] == [
        "https://gazette.example/a.html",
        "https://gazette.example/b.html",
    ]


def test_index_and_text_sitemaps() -> None:
    index = (
        b'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://g.example/s1.xml</loc><lastmod>2026-11-01</lastmod></sitemap>"
        b"<sitemap><loc>s2.xml.gz</loc></sitemap></sitemapindex>"
    )
    parsed = parse_sitemap(index, "https://g.example/index.xml")
    assert (parsed.kind, parsed.sitemaps) == (
        INDEX,
        ("https://g.example/s1.xml", "https://g.example/s2.xml.gz"),
    )
    text = parse_sitemap(b"\xef\xbb\xbfhttps://g.example/a\n\nnot a url\nhttp://g.example/b\n", "x")
    assert text.kind == TEXT
    assert [e.loc for e in text.entries] == ["https://g.example/a", "http://g.example/b"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<urlset><url><loc>&x;</loc></url></urlset>",
            "xml_entities",
        ),
        (b"<urlset><url><loc>https://a.example/</loc></url>", "bad_sitemap"),
        (b"<rss version='2.0'><channel/></rss>", "not_a_sitemap"),
    ],
)
def test_refused_sitemaps(content: bytes, reason: str) -> None:
    with pytest.raises(StageError) as err:
        parse_sitemap(content, "https://a.example/s.xml")
    # the entity check is the feeds stage's, its refusal here this stage's
    assert (err.value.stage, err.value.reason) == (STAGE, reason)
    assert err.value.message.startswith("https://a.example/s.xml: ")


def test_a_refused_sitemap_file_is_a_dead_letter_of_its_stage_error(tmp_path: Path) -> None:
    bad = tmp_path / "laughs.xml"
    bad.write_bytes(b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x "y">]><urlset/>')
    deep = tmp_path / "index.xml"
    deep.write_bytes(
        b"<sitemapindex><sitemap><loc>https://a.example/s.xml</loc></sitemap></sitemapindex>"
    )
    out = list(expand_sitemap(None, SitemapSource(str(bad)), SitemapLimits()))
    out += list(expand_sitemap(None, SitemapSource(str(deep)), SitemapLimits(max_depth=0)))
    assert [
        (d.stage, d.reason, d.source_ref, d.source_kind, d.url, d.error_type, d.error_message)
        for d in out
    ] == [
        (
            STAGE,
            "xml_entities",
            str(bad),
            "sitemap",
            None,
            "StageError",
            f"{bad}: the document declares XML entities; refused",
        ),
        (
            STAGE,
            "too_deep",
            "https://a.example/s.xml",
            "sitemap",
            "https://a.example/s.xml",
            None,
            "deeper than 0",
        ),
    ]


def test_gunzip_is_capped() -> None:
    assert gunzip_capped(gzip.compress(b"<urlset/>"), 100, "x") == b"<urlset/>"
    assert gunzip_capped(b"<urlset/>", 100, "x") == b"<urlset/>"
    with pytest.raises(StageError, match="too_large"):
        gunzip_capped(gzip.compress(b" " * 10_000), 1000, "x")
    with pytest.raises(StageError, match="bad_encoding"):
        gunzip_capped(gzip.compress(b" " * 10_000)[:40], 100_000, "x")


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-11-22", "2026-11-22T00:00:00+00:00"),
        ("2026-11-22T06:00Z", "2026-11-22T06:00:00+00:00"),
        ("2026-11-22T06:00:00+01:00", "2026-11-22T05:00:00+00:00"),
        ("2026-11-22T06:00:00.5-05:00", "2026-11-22T11:00:00.500000+00:00"),
        ("yesterday", None),
        ("", None),
    ],
)
def test_w3c_datetime(value: str, iso: str | None) -> None:
    assert w3c_datetime(value) == iso


def test_url_list_lines() -> None:
    text = "# list\n\nhttps://a.example/1\n  https://a.example/2  \n   # indented comment\nhttps://a.example/1\n"
    assert parse_url_list(text) == ["https://a.example/1", "https://a.example/2"]


@given(st.binary(max_size=2000))
def test_parse_never_raises_anything_but_a_stage_error(content: bytes) -> None:
    try:
        parsed = parse_sitemap(content, "https://a.example/s.xml")
    except StageError as exc:
        assert exc.reason in {"xml_entities", "bad_sitemap", "not_a_sitemap"}
        return
    assert all(e.loc.startswith(("http://", "https://")) for e in parsed.entries)


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_urls"):
        SitemapLimits(max_urls=0)
    with pytest.raises(ValueError, match="max_depth"):
        SitemapLimits(max_depth=-1)


def _urlset(*locs: str) -> bytes:
    return ("<urlset>" + "".join(f"<url><loc>{u}</loc></url>" for u in locs) + "</urlset>").encode()


def test_expand_follows_indexes_within_limits() -> None:
    with serving() as srv:
        srv.routes["/robots.txt"] = Reply(status=404)

        def idx(*paths: str) -> Reply:
            items = "".join(f"<sitemap><loc>{srv.url(p)}</loc></sitemap>" for p in paths)
            return Reply(body=f"<sitemapindex>{items}</sitemapindex>".encode())

        srv.routes["/top.xml"] = idx("/mid.xml", "/top.xml", "/a.xml")
        srv.routes["/mid.xml"] = idx("/deep.xml")
        srv.routes["/deep.xml"] = Reply(body=_urlset(srv.url("/deep-page")))
        srv.routes["/a.xml"] = Reply(body=_urlset(*(srv.url(f"/p{i}") for i in range(5))))
        policy = FetchPolicy(allow_networks=("127.0.0.1/32",), min_delay_s=0.0, retries=0)
        fetcher = Fetcher(policy)
        try:
            out = list(
                expand_sitemap(
                    fetcher,
                    SitemapSource(srv.url("/top.xml")),
                    SitemapLimits(max_depth=1, max_urls=3),
                )
            )
        finally:
            fetcher.close()
    entries = [o for o in out if isinstance(o, SitemapEntry)]
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert [e.loc for e in entries] == [srv.url(f"/p{i}") for i in range(3)]
    assert [(d.reason, d.source_ref) for d in dead] == [("too_deep", srv.url("/deep.xml"))]
    assert srv.hits["/top.xml"] == 1  # listed by itself: read once
    assert "/deep.xml" not in srv.hits


def test_expand_sitemaps_transform_on_files(tmp_path: Path) -> None:
    news = tmp_path / "news.xml.gz"
    news.write_bytes(gzip.compress(NEWS))
    sources = [SitemapSource(str(news)), SitemapSource(str(tmp_path / "absent.xml"))]
    policy = FetchPolicy(allow_networks=("127.0.0.1/32",), min_delay_s=0.0, retries=0)
    p = test_pipeline.TestPipeline()
    requests, dead = p | beam.Create(sources) | ExpandSitemaps(policy, SitemapLimits())
    assert_that(
        requests
        | "Requests" >> beam.Map(lambda r: (r.url, r.source_kind, dict(r.hints).get("tags"))),
        equal_to(
            [
                ("https://gazette.example/a.html", "sitemap", ("port", "tempête")),
                ("https://gazette.example/b.html", "sitemap", None),
            ]
        ),
        label="Requests",
    )
    assert_that(
        dead | "Dead" >> beam.Map(lambda d: (d.stage, d.reason, d.source_ref, d.url)),
        equal_to([(STAGE, "unreadable", str(tmp_path / "absent.xml"), None)]),
        label="Dead",
    )
    result = p.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_namespace(STAGE))["counters"]
    got = {c.key.metric.name: c.committed for c in counters}
    assert got["urls"] == 2 and got[URLSET] == 1
