"""Cleaning: turn extracted text into article text (foundation version: header and whitespace).

The rule packs of configs/ plug in here (see the cleaning issue); this module already owns the
seed header (`` date YYYY-MM-DD (DISTRIBUTOR- Publisher)``), which it moves into fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.schema import UTC, Article, DeadLetter
from transforms.stage import ApplyStage, rejection

STAGE = "clean"

_HEADER = re.compile(
    r"^\s*date\s+(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:\s+\((?P<distributor>[A-Z][\w.&' ]*?)\s*-\s*(?P<publisher>[^)]+?)\s*\))?[ \t]*"
)


@dataclasses.dataclass(frozen=True)
class Cleaned:
    """Cleaned text and what cleaning learned on the way."""

    text: str
    rules_fired: tuple[str, ...] = ()
    published_at: dt.datetime | None = None
    publisher: str | None = None
    distributor: str | None = None


def split_header(text: str) -> tuple[str, dict[str, str]]:
    """Remove a leading `` date YYYY-MM-DD (X- Y)`` header; return the rest and its fields."""
    match = _HEADER.match(text)
    if not match:
        return text, {}
    fields = {k: v for k, v in match.groupdict().items() if v}
    return text[match.end() :], fields


def normalize_whitespace(text: str) -> str:
    """NFC, unified line ends, no trailing spaces, paragraphs separated by one blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    paragraphs = [line for line in lines if line]
    return "\n\n".join(paragraphs)


def clean_text(text: str) -> Cleaned:
    """Clean one article text."""
    fired: list[str] = []
    rest, header = split_header(text)
    published_at = None
    if header:
        fired.append("date_header")
        published_at = dt.datetime.strptime(header["date"], "%Y-%m-%d").replace(tzinfo=UTC)
    cleaned = normalize_whitespace(rest)
    return Cleaned(
        text=cleaned,
        rules_fired=tuple(fired),
        published_at=published_at,
        publisher=header.get("publisher"),
        distributor=header.get("distributor"),
    )


def clean_article(article: Article, min_words: int = 1) -> Article | DeadLetter:
    """Apply ``clean_text`` to an article; reject it when too little text is left."""
    cleaned = clean_text(article.text)
    if len(cleaned.text.split()) < min_words:
        return rejection(article, STAGE, "empty_text", "no article text left after cleaning")
    return dataclasses.replace(
        article,
        text=cleaned.text,
        rules_fired=article.rules_fired + cleaned.rules_fired,
        published_at=article.published_at or cleaned.published_at,
        publisher=article.publisher or cleaned.publisher,
        distributor=article.distributor or cleaned.distributor,
    )


class _Clean(beam.DoFn):
    def __init__(self, min_words: int):
        self.min_words = min_words

    def process(self, article: Article) -> Iterable[Article | DeadLetter]:
        result = clean_article(article, self.min_words)
        if isinstance(result, Article):
            for rule in result.rules_fired:
                Metrics.counter(STAGE, f"rule:{rule}").inc()
        yield result


class Clean(beam.PTransform):
    """Article -> (cleaned Article, DeadLetter)."""

    def __init__(self, min_words: int = 1):
        super().__init__()
        if min_words < 1:
            raise ValueError(f"min_words must be at least 1, got {min_words}")
        self.min_words = min_words

    def expand(self, articles):  # type: ignore[no-untyped-def]
        return articles | "CleanText" >> ApplyStage(STAGE, _Clean(self.min_words))
