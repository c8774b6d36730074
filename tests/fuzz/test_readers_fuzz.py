"""Bounded fuzzing of the readers: any bytes in, one document or one dead letter out.

Each property runs a bounded number of examples, so the whole module stays well under a minute
in CI. No per-example deadline: on a loaded machine a warm-up or a slow first example tripped it
(a flake, not a finding); a reader that hangs is caught by the extraction timeout tests. A reader that raises on bad input is a bug: bad input
is an expected rejection (a ``DeadLetter`` with a reason), not an exception.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from news_ingest.transforms.extract import decode_text, extract
from news_ingest.transforms.feeds import parse_feed
from news_ingest.transforms.schema import SOURCE_HTML, SOURCE_TEXT, Article, DeadLetter, RawDocument
from news_ingest.transforms.sources import read_path
from news_ingest.transforms.stage import StageError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def warm_up() -> None:
    """First calls import trafilatura and feedparser (seconds): not the first example's."""
    html = b"<html><body><article><p>Warm up.</p></article></body></html>"
    extract(RawDocument(source_ref="warm.html", source_kind=SOURCE_HTML, content=html))
    with contextlib.suppress(StageError):
        parse_feed(b"<rss/>", "warm.rss")


TAGS = ["p", "div", "article", "main", "nav", "script", "style", "h1", "title", "meta", "br", "a"]


@st.composite
def html_documents(draw) -> str:
    """HTML-shaped text: random nesting of common tags, text, entities and broken markup."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(TAGS).map(lambda t: f"<{t}>"),
                st.sampled_from(TAGS).map(lambda t: f"</{t}>"),
                st.sampled_from(
                    ["&amp;", "&nbsp;", "&#0;", "&#x110000;", "&bogus;", "<!--", "-->"]
                ),
                st.sampled_from(["<meta charset='utf-16'>", "<![CDATA[", "<?xml version='1.0'?>"]),
                st.text(max_size=40),
            ),
            max_size=60,
        )
    )
    return "".join(parts)


def one_result(results: list) -> RawDocument | DeadLetter:
    assert len(results) == 1
    (result,) = results
    assert isinstance(result, (RawDocument, DeadLetter))
    if isinstance(result, DeadLetter):
        assert result.stage and result.reason
    return result


def read_bytes(data: bytes, suffix: str) -> RawDocument | DeadLetter:
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return one_result(list(read_path(path, max_bytes=2048)))
    finally:
        os.remove(path)


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from([".txt", ".html", ".htm", ".text"]))
def test_reading_any_file_gives_one_document_or_one_dead_letter(data, suffix):
    result = read_bytes(data, suffix)
    assert isinstance(result, RawDocument) == (len(data) <= 2048)


@FUZZ
@given(st.binary(max_size=4096), st.floats(0.0, 1.0))
def test_reading_any_gzip_stream_whole_or_cut_gives_one_result(data, cut):
    packed = gzip.compress(data, mtime=0)
    packed = packed[: int(len(packed) * cut)] if cut < 1.0 else packed
    result = read_bytes(packed, ".txt.gz")
    whole = cut == 1.0 and len(data) <= 2048
    assert isinstance(result, RawDocument) == whole
    if whole:
        assert result.content == data


@FUZZ
@given(st.binary(max_size=4096))
def test_decode_text_never_raises(data):
    text = decode_text(data)
    assert text is None or isinstance(text, str)


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from([SOURCE_TEXT, SOURCE_HTML]))
def test_extracting_any_bytes_gives_an_article_or_a_dead_letter(data, kind):
    result = extract(RawDocument(source_ref="fuzz", source_kind=kind, content=data))
    assert isinstance(result, (Article, DeadLetter))


@FUZZ
@given(html_documents(), st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_extracting_any_html_gives_an_article_or_a_dead_letter(html, encoding):
    data = html.encode(encoding, "replace")
    result = extract(RawDocument(source_ref="fuzz.html", source_kind=SOURCE_HTML, content=data))
    assert isinstance(result, (Article, DeadLetter))
    if isinstance(result, Article):
        assert result.text.strip()


FEED_PIECES = [
    '<?xml version="1.0"?>',
    '<rss version="2.0">',
    "<channel>",
    "<item>",
    "</item>",
    "<title>",
    "</title>",
    "<link>",
    "</link>",
    "http://news.example/a",
    "file:///etc/passwd",
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    "<entry>",
    '<link href="',
    '"/>',
    "</entry>",
    "<!DOCTYPE rss>",
    "<!ENTITY x 'y'>",
    "&amp;",
    "&x;",
    "<![CDATA[",
    "]]>",
    '{"version": "https://jsonfeed.org/version/1.1", "items": [',
    '{"url": "http://news.example/b", "id": 1}',
    "]}",
    "\x00",
]


@st.composite
def feed_documents(draw) -> bytes:
    """Feed-shaped bytes: RSS, Atom and JSON Feed pieces in any order, with text between."""
    parts = draw(
        st.lists(st.one_of(st.sampled_from(FEED_PIECES), st.text(max_size=20)), max_size=40)
    )
    return "".join(parts).encode(draw(st.sampled_from(["utf-8", "utf-16"])), "replace")


@FUZZ
@given(st.one_of(feed_documents(), st.binary(max_size=2048)))
def test_parsing_any_feed_gives_entries_or_a_feed_error(content):
    try:
        parsed = parse_feed(content, "fuzz.rss")
    except StageError as exc:
        assert exc.reason
        return
    for entry in parsed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
