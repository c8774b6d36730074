"""ApplyStage: rejections and exceptions both become dead letters; records pass; counters count."""

from __future__ import annotations

import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms.schema import Article
from news_ingest.transforms.stage import (
    MAX_MESSAGE,
    ApplyStage,
    StageError,
    dead_letter,
    describe,
    failure,
    rejection,
)


class _Judge(beam.DoFn):
    def process(self, article):
        if article.text == "boom":
            raise RuntimeError("kaboom")
        if article.text == "slow":
            time.sleep(5)
        if not article.text:
            yield rejection(article, "judge", "empty_text")
            return
        yield article


def _a(ref, text):
    return Article(article_id=ref, source_kind="text", source_ref=ref, text=text)


def test_apply_stage_routes_records_rejections_and_failures():
    p = TestPipeline()
    good, dead = (
        p
        | beam.Create([_a("ok", "fine"), _a("e", ""), _a("x", "boom")])
        | ApplyStage("judge", _Judge())
    )
    assert_that(good | "Ids" >> beam.Map(lambda a: a.article_id), equal_to(["ok"]), label="good")
    assert_that(
        dead | "Why" >> beam.Map(lambda d: (d.source_ref, d.stage, d.reason, d.error_type)),
        equal_to([("e", "judge", "empty_text", None), ("x", "judge", "exception", "RuntimeError")]),
        label="dead",
    )
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("judge"))["counters"]
    }
    assert counters["passed"] == 1
    assert counters["rejected"] == 1
    assert counters["failed"] == 1


def test_apply_stage_times_out_a_slow_element():
    with TestPipeline() as p:
        good, dead = (
            p
            | beam.Create([_a("s", "slow"), _a("ok", "fine")])
            | ApplyStage("judge", _Judge(), timeout=0.5)
        )
        assert_that(good | "Ids" >> beam.Map(lambda a: a.article_id), equal_to(["ok"]), label="g")
        assert_that(
            dead | "Why" >> beam.Map(lambda d: (d.source_ref, d.reason)),
            equal_to([("s", "timeout")]),
            label="d",
        )


def test_apply_stage_checks_arguments():
    with pytest.raises(ValueError):
        ApplyStage("", _Judge())
    with pytest.raises(ValueError):
        ApplyStage("x", _Judge(), timeout=0)


def test_failure_keeps_source_and_message():
    dead = failure("s", (_a("ref", "t"), (ValueError, "ValueError('bad')", None)))
    assert (dead.source_ref, dead.error_type, dead.reason) == ("ref", "ValueError", "exception")
    assert "bad" in dead.error_message
    assert describe("plain/path.txt")[0] == "plain/path.txt"


def test_a_stage_error_is_the_why_of_its_dead_letter():
    try:
        raise StageError("feeds", "bad_feed", "x" * (MAX_MESSAGE + 10))
    except ValueError as exc:  # a ValueError: callers that catch those keep catching it
        assert isinstance(exc, StageError)
        assert str(exc).startswith("bad_feed: xxx")
        dead = dead_letter(exc, "feed.xml", source_kind="feed", error_type=type(exc).__name__)
    assert (dead.stage, dead.reason, dead.source_ref, dead.source_kind, dead.error_type) == (
        "feeds",
        "bad_feed",
        "feed.xml",
        "feed",
        "StageError",
    )
    assert dead.error_message == "x" * MAX_MESSAGE
    assert (str(StageError("s", "why")), StageError("s", "why").message) == ("why", None)
    assert rejection(_a("ref", ""), "judge", "empty_text").error_message is None
