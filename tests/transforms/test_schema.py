"""The one schema: dataclasses and Arrow schemas agree; rows round-trip through Parquet."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from news_ingest.transforms import schema
from news_ingest.transforms.schema import (
    ARTICLES_SCHEMA,
    DEAD_LETTERS_SCHEMA,
    DUPLICATES_SCHEMA,
    Article,
    DeadLetter,
    Duplicate,
)

REQUIRED_ARTICLE_COLUMNS = {
    "article_id",
    "source_kind",
    "source_ref",
    "url",
    "canonical_url",
    "title",
    "text",
    "published_at",
    "published_offset_min",
    "published_precision",
    "dateline",
    "publisher",
    "distributor",
    "authors",
    "credits",
    "language",
    "word_count",
    "content_hash",
    "story_id",
    "rules_fired",
    "ingested_at",
    "run_id",
    "schema_version",
    "pipeline_version",
}


def test_article_dataclass_and_arrow_schema_agree_in_names_and_order():
    assert [f.name for f in dataclasses.fields(Article)] == ARTICLES_SCHEMA.names


def test_articles_schema_has_the_contract_columns():
    assert set(ARTICLES_SCHEMA.names) >= REQUIRED_ARTICLE_COLUMNS
    assert ARTICLES_SCHEMA.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert ARTICLES_SCHEMA.field("authors").type == pa.list_(pa.string())
    assert ARTICLES_SCHEMA.field("published_offset_min").type == pa.int16()
    assert ARTICLES_SCHEMA.field("published_precision").type == pa.string()
    assert ARTICLES_SCHEMA.metadata[b"schema_version"] == b"1.1.0"


def test_duplicates_schema_is_articles_plus_dedup_columns():
    assert DUPLICATES_SCHEMA.names == ARTICLES_SCHEMA.names + [
        "duplicate_of",
        "dedup_kind",
        "similarity",
    ]


def test_dead_letter_schema_covers_the_dataclass():
    names = {f.name for f in dataclasses.fields(DeadLetter)} | {"dead_letter_id", "schema_version"}
    assert names == set(DEAD_LETTERS_SCHEMA.names)


@pytest.mark.parametrize("table", ["articles", "duplicates", "dead_letters"])
def test_every_field_has_a_description(table):
    for field in schema.TABLES[table]:
        assert field.metadata and field.metadata[b"description"], field.name


def test_stable_id_depends_on_all_parts_and_their_boundaries():
    assert schema.stable_id("a", "b") == schema.stable_id("a", "b")
    assert schema.stable_id("ab", "") != schema.stable_id("a", "b")
    assert len(schema.stable_id("x")) == 32


def _article(**kw):
    base = dict(
        article_id="a1",
        source_kind="text",
        source_ref="seeds/x.txt",
        text="Some text.",
        published_at=dt.datetime(2024, 10, 28, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        published_offset_min=120,
        published_precision="second",
        authors=("A. Writer",),
        word_count=2,
        ingested_at=dt.datetime(2026, 1, 1, tzinfo=schema.UTC),
        run_id="r1",
        pipeline_version="0.1.0",
    )
    base.update(kw)
    return Article(**base)


def test_article_row_round_trips_through_parquet_with_utc(tmp_path):
    row = schema.article_row(_article())
    path = tmp_path / "a.parquet"
    pq.write_table(schema.to_table([row], ARTICLES_SCHEMA), path)
    back = pq.read_table(path).to_pylist()[0]
    assert back["published_at"] == dt.datetime(2024, 10, 28, 7, 30, tzinfo=dt.UTC)
    assert (back["published_offset_min"], back["published_precision"]) == (120, "second")
    assert back["authors"] == ["A. Writer"]
    assert pq.read_schema(path).field("text").metadata[b"description"]


def test_duplicate_row_carries_the_kept_id():
    row = schema.duplicate_row(Duplicate(_article(article_id="b"), "a1", schema.DEDUP_NEAR, 0.91))
    table = schema.to_table([row], DUPLICATES_SCHEMA)
    assert table.column("duplicate_of").to_pylist() == ["a1"]
    assert table.column("similarity").to_pylist() == [0.91]


def test_excerpt_is_bounded_and_decodable():
    assert schema.excerpt_of(b"\xff\x00abc" * 1000) is not None
    assert len(schema.excerpt_of("x" * 10_000)) == schema.EXCERPT_CHARS
    assert "\x00" not in schema.excerpt_of(b"a\x00b")
