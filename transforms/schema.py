"""The one schema of news-ingest: record types and the explicit Arrow schemas beside them.

Two record types flow through the pipeline:

* ``RawDocument``: one input document as read by a source (bytes plus what the source knows
  about it: URL, feed entry fields, fetch time). It exists only before extraction.
* ``Article``: everything after extraction. Stages fill it in with ``dataclasses.replace``.

Every input document ends as exactly one row in one of three tables: ``articles``,
``duplicates`` (an ``Article`` row plus ``duplicate_of``, ``dedup_kind``, ``similarity``) or
``dead_letters`` (a ``DeadLetter``). The Arrow schemas below are the only definition of the
Parquet layout; a test checks they agree with the dataclasses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")

SCHEMA_VERSION = "1.1.0"

UTC = dt.UTC

# Dedup kinds (the values of ``duplicates.dedup_kind``).
DEDUP_URL = "url"
DEDUP_EXACT = "exact"
DEDUP_NEAR = "near"
DEDUP_KINDS = (DEDUP_URL, DEDUP_EXACT, DEDUP_NEAR)

# Source kinds (the values of ``source_kind``).
SOURCE_TEXT = "text"
SOURCE_HTML = "html"
SOURCE_FEED = "feed"
SOURCE_WARC = "warc"


def stable_id(*parts: str | None) -> str:
    """A 16-byte hex digest of the given parts: stable across runs, machines and workers."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update((part or "").encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def compact_pickle(cls: type[T]) -> type[T]:
    """Pickle a frozen dataclass as its field values alone (no field names, no state dict).

    For the small records the groupings carry (ids, staged refs, verdicts): Beam pickles each
    value of a grouping on its own, and on its local runner holds them decoded in memory, so
    the field names were a third of an id record's bytes. Every field must be an init field.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    assert all(f.init for f in fields), cls
    names = tuple(f.name for f in fields)

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return (cls, tuple(getattr(self, name) for name in names))

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@dataclasses.dataclass(frozen=True)
class RawDocument:
    """One input document before extraction."""

    source_ref: str
    source_kind: str
    content: bytes
    url: str | None = None
    fetched_at: dt.datetime | None = None
    content_type: str | None = None
    # Metadata a source already knows (feed entry fields, WARC headers): fallbacks for extraction.
    hints: tuple[tuple[str, Any], ...] = ()

    def hint(self, key: str, default: Any = None) -> Any:
        for k, v in self.hints:
            if k == key:
                return v
        return default


@dataclasses.dataclass(frozen=True)
class Article:
    """An article, filled in stage by stage. Field order is the Parquet column order."""

    article_id: str
    source_kind: str
    source_ref: str
    url: str | None = None
    canonical_url: str | None = None
    title: str | None = None
    section: str | None = None
    text: str = ""
    published_at: dt.datetime | None = None
    published_offset_min: int | None = None
    published_precision: str | None = None
    dateline: str | None = None
    publisher: str | None = None
    distributor: str | None = None
    authors: tuple[str, ...] = ()
    credits: tuple[str, ...] = ()
    language: str | None = None
    site_name: str | None = None
    image_url: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    word_count: int = 0
    content_hash: str | None = None
    story_id: str | None = None
    rules_fired: tuple[str, ...] = ()
    ingested_at: dt.datetime | None = None
    run_id: str = ""
    schema_version: str = SCHEMA_VERSION
    pipeline_version: str = ""


@dataclasses.dataclass(frozen=True)
class Duplicate:
    """An article judged a copy of a kept article."""

    article: Article
    duplicate_of: str
    dedup_kind: str
    similarity: float


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class StagedRef:
    """Where an article's row was staged: a staging file and the row's position in it."""

    path: str
    row: int


@compact_pickle
@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What a run decided for one staged article, without its text: kept (``duplicate_of``
    None) or a copy of ``duplicate_of``, and its story. The table writers apply verdicts to
    the staged rows (``news_ingest.transforms.split``)."""

    article_id: str
    source_ref: str
    staged: StagedRef
    story_id: str | None = None
    duplicate_of: str | None = None
    dedup_kind: str | None = None
    similarity: float = 1.0

    @property
    def story_key(self) -> str:
        """The key stories use for this article (``article_id:source_ref``)."""
        return f"{self.article_id}:{self.source_ref}"


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """An input or record that failed or was rejected, with the stage and the reason."""

    source_ref: str
    stage: str
    reason: str
    error_type: str | None = None
    error_message: str | None = None
    excerpt: str | None = None
    source_kind: str | None = None
    url: str | None = None
    run_id: str = ""
    ingested_at: dt.datetime | None = None

    @property
    def dead_letter_id(self) -> str:
        return stable_id(self.source_ref, self.url, self.stage, self.reason)


