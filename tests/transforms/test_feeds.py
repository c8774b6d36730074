"""Feed lists, feed parsing of every supported format (well-formed and not), and polling."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import pathlib
import socket
import textwrap
from collections.abc import Iterator

import apache_beam as beam
import feedparser
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms.feeds import (
    FAILED,
    NOT_DUE,
    NOT_MODIFIED,
    PARSED,
    EntriesToWork,
    FeedEntry,
    FeedSource,
    FeedState,
    FeedStateStore,
    Polled,
    PollFeeds,
    entry_authors,
    entry_document,
    entry_work,
    feed_source,
    load_feed_list,
    page_key,
    parse_feed,
    parse_interval,
    poll_feed,
    refuse_entity_declarations,
)
from news_ingest.transforms.fetch import PageRequest
from news_ingest.transforms.schema import DeadLetter
from news_ingest.transforms.stage import StageError
from news_ingest.transforms.web.http import Fetcher, FetchPolicy

from tests.localhttp import LocalServer, Reply, serving

BASE = "http://news.example/feed"

RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Example News</title><link>http://news.example/</link><language>en-gb</language>
<item>
  <title>Storm closes &amp; floods the harbour</title>
  <link>http://news.example/2026/storm.html?utm_source=rss</link>
  <guid isPermaLink="false">storm-1</guid>
  <pubDate>Sun, 22 Nov 2026 06:30:00 +0100</pubDate>
  <dc:creator>Jane Reporter</dc:creator>
  <category>Weather</category><category>Local</category>
  <description>&lt;p&gt;The storm &lt;b&gt;closed&lt;/b&gt; the harbour.&lt;/p&gt;</description>
</item>
<item><title>Relative link</title><link>/2026/relative.html</link></item>
</channel></rss>"""

RSS091 = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old</title><link>http://old.example/</link>
<description>d</description><language>en</language>
<item><title>Old story</title><link>http://old.example/story</link><description>Text</description></item>
</channel></rss>"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://rdf.example/"><title>RDF news</title><link>http://rdf.example/</link>
<description>d</description></channel>
<item rdf:about="http://rdf.example/a"><title>RDF story</title><link>http://rdf.example/a</link>
<dc:date>2026-11-21T10:00:00Z</dc:date><dc:creator>R. Writer</dc:creator>
<dc:subject>Science</dc:subject></item>
</rdf:RDF>"""

ATOM10 = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
<title>Atom news</title><id>urn:feed</id><updated>2026-11-21T10:00:00Z</updated>
<entry><title type="html">Un &lt;em&gt;titre&lt;/em&gt;</title><id>urn:entry:1</id>
<link rel="alternate" href="http://atom.example/un"/><link rel="enclosure" href="http://atom.example/a.mp3"/>
<published>2026-11-20T08:00:00+02:00</published><updated>2026-11-21T10:00:00Z</updated>
<author><name>Alice</name></author><author><name>Bob</name></author>
<category term="Politique"/><summary>Résumé court.</summary>
<content type="html">&lt;p&gt;Le texte entier.&lt;/p&gt;</content></entry>
</feed>""".encode()

ATOM03 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#">
<title>Old atom</title><modified>2026-11-21T10:00:00Z</modified>
<entry><title>Atom 0.3 story</title><link rel="alternate" type="text/html" href="http://atom03.example/s"/>
<id>tag:atom03,2026:1</id><issued>2026-11-21T09:00:00Z</issued><modified>2026-11-21T10:00:00Z</modified>
</entry></feed>"""

JSON11 = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON news",
        "home_page_url": "http://json.example/",
        "language": "de",
        "items": [
            {
                "id": "j1",
                "url": "/artikel/1",
                "title": "Ein Artikel",
                "content_html": "<p>Der Text.</p>",
                "summary": "Kurz.",
                "date_published": "2026-11-21T10:00:00+01:00",
                "authors": [{"name": "Karl"}],
                "tags": ["Politik", 3],
            },
            {"id": "j2", "content_text": "Nur Text, keine URL."},
            "not an item",
        ],
    }
).encode()

JSON10 = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1",
        "title": "v1",
        "author": {"name": "Feed Author"},
        "items": [{"id": 1, "external_url": "http://json.example/ext", "title": "External"}],
    }
).encode()

BOZO_RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Broken &nbsp; feed</title>
<item><title>First & only</title><link>http://bozo.example/first</link>
<description>Unclosed <b>bold</description></item>
<item><title>Second</title><link>http://bozo.example/second</link></item>
</channel>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>http://evil.example/</link></item></channel></rss>"""


