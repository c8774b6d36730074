"""Deduplication (foundation version: same canonical URL, same content hash).

The decision logic is pure (``keeper_key``, ``pick_keeper``) so batch and streaming graphs share
it; the Beam wrapper groups by a key and splits each group into one kept article and duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from transforms.schema import DEDUP_EXACT, DEDUP_URL, Article, Duplicate

STAGE = "dedup"
DUPLICATES = "duplicates"
KEPT = "kept"

_FAR_FUTURE = 2**62


def metadata_score(article: Article) -> int:
    """How many metadata fields an article has filled."""
    fields = (
        article.title,
        article.published_at,
        article.dateline,
        article.publisher,
        article.distributor,
        article.language,
        article.url,
    )
    return sum(1 for f in fields if f) + len(article.authors) + len(article.credits)


def keeper_key(article: Article) -> tuple[Any, ...]:
    """Sort key of the keeper rule: earliest ``published_at`` (unknown last), then more text,
    then more metadata, then the smallest ``article_id``. Independent of input order."""
    published = article.published_at.timestamp() if article.published_at else _FAR_FUTURE
    return (published, -article.word_count, -metadata_score(article), article.article_id,
            article.source_ref)


def pick_keeper(articles: Iterable[Article], kind: str) -> tuple[Article, list[Duplicate]]:
    """Split a group of copies into the kept article and the duplicates of it."""
    ordered = sorted(articles, key=keeper_key)
    kept = ordered[0]
    return kept, [Duplicate(a, kept.article_id, kind, 1.0) for a in ordered[1:]]


def url_key(article: Article) -> str:
    """Group key for URL dedup: the canonical URL, or the article itself when it has none."""
    return f"url:{article.canonical_url}" if article.canonical_url else f"id:{article.article_id}"


def hash_key(article: Article) -> str:
    return f"hash:{article.content_hash}"


class _PickKeeper(beam.DoFn):
    def __init__(self, kind: str):
        self.kind = kind
        self.dropped = Metrics.counter(STAGE, f"duplicates:{kind}")

    def process(self, keyed: tuple[str, Iterable[Article]]) -> Iterable[Any]:
        kept, dups = pick_keeper(keyed[1], self.kind)
        yield kept
        for dup in dups:
            self.dropped.inc()
            yield pvalue.TaggedOutput(DUPLICATES, dup)


class _DedupBy(beam.PTransform):
    def __init__(self, key_fn: Any, kind: str):
        super().__init__()
        self.key_fn = key_fn
        self.kind = kind

    def expand(self, articles):  # type: ignore[no-untyped-def]
        out = (
            articles
            | "Key" >> beam.Map(lambda a, f=self.key_fn: (f(a), a))
            | "Group" >> beam.GroupByKey()
            | "PickKeeper" >> beam.ParDo(_PickKeeper(self.kind)).with_outputs(DUPLICATES, main=KEPT)
        )
        return out[KEPT], out[DUPLICATES]


class Deduplicate(beam.PTransform):
    """Article -> (kept Article, Duplicate): same canonical URL, then same content hash."""

    def expand(self, articles):  # type: ignore[no-untyped-def]
        by_url, url_dups = articles | "SameURL" >> _DedupBy(url_key, DEDUP_URL)
        kept, hash_dups = by_url | "SameText" >> _DedupBy(hash_key, DEDUP_EXACT)
        dups = (url_dups, hash_dups) | "MergeDuplicates" >> beam.Flatten()
        return kept, dups
