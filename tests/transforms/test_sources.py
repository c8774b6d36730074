"""Listing inputs and reading files into RawDocuments."""

from __future__ import annotations

import gzip

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.schema import DeadLetter, RawDocument
from transforms.sources import InputError, ReadSources, kind_of, list_inputs, read_capped, read_path


def test_kind_by_extension_longest_suffix_first():
    assert kind_of("a/b.txt") == "text"
    assert kind_of("a/b.HTML") == "html"
    assert kind_of("a/b.html.gz") == "html"
    assert kind_of("a/b.pdf") is None


def test_list_inputs_walks_directories_and_globs(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.txt", "sub/b.html", "sub/c.html.gz", "skip.pdf", ".hidden.txt"):
        (tmp_path / name).write_bytes(b"x")
    listed = list_inputs([str(tmp_path)])
    assert [p.split("/")[-1] for p in listed] == ["a.txt", "b.html", "c.html.gz"]
    assert list_inputs([str(tmp_path / "sub" / "*.html")]) == [str(tmp_path / "sub" / "b.html")]
    # the same file named twice is listed once
    assert len(list_inputs([str(tmp_path / "a.txt"), str(tmp_path)])) == 3


@pytest.mark.parametrize("spec", ["does/not/exist.txt", "nowhere/*.txt"])
def test_list_inputs_rejects_missing(spec):
    with pytest.raises(InputError, match="not found"):
        list_inputs([spec])


def test_list_inputs_rejects_a_directory_without_inputs(tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"x")
    with pytest.raises(InputError, match="no input files"):
        list_inputs([str(tmp_path)])


def test_read_capped_gunzips_and_caps(tmp_path):
    path = tmp_path / "a.html.gz"
    path.write_bytes(gzip.compress(b"a" * 1000))
    assert read_capped(str(path), 1000) == b"a" * 1000
    with pytest.raises(ValueError, match="exceeds"):
        read_capped(str(path), 999)


def test_truncated_gzip_becomes_a_dead_letter(tmp_path):
    path = tmp_path / "t.html.gz"
    path.write_bytes(gzip.compress(b"<p>hello</p>" * 100)[:-12])
    (dead,) = list(read_path(str(path)))
    assert isinstance(dead, DeadLetter)
    assert (dead.stage, dead.reason) == ("read", "unreadable")


def test_oversized_file_becomes_a_dead_letter(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 100)
    (dead,) = list(read_path(str(path), max_bytes=10))
    assert dead.reason == "too_large"


def test_read_sources_transform_splits_documents_and_dead_letters(tmp_path):
    good = tmp_path / "a.txt"
    good.write_bytes(b"hello world")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"y" * 50)
    with TestPipeline() as p:
        docs, dead = p | beam.Create([str(good), str(bad)]) | ReadSources(max_bytes=20)
        assert_that(
            docs | "Refs" >> beam.Map(lambda d: (d.source_ref, d.content)),
            equal_to([(str(good), b"hello world")]),
            label="docs",
        )
        assert_that(
            dead | "Reasons" >> beam.Map(lambda d: (d.source_ref, d.reason)),
            equal_to([(str(bad), "too_large")]),
            label="dead",
        )


def test_read_sources_checks_arguments_at_construction():
    with pytest.raises(ValueError):
        ReadSources(max_bytes=0)


def test_raw_document_hints():
    doc = RawDocument("r", "feed", b"", hints=(("title", "T"),))
    assert doc.hint("title") == "T"
    assert doc.hint("missing", "d") == "d"
