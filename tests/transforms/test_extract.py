"""Extraction: text from HTML pages, page metadata, feed-hint fallbacks, rejections, Beam stage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import apache_beam as beam
import lxml.html
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from news_ingest.transforms.extract import (
    BLOCK_FEATURES,
    BlockModel,
    Extract,
    ExtractOptions,
    agree_with,
    block_features,
    canonical_link,
    classify_blocks,
    decode_text,
    extract,
    is_html,
    language_code,
    load_block_model,
    outer_blocks,
    prune_blocks,
)
from news_ingest.transforms.schema import (
    SOURCE_FEED,
    SOURCE_HTML,
    SOURCE_TEXT,
    UTC,
    Article,
    DeadLetter,
    RawDocument,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extract"
URL = "https://www.coastal-courier.example/news/harbour-bridge?utm_source=feed"


def html_doc(name: str, kind: str = SOURCE_HTML, url: str | None = URL, hints=()) -> RawDocument:
    return RawDocument(
        source_ref=name,
        source_kind=kind,
        content=(FIXTURES / name).read_bytes(),
        url=url,
        hints=tuple(hints),
    )


RULES_ON = ExtractOptions(drop_title_block=True, max_link_density=0.5, second_opinion=True)


def test_the_rules_drop_headline_navigation_and_related_links():
    article = extract(html_doc("harbour_article.html"), RULES_ON)
    assert isinstance(article, Article)
    paragraphs = article.text.split("\n")
    assert paragraphs[0].startswith("The harbour bridge reopened to traffic on Monday morning")
    assert paragraphs[-1].startswith("The authority said a permanent replacement")
    assert len(paragraphs) == 5
    for boilerplate in ("READ MORE", "Most read", "ferry timetable", "Copyright", "Sport"):
        assert boilerplate not in article.text
    assert "Harbour bridge reopens after storm repairs" not in article.text
    assert set(article.rules_fired) == {"extract:title_block", "extract:link_dense"}


def test_html_metadata_is_mapped_into_the_article():
    article = extract(html_doc("harbour_article.html"))
    assert isinstance(article, Article)
    assert article.title == "Harbour bridge reopens after storm repairs"
    assert article.url == URL
    assert article.canonical_url == (
        "https://www.coastal-courier.example/news/2024/10/28/harbour-bridge-reopens"
    )
    assert article.authors == ("Marta Lindqvist",)
    # 09:15 at +02:00 is 07:15 UTC; the offset keeps the page's own time
    assert article.published_at == dt.datetime(2024, 10, 28, 7, 15, tzinfo=UTC)
    assert (article.published_offset_min, article.published_precision) == (120, "second")
    assert article.site_name == "The Coastal Courier"
    assert article.language == "en"
    assert article.image_url == "https://static.coastal-courier.example/img/bridge.jpg"
    assert article.categories == ("Local",)
    assert article.tags == ("infrastructure", "weather")


FEED_HINTS = (
    ("title", "Library stays open for another year"),
    ("author", "Jon Ashby; Priya Nair"),
    ("published", "2024-10-29T18:30:00Z"),
    ("summary", "The council votes to keep the library open."),
    ("categories", ["Community"]),
    ("tags", ["libraries", "council"]),
    ("language", "en-US"),
    ("guid", "urn:courier:1234"),
    ("publisher", "Village Gazette"),
)


def test_feed_hints_fill_what_the_page_does_not_say():
    article = extract(html_doc("bare_article.html", kind=SOURCE_FEED, hints=FEED_HINTS))
    assert isinstance(article, Article)
    assert article.text.startswith("The village council voted on Tuesday evening")
    assert article.title == "Library stays open for another year"
    assert article.authors == ("Jon Ashby", "Priya Nair")
    assert article.published_at == dt.datetime(2024, 10, 29, 18, 30, tzinfo=UTC)
    assert article.language == "en"
    assert article.categories == ("Community",)
    assert article.tags == ("libraries", "council")
    assert article.publisher == "Village Gazette"
    assert article.canonical_url is None


def test_page_metadata_wins_over_feed_hints_and_feed_tags_are_added():
    hints = (
        ("title", "Feed title"),
        ("author", "Feed Author"),
        ("tags", ["feed-tag", "Weather"]),
        ("categories", ["Coast"]),
    )
    article = extract(html_doc("harbour_article.html", kind=SOURCE_FEED, hints=hints))
    assert isinstance(article, Article)
    assert article.title == "Harbour bridge reopens after storm repairs"
    assert article.authors == ("Marta Lindqvist",)
    # the page's keywords first, then the feed's tags (a repeat in other case is dropped)
    assert article.tags == ("infrastructure", "weather", "feed-tag")
    assert article.categories == ("Local", "Coast")


def test_a_feed_timestamp_refines_a_date_only_page_of_the_same_day():
    page = (
        (FIXTURES / "bare_article.html")
        .read_bytes()
        .replace(b"<head>", b'<head><meta name="date" content="2024-10-29">')
    )
    raw = RawDocument("p.html", SOURCE_HTML, page, hints=(("published", "2024-10-29T18:30:00Z"),))
    article = extract(raw)
    assert isinstance(article, Article)
    assert article.published_at == dt.datetime(2024, 10, 29, 18, 30, tzinfo=UTC)
    assert (article.published_offset_min, article.published_precision) == (0, "second")
    other_day = RawDocument(
        "p.html", SOURCE_HTML, page, hints=(("published", "2024-11-02T08:00:00Z"),)
    )
    article = extract(other_day)
    assert isinstance(article, Article)
    assert article.published_at == dt.datetime(2024, 10, 29, tzinfo=UTC)
    assert (article.published_offset_min, article.published_precision) == (None, "day")


def test_plain_text_is_decoded_not_parsed():
    raw = RawDocument("a.txt", SOURCE_TEXT, "Grüße <b>aus</b> Köln".encode("latin-1"))
    article = extract(raw)
    assert isinstance(article, Article)
    assert article.text == "Grüße <b>aus</b> Köln"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (bytes(range(256)) * 40, "not_html"),
        (
            b"<html><head><script>var x=1;</script></head><body><img src='a.png'></body></html>",
            "no_article",
        ),
        (b"", "no_article"),
    ],
)
def test_pages_without_an_article_are_rejections_with_a_reason(content, reason):
    dead = extract(RawDocument("x.html", SOURCE_HTML, content, url="https://example.org/x"))
    assert isinstance(dead, DeadLetter)
    assert dead.stage == "extract"
    assert dead.reason == reason
    assert dead.url == "https://example.org/x"


def test_pages_over_the_element_cap_are_rejected_before_extraction():
    raw = html_doc("harbour_article.html")
    dead = extract(raw, ExtractOptions(max_elements=20))
    assert isinstance(dead, DeadLetter)
    assert dead.reason == "too_complex"
    assert "exceed the limit of 20" in (dead.error_message or "")
    assert isinstance(extract(raw, ExtractOptions(max_elements=5000)), Article)


def test_the_rules_are_off_by_default():
    # measured: they lose on the general web (README, "Extraction quality")
    article = extract(html_doc("harbour_article.html"))
    assert isinstance(article, Article)
    assert "READ MORE: Storm damage estimates rise to forty million" in article.text
    assert article.rules_fired == ()
    assert ExtractOptions() == ExtractOptions(
        drop_title_block=False, max_link_density=None, second_opinion=False
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (RawDocument("a.html", SOURCE_HTML, b"no markup at all"), True),
        (RawDocument("a.txt", SOURCE_TEXT, b"<html><body>x</body></html>"), False),
        (RawDocument("u", SOURCE_FEED, b"<!-- c -->\n<!DOCTYPE html><html>"), True),
        (RawDocument("u", SOURCE_FEED, b"plain words"), False),
        (RawDocument("u", SOURCE_FEED, b"words", content_type="text/html; charset=utf-8"), True),
    ],
)
def test_is_html(raw, expected):
    assert is_html(raw) is expected


@pytest.mark.parametrize(
    ("head", "base", "expected"),
    [
        ('<link rel="canonical" href="/a/b">', "https://ex.org/x?y=1", "https://ex.org/a/b"),
        ('<link rel="Canonical" href="https://ex.org/c">', None, "https://ex.org/c"),
        ('<link rel="alternate canonical" href="https://ex.org/d">', None, "https://ex.org/d"),
        ('<link rel="canonical" href="javascript:void(0)">', None, None),
        ('<link rel="canonical" href="/relative">', None, None),
        ('<link rel="alternate" href="https://ex.org/e">', None, None),
    ],
)
def test_canonical_link(head, base, expected):
    tree = lxml.html.fromstring(f"<html><head>{head}</head><body><p>x</p></body></html>")
    assert canonical_link(tree, base) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en-GB", "en"), ("pt_BR", "pt"), ("DE", "de"), ("", None), (None, None), ("x1", None)],
)
def test_language_code(value, expected):
    assert language_code(value) == expected


def test_prune_blocks_drops_title_repeats_and_link_lists():
    body = etree.fromstring(
        "<body><head>Bridge Reopens!</head>"
        "<p>The bridge reopened on <ref target='/m'>Monday</ref> after repairs.</p>"
        "<list><item><ref target='/a'>Another story</ref></item>"
        "<item>Plain item with <ref target='/b'>a link</ref></item></list>"
        "<p><ref target='/c'>Read more here</ref> please</p></body>"
    )
    fired = prune_blocks(body, "Bridge reopens", 0.5)
    assert fired == ["link_dense", "title_block"]
    assert "".join(body.itertext()) == (
        "The bridge reopened on Monday after repairs.Plain item with a link"
    )
    assert not list(body.iter("ref"))


def test_second_opinion_drops_only_lines_the_other_extractor_lacks():
    text = "one two three four five\nsix seven eight nine ten\nshare this\nbuy now from us today"
    other = "one two three four five six seven eight nine ten share"
    kept, dropped = agree_with(text, other, 0.5)
    assert dropped
    assert kept == "one two three four five\nsix seven eight nine ten\nshare this"


def test_second_opinion_is_ignored_when_the_extractors_disagree():
    text = "one two three four five\nsix seven eight nine ten"
    kept, dropped = agree_with(text, "one two three four nothing else matches here", 0.9)
    assert (kept, dropped) == (text, False)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_second_opinion_never_adds_text(text, other):
    kept, _ = agree_with(text, other, 0.5)
    assert set(kept.split("\n")) <= set(text.split("\n"))


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2000))
def test_extract_never_raises_on_arbitrary_bytes(content):
    result = extract(RawDocument("f.html", SOURCE_HTML, content))
    assert isinstance(result, (Article, DeadLetter))


def _summary(item):
    if isinstance(item, DeadLetter):
        return ("dead", item.source_ref, item.url, item.reason)
    return ("article", item.source_ref, item.url, item.title)


@pytest.mark.parametrize("isolation", ["thread", "subprocess"])
def test_extract_transform_routes_articles_and_dead_letters(isolation):
    docs = [
        html_doc("harbour_article.html"),
        RawDocument("junk.html", SOURCE_HTML, bytes(range(256)) * 40, url="https://ex.org/junk"),
    ]
    with TestPipeline() as p:
        articles, dead = (
            p | beam.Create(docs) | Extract(ExtractOptions(timeout_s=10.0, isolation=isolation))
        )
        assert_that(
            articles | "SummarizeArticles" >> beam.Map(_summary),
            equal_to(
                [
                    (
                        "article",
                        "harbour_article.html",
                        URL,
                        "Harbour bridge reopens after storm repairs",
                    )
                ]
            ),
            label="articles",
        )
        assert_that(
            dead | "SummarizeDead" >> beam.Map(_summary),
            equal_to([("dead", "junk.html", "https://ex.org/junk", "not_html")]),
            label="dead",
        )


def _slow_page(paragraphs: int) -> bytes:
    body = "".join(f"<p>Paragraph {i} with a few words in it.</p>" for i in range(paragraphs))
    return f"<html><body>{body}</body></html>".encode()


def test_a_page_that_takes_too_long_becomes_a_timeout_dead_letter_with_its_url():
    # 20,000 paragraphs take trafilatura about a second; the limit is a hundredth of that.
    raw = RawDocument("slow.html", SOURCE_HTML, _slow_page(20_000), url="https://ex.org/slow")
    with TestPipeline() as p:
        articles, dead = (
            p | beam.Create([raw]) | Extract(ExtractOptions(timeout_s=0.01, isolation="subprocess"))
        )
        assert_that(articles, equal_to([]), label="no articles")
        assert_that(
            dead | beam.Map(lambda d: (d.stage, d.reason, d.url, d.error_type)),
            equal_to([("extract", "timeout", "https://ex.org/slow", "TimeoutError")]),
            label="dead",
        )


def test_extract_options_check_their_values():
    with pytest.raises(ValueError, match="timeout_s"):
        ExtractOptions(timeout_s=0)
    with pytest.raises(ValueError, match="isolation"):
        ExtractOptions(isolation="fork")
    with pytest.raises(ValueError, match="max_link_density"):
        ExtractOptions(max_link_density=1.5)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # short Western text: the detector ties cp1250 with cp1252; cp1252 wins
        ("Il est parti après le dîner, très tard.".encode("latin-1"), "après le dîner, très"),
        ("Une phrase courte, après.".encode("cp1252"), "après"),
        # UTF-8 with one broken byte stays UTF-8 (not re-read as a legacy codepage)
        ("Die Straßenbahn fährt über die Brücke.".encode() + b"\xff ok", "Straßenbahn fährt"),
        ("\ufeffNATO warns of troops in Kursk.".encode("utf-16"), "NATO warns of troops"),
        (("“Quoted” text – with dashes… and café. " * 20).encode("cp1252"), "“Quoted” text – with"),
    ],
)
def test_decode_text_reads_legacy_and_damaged_text_right(content, expected):
    assert expected in decode_text(content)


# --- the learned block classifier -------------------------------------------------------------


def _body(xml: str):
    return etree.fromstring(xml)


NAV_BODY = (
    "<body><p>The council voted on Tuesday to keep the village library open for another year, "
    "after a campaign by residents.</p>"
    '<list><item><ref target="/a">Sport</ref></item><item><ref target="/b">Weather</ref></item>'
    "</list>"
    "<p>The vote was unanimous, and the library will now open on Saturdays as well.</p></body>"
)


def _link_model(weight: float) -> BlockModel:
    """A model that only looks at the share of a block's characters inside links."""
    n = len(BLOCK_FEATURES)
    weights = [0.0] * n
    weights[BLOCK_FEATURES.index("link_share")] = weight
    return BlockModel(BLOCK_FEATURES, (0.0,) * n, (1.0,) * n, tuple(weights), 2.0)


