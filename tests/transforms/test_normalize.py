"""Normalization: language, counts, hash, UTC dates, tidy metadata, and the Beam transform."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms.normalize import (
    Normalize,
    NormalizeOptions,
    canonical_url_of,
    content_hash,
    identify_language,
    load_language_identifier,
    normalize_article,
)
from news_ingest.transforms.schema import Article


@pytest.fixture(scope="module")
def identifier():
    return load_language_identifier()


def article_of(text: str, **fields) -> Article:
    return Article(article_id="a", source_kind="text", source_ref="mem", text=text, **fields)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("NATO Secretary General Mark Rutte confirmed on Monday that troops were sent.", "en"),
        ("Le secrétaire général de l'OTAN a confirmé lundi l'envoi de troupes en Russie.", "fr"),
        ("Der NATO-Generalsekretär hat am Montag die Entsendung von Truppen bestätigt.", "de"),
        ("El secretario general de la OTAN confirmó el lunes el envío de tropas a Rusia.", "es"),
    ],
)
def test_language_is_iso_639_1(identifier, text, code):
    assert identify_language(text, identifier) == code


def test_language_is_guessed_from_the_first_characters_of_a_long_text(identifier):
    from news_ingest.transforms.normalize import LANGUAGE_SAMPLE_CHARS

    # Natural English (a sentence repeated thousands of times confuses the model itself).
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    english = (readme * (LANGUAGE_SAMPLE_CHARS // len(readme) + 1))[:LANGUAGE_SAMPLE_CHARS]
    german = "Der NATO-Generalsekretär hat am Montag die Entsendung von Truppen bestätigt. "
    assert identify_language(english + german * 20_000, identifier) == "en"
    assert identify_language(german + english, identifier) == "en"


def test_language_is_null_without_evidence(identifier):
    assert identify_language("Rutte", identifier) is None
    assert identify_language("12 34 56 78", identifier, min_confidence=0.99) is None


def test_content_hash_folds_case_punctuation_and_spacing():
    assert content_hash("Troops  were SENT.") == content_hash("troops were sent")
    assert content_hash("troops were sent") != content_hash("troops were not sent")


def test_normalize_fills_derived_fields(identifier):
    naive = dt.datetime(2024, 10, 28, 12, 0)
    paris = dt.datetime(2024, 10, 28, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    article = article_of(
        "The council met on Monday and agreed the budget.",
        url="https://example.org/a",
        title="  A  title ",
        credits=(" Photo:  AP ", "  "),
        published_at=paris,
    )
    got = normalize_article(article, identifier)
    assert got.language == "en"
    assert got.word_count == 9
    assert got.content_hash == content_hash(article.text)
    assert got.canonical_url == "https://example.org/a"
    assert got.title == "A title"
    assert got.credits == ("Photo: AP",)
    assert got.published_at == dt.datetime(2024, 10, 28, 11, 0, tzinfo=dt.UTC)
    assert normalize_article(article_of("x", published_at=naive)).published_at == naive.replace(
        tzinfo=dt.UTC
    )
    assert normalize_article(article_of("Some text here.", language="de"), identifier).language == (
        "de"
    )


def test_normalize_transform_identifies_language_in_setup():
    articles = [article_of("The council met on Monday and agreed the budget for next year.")]
    with TestPipeline() as p:
        ok, dead = p | beam.Create(articles) | Normalize()
        assert_that(
            ok | beam.Map(lambda a: (a.language, a.word_count)), equal_to([("en", 12)]), label="ok"
        )
        assert_that(dead, equal_to([]), label="dead")


def test_normalize_options_reject_bad_confidence():
    with pytest.raises(ValueError, match="min_language_confidence"):
        NormalizeOptions(min_language_confidence=1.5)
    with pytest.raises(ValueError, match="override_language_confidence"):
        NormalizeOptions(override_language_confidence=-0.1)


@pytest.mark.parametrize(
    ("url", "canonical", "expected"),
    [
        ("https://News.example/a?utm_source=rss&id=2#top", None, "https://news.example/a?id=2"),
        (
            "https://news.example/a?fbclid=1",
            "https://news.example/story",
            "https://news.example/story",
        ),
        (None, None, None),
        ("urn:feed:item:1", None, "urn:feed:item:1"),  # not http(s): kept as found
    ],
)
def test_canonical_url_drops_tracking_and_prefers_the_canonical_link(url, canonical, expected):
    article = Article(
        article_id="a", source_kind="feed", source_ref="r", url=url, canonical_url=canonical
    )
    assert canonical_url_of(article) == expected