def entries(content: bytes, ref: str = BASE, source: FeedSource | None = None):
    return parse_feed(content, ref, None, source).entries


# --- parsing ------------------------------------------------------------------------------


def test_rss20_entry_fields_become_hints():
    source = FeedSource(url=BASE, publisher="Example Ltd", tags=("uk", "news"))
    parsed = parse_feed(RSS20, BASE, "application/rss+xml", source)
    assert parsed.kind == "rss20" and parsed.bozo is None
    first, second = parsed.entries
    assert first.link == "http://news.example/2026/storm.html?utm_source=rss"
    assert first.hint("title") == "Storm closes & floods the harbour"
    assert first.hint("author") == "Jane Reporter"
    # the feed's own offset is kept (the same instant as 05:30 UTC)
    assert first.hint("published") == "2026-11-22T06:30:00+01:00"
    assert first.hint("summary") == "The storm closed the harbour."
    assert first.hint("categories") == ("Weather", "Local")
    assert first.hint("tags") == ("uk", "news")
    assert first.hint("guid") == "storm-1"
    assert first.hint("language") == "en-gb"
    assert first.hint("publisher") == "Example Ltd"
    assert second.link == "http://news.example/2026/relative.html"


def test_the_feed_list_language_wins_over_the_feed():
    source = FeedSource(url=BASE, language="cy")
    assert entries(RSS20, source=source)[0].hint("language") == "cy"


@pytest.mark.parametrize(
    ("content", "kind", "link", "title", "published"),
    [
        (RSS091, "rss091n", "http://old.example/story", "Old story", None),
        (RDF, "rss10", "http://rdf.example/a", "RDF story", "2026-11-21T10:00:00+00:00"),
        (ATOM10, "atom10", "http://atom.example/un", "Un titre", "2026-11-20T08:00:00+02:00"),
        (
            ATOM03,
            "atom03",
            "http://atom03.example/s",
            "Atom 0.3 story",
            "2026-11-21T09:00:00+00:00",
        ),
        (
            JSON11,
            "json1",
            "http://json.example/artikel/1",
            "Ein Artikel",
            "2026-11-21T10:00:00+01:00",
        ),
        (JSON10, "json1", "http://json.example/ext", "External", None),
    ],
)
def test_every_format_gives_its_entries(content, kind, link, title, published):
    parsed = parse_feed(content, BASE)
    assert parsed.kind.startswith(kind)
    first = parsed.entries[0]
    assert (first.link, first.hint("title"), first.hint("published")) == (link, title, published)


def test_atom_authors_categories_and_content():
    (entry,) = entries(ATOM10)
    assert entry.hint("author") == "Alice; Bob"
    assert entry.hint("categories") == ("Politique",)
    assert entry.hint("language") == "fr"
    assert entry.hint("guid") == "urn:entry:1"
    assert "Le texte entier." in entry.content_html


def test_json_feed_items_and_malformed_items():
    parsed = parse_feed(JSON11, BASE)
    first, second, third = parsed.entries
    assert first.hint("author") == "Karl"
    assert first.hint("categories") == ("Politik",)
    assert first.hint("language") == "de"
    assert first.hint("summary") == "Kurz."
    assert second.link is None and "Nur Text" in second.content_html
    assert third.link is None and third.hints == ()
    (v1,) = entries(JSON10)
    assert v1.hint("author") == "Feed Author" and v1.hint("guid") == "1"


