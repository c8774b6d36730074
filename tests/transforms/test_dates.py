"""Publication dates: offset and precision kept from every source, through the real paths."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from news_ingest.transforms.dates import (
    Published,
    choose_published,
    from_fields,
    labelled_published,
    parse_label_date,
    parse_published,
    prefer_precise,
    to_iso,
)
from news_ingest.transforms.extract import extract
from news_ingest.transforms.schema import (
    SOURCE_FEED,
    SOURCE_HTML,
    SOURCE_TEXT,
    UTC,
    Article,
    RawDocument,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extract"
DATE_EVAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "date-eval"


def page(head: str = "", body_top: str = "") -> bytes:
    """The bare article fixture with extra markup in its head and at the top of its body."""
    html = (FIXTURES / "bare_article.html").read_text("utf-8")
    html = html.replace("<head>", "<head>" + head).replace(
        '<div id="content">', body_top + '<div id="content">'
    )
    return html.encode("utf-8")


def extracted(content: bytes, hints=()) -> Article:
    raw = RawDocument("p.html", SOURCE_HTML, content, hints=tuple(hints))
    article = extract(raw)
    assert isinstance(article, Article)
    return article


def fields(article: Article) -> tuple[dt.datetime | None, int | None, str | None]:
    return article.published_at, article.published_offset_min, article.published_precision


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "at", "offset", "precision"),
    [
        ("2024-10-28T23:30:00+02:00", dt.datetime(2024, 10, 28, 21, 30, tzinfo=UTC), 120, "second"),
        ("2024-10-28T23:30:00-0400", dt.datetime(2024, 10, 29, 3, 30, tzinfo=UTC), -240, "second"),
        ("2024-10-28T09:15:00Z", dt.datetime(2024, 10, 28, 9, 15, tzinfo=UTC), 0, "second"),
        ("2024-10-28T09:15:00", dt.datetime(2024, 10, 28, 9, 15, tzinfo=UTC), None, "second"),
        ("2024-10-28", dt.datetime(2024, 10, 28, tzinfo=UTC), None, "day"),
        (
            "Mon, 28 Oct 2024 09:15:00 +0530",
            dt.datetime(2024, 10, 28, 3, 45, tzinfo=UTC),
            330,
            "second",
        ),
        ("October 28, 2024", dt.datetime(2024, 10, 28, tzinfo=UTC), None, "day"),
        # dots separate day, month, year in that order
        ("05.01.2022 14:45", dt.datetime(2022, 1, 5, 14, 45, tzinfo=UTC), None, "second"),
    ],
)
def test_parse_published_keeps_offset_and_precision(value, at, offset, precision):
    assert parse_published(value) == Published(at, offset, precision)


@pytest.mark.parametrize(
    "value",
    ["last Tuesday", "October 2024", "2024", "", None, "1e9", "0:10000000000000000000000000000"],
)
def test_parse_published_rejects_what_is_not_a_day(value):
    assert parse_published(value) is None


def test_local_date_is_the_sources_own_day():
    late = parse_published("2024-10-28T23:30:00-04:00")
    assert late is not None and late.at.date() == dt.date(2024, 10, 29)
    assert late.local_date == dt.date(2024, 10, 28)


@given(
    st.datetimes(dt.datetime(1950, 1, 2), dt.datetime(2150, 12, 30)),
    st.one_of(st.none(), st.integers(-14 * 60, 14 * 60)),
    st.booleans(),
)
def test_to_iso_reads_back_to_the_same_value(moment, offset, day):
    moment = moment.replace(microsecond=0)
    if day:
        found = Published(
            dt.datetime(moment.year, moment.month, moment.day, tzinfo=UTC), None, "day"
        )
    else:
        found = Published(moment.replace(tzinfo=UTC), offset, "second")
    assert parse_published(to_iso(found)) == found


def test_a_full_timestamp_wins_over_a_bare_day_of_the_same_local_day():
    day = parse_published("2024-10-28")
    stamp = parse_published("2024-10-28T23:30:00-04:00")  # the 29th in UTC
    assert prefer_precise(day, stamp) == stamp
    assert prefer_precise(day, parse_published("2024-10-29T08:00:00Z")) == day
    assert prefer_precise(stamp, day) == stamp


def test_a_utc_timestamp_on_another_day_than_htmldate_is_not_the_pages_day():
    utc = parse_published("2023-11-09T01:09:55Z")
    local = parse_published("2023-11-09T01:09:55+01:00")
    htmldate = parse_published("2023-11-08")
    assert choose_published(None, utc, htmldate) == htmldate
    assert choose_published(None, local, htmldate) == local
    labelled = parse_published("2023-11-07")
    assert choose_published(labelled, local, htmldate) == labelled


def test_from_fields_of_a_timestamp_without_precision_is_a_full_timestamp():
    paris = dt.datetime(2024, 10, 28, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert from_fields(paris, None, None) == Published(paris.astimezone(UTC), 60, "second")
    assert from_fields(None, 60, "second") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16.08.2019 Dauer: 1 Stunde", dt.date(2019, 8, 16)),
        ("26. Jan 2022 im Format", dt.date(2022, 1, 26)),
        ("13. Oktober 2021", dt.date(2021, 10, 13)),
        ("March 5th, 2020 by", dt.date(2020, 3, 5)),
        ("5 de mayo de 2021", dt.date(2021, 5, 5)),
        ("2023-11-07 15:03:30", dt.date(2023, 11, 7)),
        ("Tuesday, 5 March 2024", dt.date(2024, 3, 5)),
        ("Di., 25.01.2022 - 14:45", dt.date(2022, 1, 25)),
        ("by David 21. Juli 2017", None),
        ("31/08/2019", None),  # day and month order unknown
        ("31.02.2019", None),
    ],
)
def test_parse_label_date(text, expected):
    found = parse_label_date(text)
    assert (found.local_date if found else None) == expected


def test_labelled_date_needs_the_date_right_after_the_label():
    import lxml.html

    def tree(body: str):
        return lxml.html.fromstring(f"<html><body>{body}</body></html>")

    found = labelled_published(tree("<p>Veröffentlicht am <b>16.08.2019</b></p>"))
    assert found is not None and found.local_date == dt.date(2019, 8, 16)
    assert labelled_published(tree("<p>Published by Anna on 3 May 2021</p>")) is None
    assert labelled_published(tree("<script>published: 2020-01-01</script><p>x</p>")) is None
    assert labelled_published(tree("<p>Updated: 2021-05-03</p>")) is None


# --- through the real extract path -----------------------------------------------------------


def test_page_offset_is_kept():
    meta = '<meta property="article:published_time" content="2024-10-28T23:30:00+02:00">'
    assert fields(extracted(page(meta))) == (
        dt.datetime(2024, 10, 28, 21, 30, tzinfo=UTC),
        120,
        "second",
    )


def test_page_in_utc_has_offset_zero():
    ld = '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "2024-10-28T09:15:00Z"}</script>'
    assert fields(extracted(page(ld))) == (
        dt.datetime(2024, 10, 28, 9, 15, tzinfo=UTC),
        0,
        "second",
    )


def test_date_only_page_has_day_precision_and_no_offset():
    meta = '<meta name="date" content="2024-10-28">'
    assert fields(extracted(page(meta))) == (dt.datetime(2024, 10, 28, tzinfo=UTC), None, "day")


def test_timestamp_and_date_of_the_same_day_give_the_timestamp():
    # the visible date says the 28th; the microdata timestamp is the 28th at -04:00 (the 29th
    # in UTC): the same day where the page was written, so the timestamp is kept whole
    head = '<meta itemprop="datePublished" content="2024-10-28T22:10:00-04:00">'
    top = "<p class='byline'>Published on 28 October 2024</p>"
    article = extracted(page(head, top))
    assert fields(article) == (dt.datetime(2024, 10, 29, 2, 10, tzinfo=UTC), -240, "second")


def test_a_labelled_date_of_another_day_wins_over_metadata():
    head = '<meta name="date" content="2021-10-15">'
    top = "<p>Erschienen am: 13.10.2021</p>"
    assert fields(extracted(page(head, top))) == (
        dt.datetime(2021, 10, 13, tzinfo=UTC),
        None,
        "day",
    )


def test_feed_hint_offset_is_kept_for_an_undated_page():
    article = extracted(page(), hints=(("published", "Tue, 29 Oct 2024 18:30:00 +0100"),))
    assert fields(article) == (dt.datetime(2024, 10, 29, 17, 30, tzinfo=UTC), 60, "second")


def test_text_document_with_a_date_only_hint():
    raw = RawDocument(
        "a.txt", SOURCE_TEXT, b"Some words of text.", hints=(("published", "2024-10-29"),)
    )
    article = extract(raw)
    assert isinstance(article, Article)
    assert fields(article) == (dt.datetime(2024, 10, 29, tzinfo=UTC), None, "day")


def test_feed_entry_through_parse_feed_keeps_the_offset():
    from news_ingest.transforms.feeds import parse_feed

    rss = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><link>http://x.example/</link>"
        b"<item><title>A</title><link>http://x.example/a</link>"
        b"<pubDate>Tue, 29 Oct 2024 23:30:00 -0400</pubDate></item></channel></rss>"
    )
    (entry,) = parse_feed(rss, "http://x.example/feed", None, None).entries
    raw = RawDocument("http://x.example/a", SOURCE_FEED, page(), hints=entry.hints)
    article = extract(raw)
    assert isinstance(article, Article)
    assert fields(article) == (dt.datetime(2024, 10, 30, 3, 30, tzinfo=UTC), -240, "second")


# --- real pages ------------------------------------------------------------------------------

REAL_PAGES = [
    # JSON-LD and article:published_time in +00:00 agree with the page's own day
    ("0a3108e507c54157a95fe7a1338f5e9c", "2019-10-19"),
    # "Veröffentlicht am 16.08.2019" in the text; a comment's later <time> misled htmldate
    ("resonator-podcast.de.res158", "2019-08-16"),
    # a -05:00 timestamp on the 9th; htmldate reads the 8th from a Dublin Core date
    ("foxnews.com-GOP", "2023-11-09"),
]


@pytest.mark.parametrize(("key", "expected"), REAL_PAGES)
def test_real_pages_get_their_local_day(key, expected):
    path = DATE_EVAL / "html" / f"{key}.html.gz"
    if not path.is_file():
        pytest.skip(f"date-eval data not found at {DATE_EVAL}")
    url = json.loads((DATE_EVAL / "dates.json").read_text("utf-8"))[key]["url"]
    with gzip.open(path) as fh:
        raw = RawDocument(str(path), SOURCE_HTML, fh.read(), url=url)
    article = extract(raw)
    assert isinstance(article, Article)
    found = from_fields(*fields(article))
    assert found is not None and found.local_date.isoformat() == expected
