"""Author names, label lists and the text's language: small cases and real dev-set pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from news_ingest.transforms.extract import extract
from news_ingest.transforms.metadata import author_names, clean_author, merge_labels, split_labels
from news_ingest.transforms.normalize import (
    NormalizeOptions,
    choose_language,
    load_language_identifier,
    normalize_article,
)
from news_ingest.transforms.schema import SOURCE_HTML, Article, RawDocument
from news_ingest.transforms.sources import read_path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
GERMAN = (
    "Der Gemeinderat hat am Dienstagabend beschlossen, die alte Bibliothek mindestens ein "
    "weiteres Jahr offen zu halten, nachdem mehr als vierhundert Einwohner eine Petition gegen "
    "die Schließung unterschrieben hatten. Die Stadträte sagten, das Gebäude brauche vor dem "
    "Winter eine neue Heizung, und Freiwillige hätten angeboten, den Lesesaal am Wochenende zu "
    "betreuen."
)


@pytest.fixture(scope="module")
def identifier():
    return load_language_identifier()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Malcolm Owen Monday", "Malcolm Owen"),
        ("November", None),
        ("JERUSALEM POST STAFF NOVEMBER", "JERUSALEM POST"),
        ("Carrie Arnold November", "Carrie Arnold"),
        ("Phil Helsel is a reporter", "Phil Helsel"),
        ("Staff writer", None),
        ("AP National Political Writer", None),
        ("Art Edwards says", "Art Edwards"),
        ("Analysis by Chris Cillizza", "Chris Cillizza"),
        ("Detroit News wire services Published", "Detroit News wire services"),
        ("Tom Smith 12.03.2024", "Tom Smith"),
        ("Unknown", None),
        # names that look like calendar words stay
        ("Theresa May", "Theresa May"),
        ("Jan Kupitz", "Jan Kupitz"),
        ("April Ryan", "April Ryan"),
        ("Le Monde", "Le Monde"),
        ("Par AFP publié le", "AFP"),
    ],
)
def test_clean_author(value, expected):
    assert clean_author(value) == expected


def test_author_names_drop_empty_and_repeated_entries():
    assert author_names(
        ["Mike Wuerthele", "Malcolm Owen Monday", "November", "mike wuerthele"]
    ) == (
        "Mike Wuerthele",
        "Malcolm Owen",
    )


def test_labels_are_split_trimmed_and_deduplicated_in_order():
    assert split_labels("water, nasa;europa ,  Water,,") == ("water", "nasa", "europa")
    assert split_labels(["a, b", "c; a"]) == ("a", "b", "c")
    assert split_labels(None) == ()
    assert merge_labels(("uk", "news"), ("News", "storm")) == ("uk", "news", "storm")


def test_a_confident_text_language_replaces_the_declared_one(identifier):
    options = NormalizeOptions()
    assert choose_language("en", GERMAN, identifier, options) == "de"
    assert choose_language(None, GERMAN, identifier, options) == "de"
    # 1.0 never overrides; a short text is not evidence enough
    assert (
        choose_language(
            "en", GERMAN, identifier, NormalizeOptions(override_language_confidence=1.0)
        )
        == "en"
    )
    assert choose_language("en", "Guten Tag", identifier, options) == "en"


def test_german_page_that_says_lang_en_is_german(identifier):
    html = f'<html lang="en"><head><title>Bibliothek</title></head><body><article><p>{GERMAN}</p><p>{GERMAN}</p></article></body></html>'
    article = extract(RawDocument("p.html", SOURCE_HTML, html.encode("utf-8")))
    assert isinstance(article, Article) and article.language == "en"
    assert normalize_article(article, identifier).language == "de"


def test_keywords_of_a_page_become_a_list():
    html = (
        '<html><head><meta name="keywords" content="water, nasa, europa; moon"></head><body>'
        f"<article><p>{GERMAN}</p></article></body></html>"
    )
    article = extract(RawDocument("p.html", SOURCE_HTML, html.encode("utf-8")))
    assert isinstance(article, Article)
    assert article.tags == ("water", "nasa", "europa", "moon")


def dev_page(name: str) -> Article:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"dev-set page not found: {path}")
    (raw,) = read_path(str(path))
    article = extract(raw)
    assert isinstance(article, Article)
    return article


@pytest.mark.parametrize(
    ("name", "authors"),
    [
        (
            "article-extraction/html/65bf3048b500bbd84928d9122f99617ca898216b91add1d8b2ac09c670484a5c.html.gz",
            ("Mike Wuerthele", "Malcolm Owen"),
        ),
        (
            "article-extraction/html/e372e42c0a3df7b86e1c0bacf7bc14d042144a01e88833bc5a643d61b3547090.html.gz",
            ("JERUSALEM POST",),
        ),
        (
            "article-extraction/html/bdb56ac83513635db1d8b9eb46b2da4c0de8da2f1f28f5bf5163df3eb3d3ec06.html.gz",
            ("Carrie Arnold",),
        ),
        ("date-eval/html/1572542522.html.gz", ()),
    ],
)
def test_real_bylines_are_names(name, authors):
    assert dev_page(name).authors == authors


def test_real_keywords_are_split():
    article = dev_page(
        "article-extraction/html/14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f.html.gz"
    )
    assert article.tags[:4] == ("water", "nasa", "europa", "vapor")
    assert not any("," in t for t in article.tags)