EXCERPT_CHARS = 500


def excerpt_of(value: bytes | str | None, limit: int = EXCERPT_CHARS) -> str | None:
    """A short, always-decodable excerpt of an input for a dead-letter row."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value[: limit * 4].decode("utf-8", "replace")
    value = value.replace("\x00", "\ufffd")
    return value[:limit]


def _field(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": doc})


_TS = pa.timestamp("us", tz="UTC")
_STRLIST = pa.list_(pa.string())

ARTICLE_FIELDS: list[pa.Field] = [
    _field(
        "article_id",
        pa.string(),
        "Stable id: hash of the canonical URL, else of the source and text.",
        False,
    ),
    _field(
        "source_kind",
        pa.string(),
        "text | html | feed | sitemap | url | warc: how the document entered the pipeline.",
        False,
    ),
    _field(
        "source_ref",
        pa.string(),
        "The input path, URL or WARC record the document came from.",
        False,
    ),
    _field("url", pa.string(), "The article URL as found (feed link, WARC target URI, page URL)."),
    _field(
        "canonical_url",
        pa.string(),
        "Canonicalized URL (tracking parameters and fragment removed).",
    ),
    _field("title", pa.string(), "Article title without a site or section suffix."),
    _field(
        "section",
        pa.string(),
        "Section or category suffix split off the title, e.g. 'International'.",
    ),
    _field(
        "text", pa.string(), "Cleaned article body, paragraphs separated by a blank line.", False
    ),
    _field(
        "published_at", _TS, "Publication time in UTC; null when the document gives no evidence."
    ),
    _field(
        "published_offset_min",
        pa.int16(),
        "The source's UTC offset in minutes (published_at plus it is the source's local time);"
        " null when the source named no zone.",
    ),
    _field(
        "published_precision",
        pa.string(),
        "day (the source gave only a date: published_at is midnight UTC) | second;"
        " null without a date.",
    ),
    _field("dateline", pa.string(), "Place line that opens the article, e.g. 'BRUSSELS'."),
    _field("publisher", pa.string(), "Outlet that wrote the article (e.g. Ukrinform)."),
    _field("distributor", pa.string(), "Outlet or agency that distributed it (e.g. MENAFN)."),
    _field("authors", _STRLIST, "Author names.", False),
    _field(
        "credits", _STRLIST, "Photo, video and mandatory-credit lines moved out of the text.", False
    ),
    _field("language", pa.string(), "ISO 639-1 language code of the text."),
    _field("site_name", pa.string(), "Site name from page metadata."),
    _field("image_url", pa.string(), "Lead image URL from page or feed metadata."),
    _field("categories", _STRLIST, "Categories from page or feed metadata.", False),
    _field("tags", _STRLIST, "Tags from page or feed metadata.", False),
    _field(
        "word_count",
        pa.int32(),
        "Number of words in text; characters in scripts without spaces (Chinese, Japanese, Thai).",
        False,
    ),
    _field("content_hash", pa.string(), "Hash of the normalized text: equal text, equal hash."),
    _field("story_id", pa.string(), "Id shared by articles about the same event."),
    _field("rules_fired", _STRLIST, "Names of the cleaning rules that changed this text.", False),
    _field("ingested_at", _TS, "Start time of the run that ingested the article (UTC).", False),
    _field("run_id", pa.string(), "Id of the run that wrote the row.", False),
    _field("schema_version", pa.string(), "Version of this schema.", False),
    _field("pipeline_version", pa.string(), "Version of news-ingest that wrote the row.", False),
]

DUPLICATE_EXTRA_FIELDS: list[pa.Field] = [
    _field("duplicate_of", pa.string(), "article_id of the kept article this row copies.", False),
    _field("dedup_kind", pa.string(), "url | exact | near: how the copy was recognised.", False),
    _field(
        "similarity",
        pa.float64(),
        "Estimated Jaccard similarity to the kept article (1.0 for url/exact).",
        False,
    ),
]

DEAD_LETTER_FIELDS: list[pa.Field] = [
    _field(
        "dead_letter_id",
        pa.string(),
        "Stable id of the failure: source, URL, stage and reason.",
        False,
    ),
    _field("source_ref", pa.string(), "The input path, URL or record that failed.", False),
    _field("source_kind", pa.string(), "Kind of the input, when known."),
    _field("url", pa.string(), "URL of the document, when known."),
    _field("stage", pa.string(), "Pipeline stage that rejected or failed on the record.", False),
    _field("reason", pa.string(), "Reason code, e.g. 'empty_text' or 'exception'.", False),
    _field("error_type", pa.string(), "Exception type, for failures."),
    _field("error_message", pa.string(), "Exception message or a human-readable explanation."),
    _field("excerpt", pa.string(), "First characters of the input, for diagnosis."),
    _field("ingested_at", _TS, "Start time of the run (UTC).", False),
    _field("run_id", pa.string(), "Id of the run that wrote the row.", False),
    _field("schema_version", pa.string(), "Version of this schema.", False),
]


def _schema(fields: list[pa.Field], table: str) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={"schema_version": SCHEMA_VERSION, "table": table, "producer": "news-ingest"},
    )


ARTICLES_SCHEMA = _schema(ARTICLE_FIELDS, "articles")
DUPLICATES_SCHEMA = _schema(ARTICLE_FIELDS + DUPLICATE_EXTRA_FIELDS, "duplicates")
DEAD_LETTERS_SCHEMA = _schema(DEAD_LETTER_FIELDS, "dead_letters")

TABLES = {
    "articles": ARTICLES_SCHEMA,
    "duplicates": DUPLICATES_SCHEMA,
    "dead_letters": DEAD_LETTERS_SCHEMA,
}

# The column that identifies a row of each table (unique within a run; merge key for loads).
ROW_ID = {"articles": "article_id", "duplicates": "article_id", "dead_letters": "dead_letter_id"}

# Tables whose ROW_ID is unique within a run (checked before a file is committed). A duplicates
# or dead-letters row is one input occurrence: the same page listed twice in a feed, or the same
# file under two folders, gives two rows with one id, and both must be kept for the accounting.
UNIQUE_ROW_ID = frozenset({"articles"})


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def article_row(article: Article) -> dict[str, Any]:
    """The Parquet row of an article (lists as lists, timestamps in UTC)."""
    row = dataclasses.asdict(article)
    for name in ("authors", "credits", "categories", "tags", "rules_fired"):
        row[name] = list(row[name])
    row["published_at"] = _as_utc(article.published_at)
    row["ingested_at"] = _as_utc(article.ingested_at)
    return row


def duplicate_row(dup: Duplicate) -> dict[str, Any]:
    row = article_row(dup.article)
    row["duplicate_of"] = dup.duplicate_of
    row["dedup_kind"] = dup.dedup_kind
    row["similarity"] = float(dup.similarity)
    return row


def dead_letter_row(dead: DeadLetter) -> dict[str, Any]:
    row = dataclasses.asdict(dead)
    row["dead_letter_id"] = dead.dead_letter_id
    row["ingested_at"] = _as_utc(dead.ingested_at)
    row["schema_version"] = SCHEMA_VERSION
    return row


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows to an Arrow table with exactly ``schema`` (never inferred)."""
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)
