"""Failing tests for bugs in stages owned by other branches (kept uncommitted; see the report).

Each test names the owner and what the contract says; when it passes, move its case into the
committed bad-input corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, read_table
from tests.fixtures.bad_inputs import ENGLISH, GERMAN, html_page, with_invalid_utf8
from transforms.clean import RuleSet, clean_article
from transforms.extract import decode_text, extract
from transforms.rulepack import load_pack
from transforms.schema import SOURCE_HTML, SOURCE_TEXT, DeadLetter, RawDocument
from transforms.sources import read_path

RULES = RuleSet(load_pack(str(ROOT / "configs" / "boilerplate.yaml")))

BOILERPLATE = (
    "Subscribe to our newsletter\nAccept all cookies\nAll rights reserved.\n"
    "Share on Facebook\nShare on Twitter\nSign up for our newsletter to get the latest news.\n"
)


def test_extract_decode_text_keeps_mostly_valid_utf8_as_utf8():
    # extract: two invalid sequences make decode_text hand the whole text to charset
    # detection, which picks cp1250: "Straßenbahn" becomes "StraĂźenbahn".
    text = decode_text(with_invalid_utf8(GERMAN))
    assert "Straßenbahn" in text and "Bürgermeister" in text


def test_extract_decode_text_reads_a_short_latin1_text_as_latin1():
    # extract: a one-sentence latin-1 text is detected as cp1250 ("après" -> "aprčs").
    sentence = "Le café a fermé après une longue grève des employés du quartier."
    assert decode_text(sentence.encode("latin-1")) == sentence


def test_extract_rejects_a_page_of_navigation_only():
    # extract: a page whose only text is its menu becomes an article "Home\nWorld\nSport".
    page = html_page(
        "<header><nav><ul><li><a href='/'>Home</a></li><li><a href='/world'>World</a></li>"
        "<li><a href='/sport'>Sport</a></li></ul></nav></header><main></main>"
        "<footer><p>© 2024 Example News. All rights reserved.</p></footer>"
    )
    raw = RawDocument(source_ref="nav.html", source_kind=SOURCE_HTML, content=page.encode())
    assert isinstance(extract(raw), DeadLetter)


def test_clean_rejects_boilerplate_only_text():
    # clean: the newsletter, copyright and share rules fire, but "Accept all cookies" is left,
    # so a page of boilerplate becomes the article "Accept all cookies".
    raw = RawDocument(source_ref="b.txt", source_kind=SOURCE_TEXT, content=BOILERPLATE.encode())
    assert isinstance(clean_article(extract(raw), RULES), DeadLetter)


def test_sources_reject_a_gz_that_is_not_gzip(tmp_path):
    # ingest (sources.read_capped): zlib.error is not caught, so a plain file named .gz is an
    # 'exception' dead letter instead of 'unreadable'.
    path = tmp_path / "plain.txt.gz"
    path.write_bytes(ENGLISH.encode())
    (dead,) = read_path(str(path))
    assert isinstance(dead, DeadLetter) and dead.reason == "unreadable"


def test_sources_do_not_hang_on_a_fifo(tmp_path):
    # ingest (sources.list_inputs/read_capped): a named pipe called *.txt is listed and
    # opened; the read blocks forever, so the whole run hangs. (A symlink to /dev/zero named
    # *.txt is read without a cap, since getsize() is 0: unbounded memory.)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text(ENGLISH)
    os.mkfifo(inputs / "pipe.txt")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--input",
            str(inputs),
            "--output",
            str(tmp_path / "o"),
        ],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0


def test_fetch_calls_a_refused_connection_a_connection_error(tmp_path):
    # ingest (fetch.Fetcher): urllib3's NewConnectionError subclasses ConnectTimeoutError, so
    # "Connection refused" on a closed port is reported with reason 'timeout'.
    import socket

    from tests.localhttp import serving
    from tests.reliability.test_faults import run_feed

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with serving() as server:
        code, out = run_feed(server, [f"http://127.0.0.1:{port}/gone.html"], tmp_path)
    (dead,) = read_table(out, "dead_letters").to_pylist()
    assert dead["reason"] == "connection_error", dead["error_message"]


def test_fetch_canonicalize_url_does_not_raise_on_a_broken_ipv6_host():
    # ingest (fetch.canonicalize_url): urlsplit raises ValueError("Invalid IPv6 URL") on
    # "http://[". It is called on feed links, WARC target URIs and <link rel=canonical>.
    from transforms.fetch import canonicalize_url

    assert canonicalize_url("http://[") is None


def test_a_warc_record_with_a_broken_url_does_not_lose_the_records_after_it(tmp_path):
    # ingest (sources.read_warc): the record "http://[broken" ends the reading of the file with
    # one bad_warc dead letter; the records after it are in no table (silently dropped).
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "three.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for uri in ["https://ok.example/a", "http://[broken", "https://ok.example/b"]:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            body = io.BytesIO(b"<html><body><p>Text of the page.</p></body></html>")
            writer.write_record(
                writer.create_warc_record(uri, "response", payload=body, http_headers=http)
            )
    results = list(read_path(str(path)))
    assert len(results) == 3
    assert [r.url for r in results if isinstance(r, RawDocument)] == [
        "https://ok.example/a",
        "https://ok.example/b",
    ]


def test_a_json_feed_item_with_a_broken_url_does_not_sink_the_feed():
    # ingest (feeds.parse_json_feed): an item url "http://[" raises ValueError out of
    # parse_feed, so the whole feed becomes one 'exception' dead letter and its good items are
    # in no table.
    from transforms.feeds import parse_feed

    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'{"url": "http://[", "id": "1"}, {"url": "https://ok.example/a", "id": "2"}]}'
    )
    parsed = parse_feed(doc, "f.json")
    assert [e.link for e in parsed.entries] == [None, "https://ok.example/a"]


def test_sources_cap_a_read_that_has_no_size(tmp_path):
    # ingest (sources.read_capped): the cap is checked against os.path.getsize(), which is 0
    # for a device or a pipe, then fh.read() reads without limit. A symlink to /dev/zero named
    # *.txt ends in MemoryError (here under a 1.5 GB address-space limit; without one, the OOM
    # killer). fh.read(max_bytes + 1) would cap it.
    link = tmp_path / "zero.txt"
    link.symlink_to("/dev/zero")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))\n"
        "from transforms.sources import read_path\n"
        f"(dead,) = read_path({str(link)!r}, max_bytes=1000)\n"
        "print(dead.reason)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "too_large", proc.stderr[-500:]


def test_three_identical_files_with_one_name_do_not_crash_the_run(tmp_path):
    # extract (article_id_for hashes the bytes and the BASE name) + dedup: copies of one file
    # under one name in three folders get one article_id; the two duplicates rows then share
    # it, the duplicates shard fails validation ("article_id is not unique") and the whole run
    # exits 1 with nothing committed. Mirrored dumps look exactly like this.
    from tests.conftest import SEEDS

    seed = sorted(SEEDS.glob("*.txt"))[0].read_bytes()
    for folder in ("a", "b", "c"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "same.txt").write_bytes(seed)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-300:]
    assert read_table(tmp_path / "out", "duplicates").num_rows == 2