def test_bozo_feeds_still_give_their_entries():
    parsed = parse_feed(BOZO_RSS, BASE)
    assert parsed.bozo is not None
    assert [e.link for e in parsed.entries] == [
        "http://bozo.example/first",
        "http://bozo.example/second",
    ]


@pytest.mark.parametrize(
    "content",
    [b"", b"just some text", b"<html><body>not a feed</body></html>", b"\x00\xff\xfe garbage"],
)
def test_non_feeds_are_refused(content):
    with pytest.raises(StageError) as info:
        parse_feed(content, BASE)
    assert (info.value.stage, info.value.reason) == ("feeds", "bad_feed")


@pytest.mark.parametrize(
    "content",
    [
        b'{"version": "2", "items": []}',
        b'{"items": "x", "version": "https://jsonfeed.org/version/1"}',
        b"{broken",
    ],
)
def test_bad_json_feeds_are_refused(content):
    with pytest.raises(StageError) as info:
        parse_feed(content, BASE)
    assert info.value.reason == "bad_feed"


def test_entity_declarations_are_refused_before_parsing():
    with pytest.raises(StageError) as info:
        parse_feed(BILLION_LAUGHS, BASE)
    assert info.value.reason == "xml_entities"
    utf16 = BILLION_LAUGHS.decode().replace('version="1.0"?', 'version="1.0" encoding="utf-16"?')
    with pytest.raises(StageError):
        refuse_entity_declarations(utf16.encode("utf-16"))
    external = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    )
    with pytest.raises(StageError):
        refuse_entity_declarations(external)
    # A DOCTYPE without entities (RSS 0.91) and the text "<!ENTITY" inside content are fine.
    refuse_entity_declarations(RSS091)
    refuse_entity_declarations(b"<rss><![CDATA[ <!ENTITY in prose ]]></rss>")


# --- feed lists ---------------------------------------------------------------------------


