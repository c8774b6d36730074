"""Bounded fuzzing of the readers: any bytes in, one document or one dead letter out.

Each property runs a bounded number of examples with a per-example deadline, so the whole
module stays well under a minute in CI. A reader that raises on bad input is a bug: bad input
is an expected rejection (a ``DeadLetter`` with a reason), not an exception.
"""

from __future__ import annotations

import gzip
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.extract import decode_text, extract
from transforms.schema import SOURCE_HTML, SOURCE_TEXT, Article, DeadLetter, RawDocument
from transforms.sources import read_path

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

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