def test_block_features_one_row_per_outer_block_with_the_precision_share():
    body = _body(NAV_BODY)
    precision = _body("<body>" + NAV_BODY.split("<list>")[0].removeprefix("<body>") + "</body>")
    rows = block_features(body, precision)
    assert [b.tag for b in outer_blocks(body)] == ["p", "item", "item", "p"]
    assert len(rows) == 4 and all(len(r) == len(BLOCK_FEATURES) for r in rows)
    link, share = BLOCK_FEATURES.index("link_share"), BLOCK_FEATURES.index("in_precision")
    assert [r[link] for r in rows] == [0.0, 1.0, 1.0, 0.0]
    assert rows[0][share] == 1.0 and rows[3][share] == 0.0
    assert all(r[share] == 0.0 for r in block_features(body, None))


def test_classify_blocks_drops_what_the_model_scores_low_and_never_everything():
    body = _body(NAV_BODY)
    assert classify_blocks(body, None, _link_model(-10.0), 0.5) == 2
    assert "Sport" not in "".join(body.itertext())
    assert "unanimous" in "".join(body.itertext())
    links_only = _body('<body><p><ref target="/a">Sport</ref></p></body>')
    assert classify_blocks(links_only, None, _link_model(-10.0), 0.5) == 0


def test_the_packaged_block_model_loads_and_a_wrong_one_fails_at_construction(tmp_path):
    model = load_block_model("")
    assert model.features == BLOCK_FEATURES
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps({**model.as_json(), "features": ["log_chars"]}))
    with pytest.raises(ValueError, match="other features"):
        ExtractOptions(block_classifier=True, block_model=str(bad))
    with pytest.raises(FileNotFoundError):
        ExtractOptions(block_classifier=True, block_model=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="block_threshold"):
        ExtractOptions(block_threshold=1.5)


def test_the_block_classifier_runs_through_extract_and_is_counted(tmp_path):
    page = (FIXTURES / "harbour_article.html").read_bytes()
    plain = extract(RawDocument("p.html", SOURCE_HTML, page, url=URL), ExtractOptions())
    model = tmp_path / "links.json"
    model.write_text(json.dumps(_link_model(-10.0).as_json()))
    opts = ExtractOptions(block_classifier=True, block_model=str(model), block_threshold=0.5)
    article = extract(RawDocument("p.html", SOURCE_HTML, page, url=URL), opts)
    assert isinstance(plain, Article) and isinstance(article, Article)
    assert "extract:block_classifier" in article.rules_fired
    assert len(article.text) < len(plain.text)
    assert "The harbour bridge reopened to traffic on Monday morning" in article.text
    assert "READ MORE" in plain.text and "READ MORE" not in article.text
    packaged = extract(
        RawDocument("p.html", SOURCE_HTML, page, url=URL), ExtractOptions(block_classifier=True)
    )
    assert isinstance(packaged, Article)
    assert "The harbour bridge reopened to traffic on Monday morning" in packaged.text
