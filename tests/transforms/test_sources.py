"""Input listing and reading: kinds by extension, WARC files written here with warcio."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from news_ingest.transforms.extract import extract
from news_ingest.transforms.schema import DeadLetter, RawDocument
from news_ingest.transforms.sources import (
    FEED_LIST,
    InputError,
    ReadOptions,
    ReadSources,
    kind_of,
    list_inputs,
    read_capped,
    read_path,
)
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ARTICLE = (
    "<html><head><title>Harbour reopens</title>"
    '<link rel="canonical" href="https://news.example/harbour?utm_campaign=x"></head>'
    "<body><p>The harbour reopened on Monday after the storm.</p></body></html>"
)


def record(writer: WARCWriter, uri: str, status: str, headers: list, body: bytes, date: str):
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    rec = writer.create_warc_record(
        uri,
        "response",
        payload=io.BytesIO(body),
        http_headers=http,
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(rec)


def write_warc(path: Path, gzipped: bool = True) -> None:
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        request = writer.create_warc_record(
            "https://news.example/harbour",
            "request",
            payload=io.BytesIO(b"GET /harbour HTTP/1.1\r\nHost: news.example\r\n\r\n"),
        )
        writer.write_record(request)
        record(
            writer,
            "https://news.example/harbour",
            "200 OK",
            [("Content-Type", "text/html; charset=windows-1252")],
            ARTICLE.replace("storm.", "storm. Caf\u00e9 owners cheered.").encode("cp1252"),
            "2026-11-20T08:15:00Z",
        )
        record(
            writer,
            "https://news.example/gzipped",
            "200 OK",
            [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
            gzip.compress(ARTICLE.replace("harbour", "bridge").encode()),
            "2026-11-20T09:00:00Z",
        )
        record(
            writer,
            "https://news.example/gone",
            "404 Not Found",
            [],
            b"gone",
            "2026-11-20T09:01:00Z",
        )
        record(
            writer,
            "https://news.example/logo.png",
            "200 OK",
            [("Content-Type", "image/png")],
            b"\x89PNG....",
            "2026-11-20T09:02:00Z",
        )


@pytest.mark.parametrize("gzipped", [True, False])
def test_warc_response_records_become_documents(tmp_path, gzipped):
    path = tmp_path / ("crawl.warc.gz" if gzipped else "crawl.warc")
    write_warc(path, gzipped)
    out = list(read_path(str(path)))
    docs = [d for d in out if isinstance(d, RawDocument)]
    dead = [d for d in out if isinstance(d, DeadLetter)]
    assert [d.url for d in docs] == ["https://news.example/harbour", "https://news.example/gzipped"]
    first, second = docs
    assert first.source_kind == "warc"
    assert first.fetched_at == dt.datetime(2026, 11, 20, 8, 15, tzinfo=dt.UTC)
    assert "Caf\u00e9 owners cheered." in first.content.decode("utf-8")
    # the page's canonical link (tracking parameter gone) is found by extraction
    assert extract(first).canonical_url == "https://news.example/harbour"
    assert b"The bridge reopened" in second.content
    assert first.source_ref.startswith(str(path) + "@") and first.source_ref != second.source_ref
    assert sorted((d.reason, d.url) for d in dead) == [
        ("http_404", "https://news.example/gone"),
        ("not_html", "https://news.example/logo.png"),
    ]


def test_a_broken_warc_keeps_what_was_read_and_reports_the_rest(tmp_path):
    path = tmp_path / "crawl.warc"
    write_warc(path, gzipped=False)
    data = path.read_bytes()
    end_of_second = data.index(b"WARC/1.0", data.index(b"https://news.example/gzipped"))
    # A record without a target URI: warcio raises on it.
    broken = b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 12\r\n\r\nHTTP/1.1 2\r\n\r\n"
    path.write_bytes(data[:end_of_second] + broken)
    out = list(read_path(str(path)))
    assert [d.url for d in out if isinstance(d, RawDocument)] == [
        "https://news.example/harbour",
        "https://news.example/gzipped",
    ]
    assert isinstance(out[-1], DeadLetter) and out[-1].reason == "bad_warc"
    # Cut inside a record's HTTP headers: that record is a dead letter.
    path.write_bytes(data[: data.index(b"HTTP/1.1 404") + 5])
    out = list(read_path(str(path)))
    assert [type(d).__name__ for d in out] == ["RawDocument", "RawDocument", "DeadLetter"]
    assert out[-1].reason == "bad_record" and out[-1].url == "https://news.example/gone"


def test_a_warc_record_over_the_cap_is_a_dead_letter(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path)
    out = list(read_path(str(path), max_bytes=100))
    reasons = sorted(d.reason for d in out if isinstance(d, DeadLetter))
    assert reasons == ["http_404", "not_html", "too_large", "too_large"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.warc.gz", "warc"),
        ("a.WARC", "warc"),
        ("feed.rss", "feed"),
        ("feed.atom", "feed"),
        ("feed.xml", "feed"),
        ("feed.json", "feed"),
        ("feeds.yaml", FEED_LIST),
        ("page.html.gz", "html"),
        ("notes.md", None),
    ],
)
def test_kind_of(name, kind):
    assert kind_of(name) == kind


def test_ambiguous_extensions_only_when_named(tmp_path):
    (tmp_path / "crawl.warc.gz").write_bytes(b"")
    (tmp_path / "feed.rss").write_bytes(b"")
    (tmp_path / "data.json").write_bytes(b"{}")
    (tmp_path / "sitemap.xml").write_bytes(b"<x/>")
    (tmp_path / "settings.yaml").write_text("a: 1")
    listed = {Path(p).name for p in list_inputs([str(tmp_path)])}
    assert listed == {"crawl.warc.gz", "feed.rss"}
    named = list_inputs([str(tmp_path / "data.json"), str(tmp_path / "settings.yaml")])
    assert {Path(p).name for p in named} == {"data.json", "settings.yaml"}
    with pytest.raises(InputError):
        list_inputs([str(tmp_path / "nothing-*.warc")])


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


def test_read_capped_reads_a_plain_file_whole_and_caps_a_device(tmp_path):
    path = tmp_path / "a.html"
    path.write_bytes(b"b" * 1000)
    assert read_capped(str(path), 1000) == b"b" * 1000
    # A device reports size 0: the cap alone bounds the read.
    with pytest.raises(ValueError, match="exceeds 64 bytes"):
        read_capped("/dev/zero", 64)


def test_read_capped_reads_on_when_the_file_grew_after_it_was_sized(tmp_path, monkeypatch):
    path = tmp_path / "a.html"
    path.write_bytes(b"c" * 1000)
    monkeypatch.setattr(os.path, "getsize", lambda _: 10)
    assert read_capped(str(path), 5000) == b"c" * 1000
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
        docs, dead = p | beam.Create([str(good), str(bad)]) | ReadSources(ReadOptions(max_bytes=20))
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


def test_read_options_check_their_values():
    with pytest.raises(ValueError):
        ReadOptions(max_bytes=0)


def test_raw_document_hints():
    doc = RawDocument("r", "feed", b"", hints=(("title", "T"),))
    assert doc.hint("title") == "T"
    assert doc.hint("missing", "d") == "d"


def test_a_fifo_in_an_input_folder_is_not_an_input(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "a.txt").write_bytes(b"x")
    assert [p.split("/")[-1] for p in list_inputs([str(tmp_path)])] == ["a.txt"]


def test_a_link_to_an_endless_device_is_capped(tmp_path):
    link = tmp_path / "zero.txt"
    link.symlink_to("/dev/zero")
    (dead,) = list(read_path(str(link), max_bytes=1000))
    assert (dead.stage, dead.reason) == ("read", "too_large")


def test_a_plain_file_named_gz_is_unreadable_not_an_exception(tmp_path):
    path = tmp_path / "plain.html.gz"
    path.write_bytes(b"<html>not gzip at all</html>")
    (dead,) = list(read_path(str(path)))
    assert (dead.stage, dead.reason) == ("read", "unreadable")


def test_one_warc_record_that_breaks_its_processing_does_not_end_the_file(tmp_path, monkeypatch):
    # A server's label "charset=base64" once raised LookupError in the charset ladder, which
    # ended the file as one bad_warc dead letter and lost the records after it.
    path = tmp_path / "crawl.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i, ctype in enumerate(["text/html", "text/html; charset=base64", "text/html"]):
            body = ARTICLE.replace("Monday", f"Monday ({i}), caf\u00e9 time").encode("cp1252")
            record(
                writer,
                f"https://news.example/{i}",
                "200 OK",
                [("Content-Type", ctype)],
                body,
                "2026-11-20T08:15:00Z",
            )
    docs = list(read_path(str(path)))
    assert [d.url for d in docs if isinstance(d, RawDocument)] == [
        f"https://news.example/{i}" for i in range(3)
    ]
    # and a record whose processing raises is its own dead letter; the next one still reads
    import news_ingest.transforms.web.charsets as charsets

    real = charsets.to_utf8

    def to_utf8(body, ctype):
        if b"(1)" in body:
            raise RuntimeError("a bug on this record only")
        return real(body, ctype)

    monkeypatch.setattr(charsets, "to_utf8", to_utf8)
    out = list(read_path(str(path)))
    assert [d.url for d in out if isinstance(d, RawDocument)] == [
        "https://news.example/0",
        "https://news.example/2",
    ]
    (dead,) = [d for d in out if isinstance(d, DeadLetter)]
    assert (dead.reason, dead.url) == ("exception", "https://news.example/1")
    assert dead.source_ref.startswith(str(path) + "@")