def test_feed_list_entries(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            - url: https://news.example/rss
              publisher: Example
              language: en
              tags: [uk]
              poll_interval: 15m
            - local/feed.xml
            """
        )
    )
    remote, local = load_feed_list(str(path))
    assert remote == FeedSource("https://news.example/rss", "Example", "en", ("uk",), 900.0)
    assert local.url == str(tmp_path / "local" / "feed.xml") and not local.is_remote


def test_a_config_file_is_also_a_feed_list(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("inputs: []\nfeeds:\n  sources:\n    - url: http://a.example/feed\n")
    assert [f.url for f in load_feed_list(str(path))] == ["http://a.example/feed"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://a/", "colour": "red"}, "unknown key"),
        ({"publisher": "x"}, "needs a url"),
        ({"url": "ftp://a.example/feed"}, "only http"),
        ({"url": "http://a.example/f", "tags": "uk"}, "tags"),
        ({"url": "http://a.example/f", "poll_interval": "soon"}, "poll_interval"),
        ({"url": "http://a.example/f", "poll_interval": 0}, "poll_interval"),
    ],
)
def test_bad_feed_list_entries_name_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        feed_source(data, "feeds[0]")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_parse_interval(value, seconds):
    assert parse_interval(value) == seconds


def test_entry_document_uses_the_entry_content():
    (entry,) = entries(ATOM10)
    doc = entry_document(entry)
    assert doc is not None and doc.source_kind == "feed"
    assert b"Le texte entier." in doc.content and b"<title>Un titre</title>" in doc.content
    assert doc.url == "http://atom.example/un"
    assert doc.hint("author") == "Alice; Bob"


# --- polling against a local server -------------------------------------------------------


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        yield local


def policy(**kw) -> FetchPolicy:
    base = dict(min_delay_s=0.0, backoff_s=0.01, retries=0, allow_networks=("127.0.0.1/32",))
    base.update(kw)
    return FetchPolicy(**base)


def test_conditional_get_and_poll_interval_with_a_state_folder(server: LocalServer, tmp_path):
    def feed(handler) -> Reply:
        if handler.headers.get("If-None-Match") == '"rev1"':
            return Reply(304)
        return Reply(body=RSS20, headers={"ETag": '"rev1"', "Content-Type": "application/rss+xml"})

    server.routes["/feed.xml"] = feed
    source = FeedSource(url=server.url("/feed.xml"), poll_interval_s=600)
    fetcher = Fetcher(policy())
    store = FeedStateStore(str(tmp_path / "state"))
    t0 = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC).timestamp()

    def poll(at: float, with_store: FeedStateStore = store):
        polled = poll_feed(fetcher, source, with_store.load(source.url), at, 10_000)
        with_store.save(source.url, polled.state)
        return polled

    first = poll(t0)
    assert first.status == PARSED and len(first.entries) == 2
    assert store.load(source.url) == FeedState('"rev1"', None, t0)
    # The one stored form: url, validators, the poll time in ISO 8601.
    stored = json.loads(pathlib.Path(store.path(source.url)).read_text(encoding="utf-8"))
    assert stored == {
        "url": source.url,
        "etag": '"rev1"',
        "last_modified": None,
        "polled_at": "2026-11-22T06:00:00+00:00",
    }
    # Within the poll interval the feed is not asked at all.
    later = t0 + 300
    assert poll(later) == Polled(NOT_DUE, store.load(source.url))
    assert server.hits["/feed.xml"] == 1
    # Once due, it is asked conditionally and the server says nothing changed.
    due = t0 + 660
    assert poll(due).status == NOT_MODIFIED
    assert server.headers_of("/feed.xml")[1]["If-None-Match"] == '"rev1"'
    # Without a state folder every poll is a full GET.
    assert poll(later, FeedStateStore(None)).status == PARSED
    assert "If-None-Match" not in server.headers_of("/feed.xml")[2]


def test_a_failed_poll_is_a_dead_letter_and_waits_for_the_interval(server: LocalServer):
    server.routes["/broken.xml"] = Reply(500)
    source = FeedSource(url=server.url("/broken.xml"), poll_interval_s=60)
    fetcher = Fetcher(policy())
    try:
        polled = poll_feed(fetcher, source, FeedState(), 5.0, 10_000)
        assert polled.status == FAILED and polled.entries == ()
        assert polled.dead is not None
        assert (polled.dead.stage, polled.dead.reason) == ("feeds", "http_500")
        assert polled.state.polled_at == 5.0  # tried again after the interval, not at once
        assert poll_feed(fetcher, source, polled.state, 30.0, 10_000).status == NOT_DUE
    finally:
        fetcher.close()


def test_poll_feed_caps_entries_and_says_how_many_it_dropped(server: LocalServer):
    server.routes["/feed.xml"] = Reply(body=RSS20, headers={"Content-Type": "application/rss+xml"})
    fetcher = Fetcher(policy())
    try:
        polled = poll_feed(
            fetcher, FeedSource(server.url("/feed.xml")), FeedState(), 1.0, 10_000, 1
        )
    finally:
        fetcher.close()
    assert len(polled.entries) == 1 and polled.over_cap == 1


def test_feed_state_from_another_feed_or_malformed_is_empty():
    state = FeedState('"e"', "Mon", 10.0)
    assert FeedState.from_json(state.to_json("http://a/f"), "http://a/f") == state
    assert FeedState.from_json(state.to_json("http://a/f"), "http://b/f") == FeedState()
    assert FeedState.from_json({"url": "u", "polled_at": 3}, "u") == FeedState()
    assert FeedState.from_json([], "u") == FeedState()


def test_entry_work_and_page_keys():
    with_guid = FeedEntry("f", "http://example.org/a/1?utm_source=x", (("guid", "g-1"),))
    no_guid = FeedEntry("f", "http://example.org/a/2#top", ())
    work = entry_work(with_guid)
    assert isinstance(work, PageRequest) and work.source_kind == "feed"
    assert page_key(work.url, "g-1") == "guid:g-1|http://example.org/a/1"
    assert page_key(no_guid.link, None) == "link:http://example.org/a/2"
    dead = entry_work(FeedEntry("f", None, (("guid", "x"), ("title", "T"))))
    assert isinstance(dead, DeadLetter)
    assert (dead.stage, dead.reason, dead.source_ref, dead.excerpt) == (
        "feeds",
        "no_link",
        "f#x",
        "T",
    )
    assert entry_work(FeedEntry("f", None, ()), fetch_pages=False).reason == "no_content"


def test_poll_feeds_and_entries_to_work(server: LocalServer, tmp_path):
    server.routes["/rss"] = Reply(body=RSS20, headers={"Content-Type": "application/rss+xml"})
    server.routes["/bomb"] = Reply(body=BILLION_LAUGHS)
    local = tmp_path / "bozo.rss"
    local.write_bytes(BOZO_RSS)
    sources = [
        FeedSource(url=server.url("/rss"), publisher="Example"),
        FeedSource(url=server.url("/bomb")),
        FeedSource(url=server.url("/missing")),
        FeedSource(url=str(local)),
        FeedSource(url=str(tmp_path / "absent.xml")),
    ]
    p = test_pipeline.TestPipeline()
    found, dead = p | beam.Create(sources) | PollFeeds(policy(), 100_000)
    work, no_link = found | EntriesToWork(fetch_pages=True)
    assert_that(
        work
        | "Links" >> beam.Map(lambda r: (type(r).__name__, r.url, dict(r.hints).get("publisher"))),
        equal_to(
            [
                (
                    "PageRequest",
                    "http://news.example/2026/storm.html?utm_source=rss",
                    "Example",
                ),
                # Relative links resolve against the feed's own URL.
                ("PageRequest", server.url("/2026/relative.html"), "Example"),
                ("PageRequest", "http://bozo.example/first", None),
                ("PageRequest", "http://bozo.example/second", None),
            ]
        ),
        label="Requests",
    )
    assert_that(
        dead | "Reasons" >> beam.Map(lambda d: (d.stage, d.reason, d.source_ref)),
        equal_to(
            [
                ("feeds", "xml_entities", server.url("/bomb")),
                ("feeds", "http_404", server.url("/missing")),
                ("feeds", "unreadable", str(tmp_path / "absent.xml")),
            ]
        ),
        label="DeadFeeds",
    )
    assert_that(no_link, equal_to([]), label="NoLinkless")
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
        if c.key.metric.namespace == "feeds"
    }
    assert counters["bozo"] == 1
    assert counters["entries"] == 4
    assert counters["reason:xml_entities"] == 1


def test_entries_without_links_or_content_are_dead_letters():
    parsed = parse_feed(JSON11, BASE)
    with test_pipeline.TestPipeline() as p:
        pages, dead = p | "Fetch" >> beam.Create(parsed.entries) | "W1" >> EntriesToWork(True)
        assert_that(
            dead
            | "R1"
            >> beam.Map(
                lambda d: (d.source_ref, d.stage, d.reason, d.excerpt, d.source_kind, d.url)
            ),
            equal_to(
                [
                    (f"{BASE}#j2", "feeds", "no_link", None, "feed", None),
                    (BASE, "feeds", "no_link", None, "feed", None),  # no guid either
                ]
            ),
            label="NoLink",
        )
        docs, dead2 = p | "Own" >> beam.Create(parsed.entries) | "W2" >> EntriesToWork(False)
        assert_that(
            docs | "Kinds" >> beam.Map(lambda d: (d.source_kind, d.url)),
            equal_to([("feed", "http://json.example/artikel/1"), ("feed", None)]),
            label="OwnContent",
        )
        assert_that(
            dead2 | "R2" >> beam.Map(lambda d: d.reason),
            equal_to(["no_content"]),
            label="NoContent",
        )


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=2000)
    | st.sampled_from([RSS20, ATOM10, JSON11, BOZO_RSS]).map(lambda b: b[: len(b) // 2])
)
def test_any_bytes_parse_or_raise_feed_error(content):
    try:
        parsed = parse_feed(content, BASE)
    except StageError as exc:
        assert exc.reason in ("bad_feed", "xml_entities")
    else:
        assert all(e.link is None or e.link.startswith("http") for e in parsed.entries)


@pytest.mark.parametrize(
    ("author", "names"),
    [
        ("desk@gazette.example (Jane Reporter)", ["Jane Reporter"]),  # feedparser: "ple (Jane..."
        ("Jane Reporter", ["Jane Reporter"]),
        ("desk@gazette.example", []),  # an address is not a name
    ],
)
def test_rss_author_forms(author, names):
    parsed = feedparser.parse(
        "<rss version='2.0'><channel><item><title>t</title><link>http://a.example/b</link>"
        f"<author>{author}</author></item></channel></rss>"
    )
    assert entry_authors(parsed.entries[0]) == names


# --- what an attacker tries next, and one feed's failure -----------------------------------

_DTD = BILLION_LAUGHS[BILLION_LAUGHS.index(b"<!DOCTYPE") : BILLION_LAUGHS.index(b"]>") + 2]
_BODY = BILLION_LAUGHS[BILLION_LAUGHS.index(b"<rss") :]


@pytest.mark.parametrize(
    "content",
    [
        # a comment holding a "<" before the DTD once hid the declarations from the check
        b'<?xml version="1.0"?><!-- <a> -->' + _DTD + _BODY,
        # a DTD after the root element is not XML, but no parser may be handed one
        _BODY.replace(b"<channel>", _DTD + b"<channel>"),
        # UTF-16 without a byte-order mark
        (b'<?xml version="1.0"?>' + _DTD + _BODY).decode().encode("utf-16-le"),
        # parameter entities
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p "x"> %p;]><rss version="2.0"/>',
    ],
)
def test_hidden_entity_declarations_are_refused(content):
    with pytest.raises(StageError) as info:
        parse_feed(content, BASE)
    assert info.value.reason == "xml_entities"


def test_an_external_dtd_is_never_fetched(server: LocalServer):
    # RSS 0.91 feeds name a DTD; the parser must not ask for it (no fetch leaves the Fetcher).
    server.routes["/evil.dtd"] = Reply(body=b'<!ENTITY title "pwned">')
    feed = (
        b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "' + server.url("/evil.dtd").encode() + b'">'
        b'<rss version="0.91"><channel><title>T</title>'
        b"<item><title>A &title;</title><link>http://old.example/a</link></item></channel></rss>"
    )
    parsed = parse_feed(feed, BASE)
    assert "pwned" not in (parsed.entries[0].hint("title") or "")
    assert server.hits["/evil.dtd"] == 0


def test_one_failing_feed_is_its_own_dead_letter_and_its_host_goes_on(server, monkeypatch):
    import news_ingest.transforms.feeds as feeds

    for i in range(3):
        server.routes[f"/f{i}.xml"] = Reply(body=RSS20.replace(b"Example News", b"Feed %d" % i))
    real = feeds.parse_feed

    def parse_with_a_bug(content, feed_ref, content_type=None, source=None):
        if b"Feed 1" in content:
            raise RuntimeError("a bug that only this feed's bytes reach")
        return real(content, feed_ref, content_type, source)

    monkeypatch.setattr(feeds, "parse_feed", parse_with_a_bug)
    sources = [FeedSource(url=server.url(f"/f{i}.xml")) for i in range(3)]
    with test_pipeline.TestPipeline() as p:
        found, dead = p | beam.Create(sources) | PollFeeds(policy(), 100_000)
        assert_that(
            found | "Refs" >> beam.Map(lambda e: e.feed_ref),
            equal_to([server.url("/f0.xml")] * 2 + [server.url("/f2.xml")] * 2),
            label="Entries",
        )
        assert_that(
            dead | "Dead" >> beam.Map(lambda d: (d.stage, d.reason, d.source_ref, d.error_type)),
            equal_to([("feeds", "exception", server.url("/f1.xml"), "RuntimeError")]),
            label="DeadFeeds",
        )


def test_a_refused_feed_file_is_a_dead_letter_of_its_stage_error(tmp_path):
    bad = tmp_path / "laughs.xml"
    bad.write_bytes(BILLION_LAUGHS)
    with test_pipeline.TestPipeline() as p:
        found, dead = p | beam.Create([FeedSource(url=str(bad))]) | PollFeeds(policy(), 100_000)
        assert_that(found, equal_to([]), label="NoEntries")
        assert_that(
            dead
            | "Dead"
            >> beam.Map(
                lambda d: (d.stage, d.reason, d.source_ref, d.url, d.error_type, d.error_message)
            ),
            equal_to(
                [
                    (
                        "feeds",
                        "xml_entities",
                        str(bad),
                        None,
                        "StageError",
                        "the document declares XML entities; refused",
                    )
                ]
            ),
            label="DeadFeed",
        )


def test_a_down_feed_server_is_a_feed_dead_letter_with_what_happened():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = FeedSource(url=f"http://127.0.0.1:{port}/feed.xml")
    with test_pipeline.TestPipeline() as p:
        found, dead = p | beam.Create([source]) | PollFeeds(policy(), 100_000)
        assert_that(found, equal_to([]), label="NoEntries")
        assert_that(
            dead | "Dead" >> beam.Map(lambda d: (d.stage, d.reason, d.source_ref)),
            equal_to([("feeds", "connection_refused", source.url)]),
            label="DeadFeeds",
        )


def test_a_gzip_bomb_feed_is_refused(server: LocalServer):
    server.handle_error = lambda request, address: None  # the client hangs up mid-body
    server.routes["/bomb.xml"] = Reply(
        body=gzip.compress(b"<rss>" + b" " * (20 * 1024 * 1024)),
        headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
    )
    fetcher = Fetcher(policy(max_bytes=1024 * 1024))
    polled = poll_feed(fetcher, FeedSource(server.url("/bomb.xml")), FeedState(), 1.0, 1)
    assert polled.status == FAILED and polled.dead is not None
    assert (polled.dead.reason, polled.dead.error_type) == ("too_large", "FetchError")


def test_json_nested_past_the_recursion_limit_is_a_bad_feed():
    deep = b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}"
    with pytest.raises(StageError) as info:
        parse_feed(deep, BASE)
    assert info.value.reason == "bad_feed"


def test_a_feed_of_countless_tags_is_refused_before_feedparser_spends_minutes_on_it():
    item = b"<item><title>x</title><link>http://e.example/a</link></item>"
    head = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    flood = head + item + b"<a/>" * 250_000 + b"</channel></rss>"
    with pytest.raises(StageError) as info:
        parse_feed(flood, BASE)
    assert info.value.reason == "too_complex"
    # Tags inside CDATA are text, not elements; 1,000 entries are far from the limit.
    cdata = b"<description><![CDATA[" + b"<p>x</p>" * 100 + b"]]></description>"
    big = head + (item.replace(b"</item>", cdata + b"</item>")) * 1000 + b"</channel></rss>"
    assert len(parse_feed(big, BASE).entries) == 1000
