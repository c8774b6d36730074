"""Inputs in object storage: a day of CC-NEWS on a real S3-compatible server on 127.0.0.1.

The WARC files are written here in CC-NEWS's layout (``crawl-data/CC-NEWS/YYYY/MM/
CC-NEWS-<timestamp>-<serial>.warc.gz``) and record shapes: a warcinfo record first, then a
request and a response record per page, each record its own gzip member.
"""

from __future__ import annotations

import gzip
import io
import uuid

import pytest
from news_ingest.pipeline import batch, config
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.conftest import read_table
from tests.objectstore import s3_server

DAY = "crawl-data/CC-NEWS/2024/10/CC-NEWS-20241028"
GLOB = f"s3://commoncrawl/{DAY}*.warc.gz"

STORIES = {
    "harbour": "The harbour bridge reopened on Monday after eleven weeks of repairs, and "
    "the first ferry crossed at dawn while the mayor thanked the crews who worked nights.",
    "museum": "The city museum opened a wing for maritime history, with a restored pilot "
    "boat, ship models and letters from sailors who crossed the Atlantic a century ago.",
    "orchard": "Growers in the valley picked a record apple harvest this autumn, helped by a "
    "wet spring, and cider makers said prices would fall for the first time in years.",
    "library": "The public library extended its opening hours to ten at night on weekdays "
    "after a petition signed by four thousand students who said they needed quiet rooms.",
}


def page(title: str, body: str) -> bytes:
    paragraphs = "".join(f"<p>{body} ({n})</p>" for n in range(3))
    return (
        f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article><footer>(c) Gazette</footer>"
        "</body></html>"
    ).encode()


def cc_news_warc(pages: list[tuple[str, str, bytes, str]]) -> bytes:
    """A CC-NEWS-shaped .warc.gz: warcinfo, then request + response per page (uri, status,
    body, content type), one gzip member per record."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    writer.write_record(
        writer.create_warcinfo_record(
            "CC-NEWS.warc.gz",
            {
                "software": "StormCrawler 2.10",
                "format": "WARC File Format 1.1",
                "isPartOf": "CC-NEWS",
            },
        )
    )
    for uri, status, body, ctype in pages:
        request = writer.create_warc_record(
            uri,
            "request",
            payload=io.BytesIO(f"GET / HTTP/1.1\r\nHost: {uri.split('/')[2]}\r\n\r\n".encode()),
            warc_headers_dict={"WARC-Date": "2024-10-28T06:01:02Z"},
        )
        http = StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")
        response = writer.create_warc_record(
            uri,
            "response",
            payload=io.BytesIO(body),
            http_headers=http,
            warc_headers_dict={
                "WARC-Date": "2024-10-28T06:01:03Z",
                "WARC-IP-Address": "192.0.2.1",
                "WARC-Concurrent-To": request.rec_headers.get_header("WARC-Record-ID"),
            },
        )
        writer.write_record(request)
        writer.write_record(response)
    return buf.getvalue()


@pytest.fixture(scope="module")
def cc_news():
    """The bucket ``commoncrawl`` with two WARC files of 2024-10-28 and one of the day before."""
    with s3_server() as s3:
        client = s3.client()
        client.create_bucket(Bucket="commoncrawl")
        names = list(STORIES)
        day = {
            f"{DAY}060102-00001.warc.gz": [
                (f"https://gazette.example/{n}", "200 OK", page(n.title(), STORIES[n]), "text/html")
                for n in names[:2]
            ]
            + [("https://gazette.example/gone", "404 Not Found", b"gone", "text/html")],
            f"{DAY}121314-00002.warc.gz": [
                (f"https://herald.example/{n}", "200 OK", page(n.title(), STORIES[n]), "text/html")
                for n in names[2:]
            ]
            + [("https://herald.example/logo.png", "200 OK", b"\x89PNG", "image/png")],
        }
        before = {
            "crawl-data/CC-NEWS/2024/10/CC-NEWS-20241027230000-00000.warc.gz": [
                ("https://old.example/x", "200 OK", page("Old", STORIES["harbour"]), "text/html")
            ]
        }
        for key, pages in {**day, **before}.items():
            client.put_object(Bucket="commoncrawl", Key=key, Body=cc_news_warc(pages))
        yield s3


def test_a_glob_over_a_bucket_lists_only_that_days_warcs(cc_news):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from news_ingest.transforms.sources import InputError, list_inputs

    FileSystems.set_options(PipelineOptions(cc_news.beam_args))
    listed = list_inputs([GLOB])
    assert listed == [
        f"s3://commoncrawl/{DAY}060102-00001.warc.gz",
        f"s3://commoncrawl/{DAY}121314-00002.warc.gz",
    ]
    # A prefix is a folder: every input under it, by extension.
    assert len(list_inputs(["s3://commoncrawl/crawl-data/CC-NEWS/2024/10/"])) == 3
    with pytest.raises(InputError, match="input not found"):
        list_inputs(["s3://commoncrawl/crawl-data/CC-NEWS/2024/11/*.warc.gz"])


def test_a_day_of_cc_news_from_a_bucket(cc_news, tmp_path):
    out = tmp_path / "out"
    cfg = config.load(overrides={"inputs": [GLOB], "output": {"path": str(out)}})
    result = batch.run(cfg, run_id=f"ccnews-{uuid.uuid4().hex[:6]}", beam_args=cc_news.beam_args)
    assert result.manifest["status"] == "succeeded", result.manifest
    articles = read_table(out, "articles").to_pylist()
    assert sorted(a["url"] for a in articles) == [
        "https://gazette.example/harbour",
        "https://gazette.example/museum",
        "https://herald.example/library",
        "https://herald.example/orchard",
    ]
    for article in articles:
        assert article["source_kind"] == "warc"
        assert article["source_ref"].startswith(f"s3://commoncrawl/{DAY}")
        name = article["url"].rsplit("/", 1)[-1]
        assert STORIES[name] in article["text"]
        assert "Home" not in article["text"]
    dead = read_table(out, "dead_letters").to_pylist()
    assert sorted((d["stage"], d["reason"], d["url"]) for d in dead) == [
        ("read", "http_404", "https://gazette.example/gone"),
        ("read", "not_html", "https://herald.example/logo.png"),
    ]
    assert all(d["source_ref"].startswith("s3://commoncrawl/") for d in dead)


def test_text_and_gzipped_html_objects_are_read_like_files(cc_news, tmp_path):
    client = cc_news.client()
    client.create_bucket(Bucket="landing")
    client.put_object(
        Bucket="landing",
        Key="in/harbour.html.gz",
        Body=gzip.compress(page("Harbour", STORIES["harbour"])),
    )
    client.put_object(Bucket="landing", Key="in/museum.txt", Body=STORIES["museum"].encode())
    client.put_object(Bucket="landing", Key="in/.hidden.txt", Body=b"not an input")
    out = tmp_path / "out"
    cfg = config.load(overrides={"inputs": ["s3://landing/in"], "output": {"path": str(out)}})
    result = batch.run(cfg, run_id="landing-1", beam_args=cc_news.beam_args)
    assert result.manifest["status"] == "succeeded", result.manifest
    articles = read_table(out, "articles").to_pylist()
    assert sorted(a["source_ref"] for a in articles) == [
        "s3://landing/in/harbour.html.gz",
        "s3://landing/in/museum.txt",
    ]
    assert any(STORIES["harbour"] in a["text"] for a in articles)
