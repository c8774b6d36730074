"""Stateful streaming dedup and the seen-entry filter: TestStream and FnApiRunner tests."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window
from news_ingest.transforms.dedup import index_keys
from news_ingest.transforms.schema import Article
from news_ingest.transforms.stream.dedup import SeenFilter, StreamDedup, decide

T0 = 1_730_073_600  # 2024-10-28T00:00:00Z
STREAMING = ["--runner=BundleBasedDirectRunner", "--streaming"]
BATCH = ["--runner=FnApiRunner"]


def _article(article_id, url=None, text="same words here", words=3, published=None):
    return Article(
        article_id=article_id,
        source_kind="text",
        source_ref=f"ref-{article_id}",
        url=url,
        canonical_url=url,
        text=text,
        word_count=words,
        content_hash=f"h-{text}",
        published_at=published,
    )


def _split(p, stream, ttl_s=30 * 86400.0, **kwargs):
    kept, dups = p | stream | StreamDedup(ttl_s=ttl_s, **kwargs)
    return (
        kept | "KeptIds" >> beam.Map(lambda a: a.article_id),
        dups
        | "DupPairs" >> beam.Map(lambda d: (d.article.article_id, d.duplicate_of, d.dedup_kind)),
    )


def test_decide_keeps_the_first_copy_and_makes_later_ones_duplicates():
    kept, dups = decide(_article("a"), None, "exact")
    assert kept is not None and kept.article_id == "a" and dups == []
    kept, dups = decide(_article("b"), "a", "url")
    assert kept is None
    assert [(d.article.article_id, d.duplicate_of, d.dedup_kind, d.similarity) for d in dups] == [
        ("b", "a", "url", 1.0)
    ]


def test_duplicates_arriving_in_different_windows_keep_the_first_copy():
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(_article("x2", text="other"), T0 + 5)])
        .add_elements([window.TimestampedValue(_article("x0", words=5), T0 + 10)])
        .add_elements([window.TimestampedValue(_article("x1"), T0 + 20)])
        .advance_watermark_to(T0 + 400)  # the first 5-minute window closes
        .add_elements([window.TimestampedValue(_article("y1"), T0 + 450)])  # copy, window 2
        .add_elements([window.TimestampedValue(_article("z1", url="u1", text="t1"), T0 + 460)])
        .add_elements(
            [window.TimestampedValue(_article("z2", url="u1", text="t2"), T0 + 950)]
        )  # same URL, window 4
        .advance_watermark_to(T0 + 5000)
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=PipelineOptions(STREAMING)) as p:
        kept, dups = _split(p, stream)
        assert_that(kept, equal_to(["x0", "x2", "z1"]), label="kept")
        assert_that(
            dups,
            equal_to([("x1", "x0", "exact"), ("y1", "x0", "exact"), ("z2", "z1", "url")]),
            label="dups",
        )


def test_known_keys_from_earlier_runs_make_duplicates_and_counters_say_so():
    items = [
        window.TimestampedValue(_article("n1", url="u-new", text="new text"), T0 + 1),
        window.TimestampedValue(_article("n2", url="u-new", text="new text"), T0 + 2),
        window.TimestampedValue(_article("o1", url="u-old", text="old"), T0 + 3),
        window.TimestampedValue(_article("o2", text="seen before"), T0 + 4),
    ]
    known = {"url:u-old": "old-id", "hash:h-seen before": "older-id"}
    p = TestPipeline(options=PipelineOptions(BATCH))
    kept, dups = _split(p, beam.Create(items), known=known)
    assert_that(kept, equal_to(["n1"]), label="kept")
    assert_that(
        dups,
        equal_to([("n2", "n1", "url"), ("o1", "old-id", "url"), ("o2", "older-id", "exact")]),
        label="dups",
    )
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["duplicates:url"] == 2
    assert counters["duplicates:exact"] == 1
    assert counters["index_hits:url"] == 1
    assert counters["index_hits:exact"] == 1


def test_seen_filter_passes_each_key_once_and_counts():
    items = [window.TimestampedValue(x, T0 + i) for i, x in enumerate("abacbad")]
    p = TestPipeline(options=PipelineOptions(BATCH))
    out = p | beam.Create(items) | SeenFilter(lambda x: x, ttl_s=3600)
    assert_that(out, equal_to(["a", "b", "c", "d"]))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters == {"new": 4, "repeated": 3}


def test_seen_filter_forgets_after_the_ttl():
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue("a", T0)])
        .add_elements([window.TimestampedValue("a", T0 + 10)])
        .advance_watermark_to(T0 + 200)  # past the TTL of the first sighting
        .add_elements([window.TimestampedValue("a", T0 + 250)])
        .advance_watermark_to_infinity()
    )
    with TestPipeline(options=PipelineOptions(STREAMING)) as p:
        out = p | stream | SeenFilter(lambda x: x, ttl_s=100)
        assert_that(
            out | beam.Map(lambda x, ts=beam.DoFn.TimestampParam: int(ts)), equal_to([T0, T0 + 250])
        )


def test_index_keys_and_argument_checks():
    assert index_keys(_article("a", url="u")) == ["url:u", "hash:h-same words here"]
    assert index_keys(_article("a")) == ["hash:h-same words here"]
    with pytest.raises(ValueError):
        StreamDedup(ttl_s=0)
    with pytest.raises(ValueError):
        SeenFilter(lambda x: x, ttl_s=0)


LONG = " ".join(f"word{i} of the wire story about the harbour" for i in range(60))


def _entry(article_id, text, params, run_id="earlier"):
    import datetime as dt

    from news_ingest.transforms.dedup import IndexEntry, MinHasher

    signature, count = MinHasher(params).signature(text)
    return IndexEntry(
        article_id=article_id,
        canonical_url=None,
        content_hash=f"h-{article_id}",
        published_at=None,
        word_count=len(text.split()),
        signature=signature,
        shingle_count=count,
        fingerprint=params.fingerprint,
        run_id=run_id,
        indexed_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )


def test_known_index_finds_near_copies_by_band_and_verifies_them():
    import datetime as dt

    from news_ingest.transforms.dedup import MinHasher, NearParams
    from news_ingest.transforms.stream.dedup import KnownIndex

    params = NearParams()
    entry = _entry("old", LONG, params)
    other = _entry("other", "an unrelated story about a museum wing " * 20, params)
    known = KnownIndex.of([entry, other], None, params)
    assert known.keys == {"hash:h-old": "old", "hash:h-other": "other"}
    near = LONG.replace("word30 ", "changed ")
    signature, count = MinHasher(params).signature(near)
    match = known.near_match(signature, count, params)
    assert match is not None and match[0] == "old" and 0.8 <= match[1] < 1.0
    fresh = MinHasher(params).signature("nothing like the others at all, a new story " * 10)
    assert known.near_match(*fresh, params) is None
    # Entries past the TTL are not looked up; nor are signatures of other MinHash parameters.
    later = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert KnownIndex.of([entry], later, params).near_match(signature, count, params) is None
    other_params = NearParams(seed=7)
    assert KnownIndex.of([entry], None, other_params).bands == {}


def test_stream_dedup_makes_a_near_copy_of_the_index_a_near_duplicate():
    from news_ingest.transforms.dedup import NearParams
    from news_ingest.transforms.stream.dedup import KnownIndex

    params = NearParams()
    entry = _entry("old", LONG, params)
    known = KnownIndex.of([entry], None, params)
    items = [
        window.TimestampedValue(_article("n1", text=LONG.replace("word30 ", "changed ")), T0),
        window.TimestampedValue(_article("n2", text="a story of its own " * 20), T0 + 1),
    ]
    p = TestPipeline(options=PipelineOptions(BATCH))
    kept, dups = _split(p, beam.Create(items), known=known, params=params)
    assert_that(kept, equal_to(["n2"]), label="kept")
    assert_that(dups, equal_to([("n1", "old", "near")]), label="dups")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["index_hits:near"] == 1
