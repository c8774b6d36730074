"""Normalization: the derived metadata of a cleaned article.

Language (ISO 639-1, identified with py3langid; the text's own when a confident guess
disagrees with the declared one), word count, content hash over the normalized text, canonical
URL, ``published_at`` in UTC with the source's offset and precision beside it, and tidy
metadata strings (NFC, single spaces).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Protocol

import apache_beam as beam
from news_ingest.transforms.dates import article_fields, from_fields
from news_ingest.transforms.schema import Article, DeadLetter
from news_ingest.transforms.stage import ApplyStage
from news_ingest.transforms.text import word_count, words
from news_ingest.transforms.web.urls import canonicalize_url

STAGE = "normalize"

DEFAULT_MIN_LANGUAGE_CONFIDENCE = 0.5
DEFAULT_OVERRIDE_LANGUAGE_CONFIDENCE = 0.95
# Fewer words than this give no trustworthy language (a byline, a caption).
MIN_LANGUAGE_WORDS = 3
# The language is guessed from the text's first characters: the model's cost is linear in the
# text (0.5 s for a 10 MB text) and 100,000 characters are ~15,000 words, far past certainty.
LANGUAGE_SAMPLE_CHARS = 100_000
# py3langid also knows varieties without an ISO 639-1 code; these belong to a macrolanguage
# that has one. Any other three-letter label (e.g. "zxx", no linguistic content) yields None.
_MACROLANGUAGE = {"arz": "ar", "ary": "ar", "yue": "zh", "wuu": "zh", "uzs": "uz", "gug": "gn"}

_SPACE = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class NormalizeOptions:
    """How metadata is derived (the ``normalize:`` section of the config).

    Attributes:
        min_language_confidence: below this probability of the text-based guess, an article
            without a language keeps none.
        override_language_confidence: a text-based guess at least this sure replaces a
            different language the page or feed declared (``<html lang="en">`` on a German
            article); 1.0 never overrides. Measured on the dev sets (README, "Cleaning, rule
            packs and metadata").
    """

    min_language_confidence: float = DEFAULT_MIN_LANGUAGE_CONFIDENCE
    override_language_confidence: float = DEFAULT_OVERRIDE_LANGUAGE_CONFIDENCE

    def __post_init__(self) -> None:
        for name in ("min_language_confidence", "override_language_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


class LanguageIdentifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


def load_language_identifier() -> LanguageIdentifier:
    """py3langid's bundled model with normalized probabilities (about 0.6 s to load)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier: LanguageIdentifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return identifier


def content_hash(text: str) -> str:
    """Hash of the text with case, punctuation and spacing folded: equal words, equal hash."""
    tokens = words(unicodedata.normalize("NFC", text))
    return hashlib.blake2b(" ".join(tokens).encode("utf-8"), digest_size=16).hexdigest()


def identify_language(
    text: str,
    identifier: LanguageIdentifier,
    min_confidence: float = DEFAULT_MIN_LANGUAGE_CONFIDENCE,
) -> str | None:
    """ISO 639-1 code of ``text``, or None when the text is too short or the model unsure."""
    if word_count(text) < MIN_LANGUAGE_WORDS:
        return None
    label, probability = identifier.classify(text[:LANGUAGE_SAMPLE_CHARS])
    if probability < min_confidence:
        return None
    label = _MACROLANGUAGE.get(label, label)
    return label if len(label) == 2 else None


def tidy(value: str | None) -> str | None:
    """A metadata string in NFC with single spaces; None when nothing is left."""
    if value is None:
        return None
    value = _SPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()
    return value or None


def choose_language(
    declared: str | None,
    text: str,
    identifier: LanguageIdentifier | None,
    options: NormalizeOptions,
) -> str | None:
    """The article's language: the text's when the declared one is missing (and the guess is
    at least ``min_language_confidence`` sure) or differs from a guess at least
    ``override_language_confidence`` sure; else the declared one."""
    if identifier is None:
        return declared
    if declared is None:
        return identify_language(text, identifier, options.min_language_confidence)
    if options.override_language_confidence >= 1.0:
        return declared
    guess = identify_language(text, identifier, options.override_language_confidence)
    return guess if guess is not None and guess != declared else declared


def normalize_article(
    article: Article,
    identifier: LanguageIdentifier | None = None,
    options: NormalizeOptions | None = None,
) -> Article:
    """Fill the derived fields of an article (see ``choose_language`` for the language)."""
    opts = options or NormalizeOptions()
    language = choose_language(article.language, article.text, identifier, opts)
    published = from_fields(
        article.published_at, article.published_offset_min, article.published_precision
    )
    strings: dict[str, Any] = {
        name: tidy(getattr(article, name))
        for name in ("title", "section", "dateline", "publisher", "distributor", "site_name")
    }
    return dataclasses.replace(
        article,
        **strings,
        credits=tuple(c for c in (tidy(c) for c in article.credits) if c),
        authors=tuple(a for a in (tidy(a) for a in article.authors) if a),
        language=language,
        **article_fields(published),
        word_count=word_count(article.text),
        content_hash=content_hash(article.text),
        canonical_url=canonical_url_of(article),
    )


def canonical_url_of(article: Article) -> str | None:
    """The page's ``<link rel=canonical>`` (or, without one, the article URL) canonicalized:
    tracking parameters and fragment removed, host lower-cased. A URL that cannot be
    canonicalized (not http(s)) is kept as found."""
    found = article.canonical_url or article.url
    return canonicalize_url(found) or found


class _Normalize(beam.DoFn):
    def __init__(self, options: NormalizeOptions):
        self.options = options
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        self.identifier = load_language_identifier()

    def process(self, article: Article) -> Iterable[Article | DeadLetter]:
        yield normalize_article(article, self.identifier, self.options)


class Normalize(beam.PTransform):
    """Article -> (normalized Article, DeadLetter).

    Args:
        options: how the language and the other derived fields are chosen.
    """

    def __init__(self, options: NormalizeOptions | None = None):
        super().__init__()
        self.options = options or NormalizeOptions()

    def expand(self, articles):  # type: ignore[no-untyped-def]
        dofn = _Normalize(self.options)
        return articles | "NormalizeMetadata" >> ApplyStage(STAGE, dofn)
