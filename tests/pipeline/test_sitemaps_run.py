"""End to end: `news-ingest run --sitemap` and `--urls` against a local HTTP server.

A sitemap index lists a gzip'd Google News sitemap, a plain sitemap, a sitemap that declares
XML entities and a gzip bomb; the pages are fetched and read back from the Parquet.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_table, run_cli, run_main
from tests.localhttp import LocalServer, Reply, html_reply, serving

HARBOUR = "The harbour reopened on Monday after the storm had closed it for a week."
MUSEUM = "The city museum will open a new wing devoted to maritime history next spring."
BRIDGE = "Engineers began repairs on the old stone bridge that links the two river banks."


def page(title: str, sentence: str) -> str:
    """An article page with no date and no keywords of its own (the sitemap gives them)."""
    body = "".join(
        f"<p>{sentence} Paragraph {i} adds the detail that a reader of the story expects.</p>"
        for i in range(4)
    )
    return (
        f"<html lang='en'><head><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    )


def news_sitemap(base: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url>
    <loc>{base}/news/harbour.html</loc>
    <news:news>
      <news:publication><news:name>Harbour Gazette</news:name>
        <news:language>en</news:language></news:publication>
      <news:publication_date>2026-11-22T06:00:00+01:00</news:publication_date>
      <news:title>Harbour reopens after the storm</news:title>
      <news:keywords>harbour, storm, shipping</news:keywords>
    </news:news>
  </url>
  <url><loc>{base}/private/plans.html</loc></url>
</urlset>""".encode()


def plain_sitemap(base: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/news/museum.html</loc><lastmod>2026-11-21</lastmod></url>
  <url><loc>{base}/news/harbour.html</loc></url>
</urlset>""".encode()


ENTITIES = b"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&b;</loc></url></urlset>"""

MAX_BYTES = 200_000


def index(base: str) -> bytes:
    locs = ["/sitemap-news.xml.gz", "/sitemap-pages.xml", "/sitemap-evil.xml", "/bomb.xml.gz"]
    items = "".join(f"<sitemap><loc>{base}{loc}</loc></sitemap>" for loc in locs)
    return (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{items}</sitemapindex>"
    ).encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        xml = {"Content-Type": "application/xml"}
        local.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private/\n")
        local.routes["/sitemap_index.xml"] = Reply(body=index(local.base), headers=xml)
        # a .xml.gz file as such: gzip bytes without a Content-Encoding
        local.routes["/sitemap-news.xml.gz"] = Reply(
            body=gzip.compress(news_sitemap(local.base)),
            headers={"Content-Type": "application/gzip"},
        )
        local.routes["/sitemap-pages.xml"] = Reply(body=plain_sitemap(local.base), headers=xml)
        local.routes["/sitemap-evil.xml"] = Reply(body=ENTITIES, headers=xml)
        # 50 KB on the wire, 4 MB once gunzipped
        bomb = b"<urlset>" + b" " * (4 * 1024 * 1024) + b"</urlset>"
        local.routes["/bomb.xml.gz"] = Reply(
            body=gzip.compress(bomb), headers={"Content-Type": "application/gzip"}
        )
        local.routes["/news/harbour.html"] = html_reply(page("Harbour reopens", HARBOUR))
        local.routes["/news/museum.html"] = html_reply(page("Museum wing", MUSEUM))
        local.routes["/news/bridge.html"] = html_reply(page("Bridge repairs", BRIDGE))
        local.routes["/private/plans.html"] = html_reply(page("Secret plans", "Never fetched."))
        yield local


def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "fetch": {
                    "allow_networks": ["127.0.0.1/32"],
                    "min_delay_s": 0.0,
                    "retries": 0,
                    "max_bytes": MAX_BYTES,
                    "user_agent": "news-ingest-test/1.0",
                }
            }
        )
    )
    return cfg


