"""Normalization: the derived metadata of a cleaned article.

Language (ISO 639-1, identified with py3langid), word count, content hash over the normalized
text, canonical URL, ``published_at`` in UTC, and tidy metadata strings (NFC, single spaces).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, Protocol

import apache_beam as beam

from transforms.fetch import canonicalize_url
from transforms.schema import UTC, Article, DeadLetter
from transforms.stage import ApplyStage

STAGE = "normalize"

DEFAULT_MIN_LANGUAGE_CONFIDENCE = 0.5
# Fewer words than this give no trustworthy language (a byline, a caption).
MIN_LANGUAGE_WORDS = 3
# py3langid also knows varieties without an ISO 639-1 code; these belong to a macrolanguage
# that has one. Any other three-letter label (e.g. "zxx", no linguistic content) yields None.
_MACROLANGUAGE = {"arz": "ar", "ary": "ar", "yue": "zh", "wuu": "zh", "uzs": "uz", "gug": "gn"}

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


class LanguageIdentifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


def load_language_identifier() -> LanguageIdentifier:
    """py3langid's bundled model with normalized probabilities (about 0.6 s to load)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier: LanguageIdentifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return identifier


def word_count(text: str) -> int:
    return len(text.split())


def content_hash(text: str) -> str:
    """Hash of the text with case, punctuation and spacing folded: equal words, equal hash."""
    words = _WORD.findall(unicodedata.normalize("NFC", text).casefold())
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()


def identify_language(
    text: str,
    identifier: LanguageIdentifier,
    min_confidence: float = DEFAULT_MIN_LANGUAGE_CONFIDENCE,
) -> str | None:
    """ISO 639-1 code of ``text``, or None when the text is too short or the model unsure."""
    if len(text.split()) < MIN_LANGUAGE_WORDS:
        return None
    label, probability = identifier.classify(text)
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


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp in UTC; a naive one is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_article(
    article: Article,
    identifier: LanguageIdentifier | None = None,
    min_confidence: float = DEFAULT_MIN_LANGUAGE_CONFIDENCE,
) -> Article:
    """Fill the derived fields of an article; a language already set is kept."""
    language = article.language
    if language is None and identifier is not None:
        language = identify_language(article.text, identifier, min_confidence)
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
        published_at=as_utc(article.published_at),
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


@dataclasses.dataclass(frozen=True)
class NormalizeOptions:
    """The ``normalize:`` section of the config itself.

    Attributes:
        min_language_confidence: below this probability of the language model the language is
            left null.
    """

    min_language_confidence: float = DEFAULT_MIN_LANGUAGE_CONFIDENCE

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_language_confidence <= 1.0:
            raise ValueError(
                f"min_language_confidence must be in [0, 1], got {self.min_language_confidence}"
            )


class _Normalize(beam.DoFn):
    def __init__(self, min_confidence: float):
        self.min_confidence = min_confidence
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        self.identifier = load_language_identifier()

    def process(self, article: Article) -> Iterable[Article | DeadLetter]:
        yield normalize_article(article, self.identifier, self.min_confidence)


class Normalize(beam.PTransform):
    """Article -> (normalized Article, DeadLetter).

    Args:
        options: the ``normalize:`` section.
    """

    def __init__(self, options: NormalizeOptions | None = None):
        super().__init__()
        self.options = options or NormalizeOptions()

    def expand(self, articles):  # type: ignore[no-untyped-def]
        dofn = _Normalize(self.options.min_language_confidence)
        return articles | "NormalizeMetadata" >> ApplyStage(STAGE, dofn)
