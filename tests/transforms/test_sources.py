"""Input listing and reading: kinds by extension, WARC files written here with warcio."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from transforms.schema import DeadLetter, RawDocument
from transforms.sources import FEED_LIST, InputError, kind_of, list_inputs, read_path

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
    assert first.hint("canonical_url") == "https://news.example/harbour"
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