def run(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out"
    proc = run_main("run", *args, "--config", str(config(tmp_path)), "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_sitemap_index_to_news_sitemap_pages(server: LocalServer, tmp_path: Path) -> None:
    out = run(tmp_path, "--sitemap", server.url("/sitemap_index.xml"))

    articles = {a["url"]: a for a in read_table(out, "articles").to_pylist()}
    assert set(articles) == {server.url("/news/harbour.html"), server.url("/news/museum.html")}
    harbour = articles[server.url("/news/harbour.html")]
    assert harbour["source_kind"] == "sitemap"
    # The page has no date, keywords or publisher: the news sitemap's are used.
    assert harbour["published_at"] == dt.datetime(2026, 11, 22, 5, 0, tzinfo=dt.UTC)
    assert harbour["tags"] == ["harbour", "storm", "shipping"]
    assert harbour["publisher"] == "Harbour Gazette"
    assert harbour["language"] == "en"
    assert HARBOUR in harbour["text"]
    # A plain sitemap gives no hints; lastmod is not a publication date.
    museum = articles[server.url("/news/museum.html")]
    assert museum["published_at"] is None and museum["tags"] == []
    assert MUSEUM in museum["text"]

    dead = read_table(out, "dead_letters").to_pylist()
    assert sorted((d["stage"], d["reason"], d["source_ref"]) for d in dead) == [
        ("fetch", "robots_disallowed", server.url("/private/plans.html")),
        ("sitemaps", "too_large", server.url("/bomb.xml.gz")),
        ("sitemaps", "xml_entities", server.url("/sitemap-evil.xml")),
    ]
    # harbour is listed twice (news and plain sitemap) and fetched once, as one article
    assert server.hits["/news/harbour.html"] == 1
    assert server.hits["/private/plans.html"] == 0
    assert "/news/bridge.html" not in server.hits


def test_sitemap_from_a_gzipped_file(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "news-sitemap.xml.gz"
    path.write_bytes(gzip.compress(news_sitemap(server.base)))
    out = run(tmp_path, "--sitemap", str(path))

    (harbour,) = read_table(out, "articles").to_pylist()
    assert harbour["url"] == server.url("/news/harbour.html")
    assert harbour["tags"] == ["harbour", "storm", "shipping"]
    assert harbour["published_at"] == dt.datetime(2026, 11, 22, 5, 0, tzinfo=dt.UTC)
    (dead,) = read_table(out, "dead_letters").to_pylist()
    assert (dead["stage"], dead["reason"]) == ("fetch", "robots_disallowed")
    assert "/sitemap_index.xml" not in server.hits


def test_url_list(server: LocalServer, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "# pages to ingest\n\n"
        f"{server.url('/news/bridge.html')}\n"
        f"  {server.url('/news/museum.html')}  \n"
        f"{server.url('/news/bridge.html')}\n"  # listed twice: one article
        f"{server.url('/missing.html')}\n"
        "ftp://files.example/page.html\n",
        encoding="utf-8",
    )
    out = run(tmp_path, "--urls", str(urls))

    articles = read_table(out, "articles").to_pylist()
    assert sorted(a["url"] for a in articles) == [
        server.url("/news/bridge.html"),
        server.url("/news/museum.html"),
    ]
    assert {a["source_kind"] for a in articles} == {"url"}
    dead = read_table(out, "dead_letters").to_pylist()
    assert sorted((d["reason"], d["url"]) for d in dead) == [
        ("blocked_scheme", "ftp://files.example/page.html"),
        ("http_404", server.url("/missing.html")),
    ]
    # only the listed pages: not the default seeds as well
    assert len(articles) + len(dead) == 4


def test_bad_discovery_settings_fail_at_start(tmp_path: Path) -> None:
    missing = run_cli("run", "--urls", str(tmp_path / "none.txt"), "--output", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert "discover.url_lists" in missing.stderr and "none.txt" in missing.stderr
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("discover:\n  max_urls: 0\n", encoding="utf-8")
    bad = run_cli("run", "--config", str(cfg), "--output", str(tmp_path / "o"))
    assert bad.returncode == 2
    assert "discover: max_urls must be at least 1" in bad.stderr
    assert not (tmp_path / "o" / "articles").exists()
