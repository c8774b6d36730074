"""Throughput of the input side: WARC reading, feed parsing, fetching from a local server.

Synthetic data made here; no network. Prints a table; not a test.

    python benchmarks/bench_sources.py [--records 2000] [--items 1000] [--pages 300]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from news_ingest.transforms.feeds import parse_feed  # noqa: E402
from news_ingest.transforms.sources import read_warc  # noqa: E402
from news_ingest.transforms.web.http import Fetcher, FetchPolicy  # noqa: E402
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

from tests.localhttp import html_reply, serving  # noqa: E402


def page(i: int) -> bytes:
    paragraphs = "".join(
        f"<p>Story {i}, paragraph {j}: the council voted on the harbour budget today.</p>"
        for j in range(60)
    )
    return f"<html><head><title>Story {i}</title></head><body>{paragraphs}</body></html>".encode()


def bench_warc(records: int, tmp: str) -> tuple[str, int, float, float]:
    path = os.path.join(tmp, "bench.warc.gz")
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for i in range(records):
            http = StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
            )
            writer.write_record(
                writer.create_warc_record(
                    f"https://news.example/{i}",
                    "response",
                    payload=io.BytesIO(page(i)),
                    http_headers=http,
                )
            )
    t0 = time.perf_counter()
    docs = sum(1 for _ in read_warc(path))
    seconds = time.perf_counter() - t0
    return "read_warc (.warc.gz)", docs, seconds, os.path.getsize(path) / 1e6 / seconds


def rss(items: int) -> bytes:
    body = "".join(
        f"<item><title>Item {i}</title><link>https://news.example/{i}</link><guid>g{i}</guid>"
        f"<pubDate>Sun, 22 Nov 2026 06:00:00 GMT</pubDate><category>C{i % 7}</category>"
        f"<description>&lt;p&gt;Summary of item {i}.&lt;/p&gt;</description></item>"
        for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>{body}</channel></rss>'.encode()


def json_feed(items: int) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {
                    "id": str(i),
                    "url": f"https://news.example/{i}",
                    "title": f"Item {i}",
                    "summary": f"Summary {i}",
                    "date_published": "2026-11-22T06:00:00Z",
                }
                for i in range(items)
            ],
        }
    ).encode()


def bench_feed(name: str, content: bytes) -> tuple[str, int, float, float]:
    t0 = time.perf_counter()
    n = len(parse_feed(content, "https://news.example/feed").entries)
    seconds = time.perf_counter() - t0
    return name, n, seconds, len(content) / 1e6 / seconds


def bench_fetch(pages: int) -> tuple[str, int, float, float]:
    with serving() as server:
        body = page(0).decode()
        for i in range(pages):
            server.routes[f"/p{i}"] = html_reply(body)
        fetcher = Fetcher(
            FetchPolicy(min_delay_s=0.0, respect_robots=False, allow_networks=("127.0.0.1/32",))
        )
        t0 = time.perf_counter()
        total = sum(len(fetcher.fetch(server.url(f"/p{i}")).content) for i in range(pages))
        seconds = time.perf_counter() - t0
        fetcher.close()
    return "Fetcher.fetch (127.0.0.1, keep-alive)", pages, seconds, total / 1e6 / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--pages", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            bench_warc(args.records, tmp),
            bench_feed(f"parse_feed RSS 2.0 ({args.items} items)", rss(args.items)),
            bench_feed(f"parse_feed JSON Feed ({args.items} items)", json_feed(args.items)),
            bench_fetch(args.pages),
        ]
    print(f"{'what':<42} {'items':>7} {'seconds':>8} {'items/s':>9} {'MB/s':>7}")
    for name, n, seconds, mbps in rows:
        print(f"{name:<42} {n:>7} {seconds:>8.3f} {n / seconds:>9.0f} {mbps:>7.1f}")


if __name__ == "__main__":
    main()
