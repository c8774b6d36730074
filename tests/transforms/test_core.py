"""The shared core: RawDocument -> (normalized Article, DeadLetter) in one composite."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms.clean import CleanOptions
from news_ingest.transforms.core import DocumentsToArticles, to_article
from news_ingest.transforms.extract import ExtractOptions
from news_ingest.transforms.normalize import NormalizeOptions
from news_ingest.transforms.rulepack import load_pack
from news_ingest.transforms.schema import SOURCE_HTML, SOURCE_TEXT, Article, DeadLetter, RawDocument
from news_ingest.transforms.sources import read_path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "tests" / "fixtures" / "extract" / "harbour_article.html"
URL = "https://www.coastal-courier.example/news/harbour-bridge?utm_source=feed"


def test_a_page_comes_out_normalized_and_junk_as_a_dead_letter_of_its_stage():
    docs = [
        RawDocument("harbour.html", SOURCE_HTML, PAGE.read_bytes(), url=URL),
        RawDocument("junk.html", SOURCE_HTML, bytes(range(256)) * 40, url="https://ex.org/j"),
    ]
    core = DocumentsToArticles(
        ExtractOptions(isolation="thread"),
        CleanOptions(),
        NormalizeOptions(),
        load_pack(str(ROOT / "configs" / "boilerplate.yaml")),
    )
    with TestPipeline() as p:
        articles, dead = p | beam.Create(docs) | core
        assert_that(
            articles
            | "Summary"
            >> beam.Map(
                lambda a: (a.source_ref, a.language, a.canonical_url, bool(a.content_hash))
            ),
            equal_to(
                [
                    (
                        "harbour.html",
                        "en",
                        "https://www.coastal-courier.example/news/2024/10/28/harbour-bridge-reopens",
                        True,
                    )
                ]
            ),
            label="articles",
        )
        assert_that(
            dead | "Reasons" >> beam.Map(lambda d: (d.source_ref, d.stage, d.reason)),
            equal_to([("junk.html", "extract", "not_html")]),
            label="dead",
        )


def test_to_article_makes_of_each_document_what_the_composite_makes():
    seeds = [d for path in sorted((ROOT / "seeds").iterdir()) for d in read_path(str(path))]
    docs = [
        *seeds,
        RawDocument("harbour.html", SOURCE_HTML, PAGE.read_bytes(), url=URL),
        RawDocument("junk.html", SOURCE_HTML, bytes(range(256)) * 40, url="https://ex.org/j"),
        RawDocument("advert.txt", SOURCE_TEXT, b"Advertisement"),
    ]
    core = DocumentsToArticles(
        ExtractOptions(isolation="thread"),
        CleanOptions(),
        NormalizeOptions(),
        load_pack(str(ROOT / "configs" / "boilerplate.yaml")),
    )
    plain = [to_article(d, core.steps()) for d in docs]
    articles = [a for a in plain if isinstance(a, Article)]
    dead = [
        (d.source_ref, d.stage, d.reason, d.error_message)
        for d in plain
        if isinstance(d, DeadLetter)
    ]
    assert len(articles) == len(seeds) + 1
    assert [(ref, stage, reason) for ref, stage, reason, _ in dead] == [
        ("junk.html", "extract", "not_html"),
        ("advert.txt", "clean", "empty_text"),
    ]
    with TestPipeline() as p:
        got, got_dead = p | beam.Create(docs) | core
        assert_that(got, equal_to(articles), label="articles")
        assert_that(
            got_dead
            | "Why" >> beam.Map(lambda d: (d.source_ref, d.stage, d.reason, d.error_message)),
            equal_to(dead),
            label="dead",
        )
