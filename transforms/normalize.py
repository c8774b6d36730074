"""Normalization: the derived metadata of a cleaned article (counts, hashes, canonical URL)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable

import apache_beam as beam

from transforms.schema import Article, DeadLetter
from transforms.stage import ApplyStage

STAGE = "normalize"

_WORD = re.compile(r"\w+", re.UNICODE)


def word_count(text: str) -> int:
    return len(text.split())


def content_hash(text: str) -> str:
    """Hash of the text with case, punctuation and spacing folded: equal words, equal hash."""
    words = _WORD.findall(text.casefold())
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()


def normalize_article(article: Article) -> Article:
    """Fill the derived fields of an article."""
    return dataclasses.replace(
        article,
        word_count=word_count(article.text),
        content_hash=content_hash(article.text),
        canonical_url=article.canonical_url or article.url,
    )


class _Normalize(beam.DoFn):
    def process(self, article: Article) -> Iterable[Article | DeadLetter]:
        yield normalize_article(article)


class Normalize(beam.PTransform):
    """Article -> (normalized Article, DeadLetter)."""

    def expand(self, articles):  # type: ignore[no-untyped-def]
        return articles | "NormalizeMetadata" >> ApplyStage(STAGE, _Normalize())
