"""The one fetch function against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import socket
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator

import apache_beam as beam
import lxml.html
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms.extract import extract
from news_ingest.transforms.fetch import FetchPages, PageRequest, page_document
from news_ingest.transforms.normalize import canonical_url_of
from news_ingest.transforms.schema import Article, DeadLetter, RawDocument
from news_ingest.transforms.web.charsets import detect_charset, to_utf8
from news_ingest.transforms.web.http import (
    Fetcher,
    FetchError,
    FetchPolicy,
    checked_address,
    is_public_address,
    parse_target,
    read_body,
    retry_after_s,
)
from news_ingest.transforms.web.urls import canonical_link, canonicalize_url

from tests.localhttp import LocalServer, Reply, gzip_reply, html_reply, serving

LOOPBACK = ("127.0.0.1/32",)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        yield local


def policy(**kw) -> FetchPolicy:
    base = dict(
        min_delay_s=0.0,
        backoff_s=0.01,
        max_backoff_s=5.0,
        retries=2,
        connect_timeout_s=2.0,
        read_timeout_s=1.0,
        total_timeout_s=5.0,
        allow_networks=LOOPBACK,
    )
    base.update(kw)
    return FetchPolicy(**base)


class RecordingSleep:
    """Stands in for time.sleep: records the waits the fetcher asks for, sleeps not at all."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url)
    return info.value


PAGE = "<html><head><title>T</title></head><body><p>Hello page.</p></body></html>"


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM/a?utm_source=x&id=3&fbclid=9#frag", "https://example.com/a?id=3"),
        ("http://example.com:80/news/story.html?gclid=abc", "http://example.com/news/story.html"),
        ("http://example.com/a?b=2&a=1#top", "http://example.com/a?a=1&b=2"),
        ("ftp://example.com/file", None),
        ("/relative/only", None),
        ("", None),
        ("http://[", None),  # malformed host: one such link must not end a WARC or a feed
        ("http://example.com:99999/a", None),
    ],
)
def test_canonicalize_url(url, expected):
    assert canonicalize_url(url) == expected


def test_canonical_link_is_resolved_and_canonicalized():
    def link(page: str, base: str | None) -> str | None:
        return canonical_link(lxml.html.fromstring(page), base)

    page = '<html><head><LINK rel="Canonical" href="/story?utm_medium=rss"></head><body>x</body>'
    assert link(page, "http://News.example.org/x") == "http://news.example.org/story"
    late = "<html><head><title>t</title></head><body><link rel=canonical href=/late></body>"
    assert link(late, "http://a.b/") is None
    assert (
        link('<html><head><link rel="canonical" href="javascript:x"></head>', "http://a.b/") is None
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address):
    assert is_public_address(ipaddress.ip_address(address))


def test_every_resolved_address_must_be_public():
    target = parse_target("http://news.example/a")
    public = checked_address(target, (), resolver=lambda h, p: ["93.184.216.34"])
    assert public == "93.184.216.34"
    with pytest.raises(FetchError) as info:
        checked_address(target, (), resolver=lambda h, p: ["93.184.216.34", "10.0.0.7"])
    assert info.value.reason == "blocked_address"
    allow = (ipaddress.ip_network("10.0.0.0/8"),)
    assert checked_address(target, allow, resolver=lambda h, p: ["10.0.0.7"]) == "10.0.0.7"


def test_dns_failure_is_a_reason():
    def fail(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(FetchError) as info:
        checked_address(parse_target("http://nowhere.invalid/"), (), resolver=fail)
    assert info.value.reason == "dns_error"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/", "x"])
def test_only_http_and_https(url):
    with pytest.raises(FetchError) as info:
        Fetcher(policy()).fetch(url)
    assert info.value.reason in ("blocked_scheme", "bad_url")


def test_gzip_bomb_is_capped_without_inflating_it():
    bomb = gzip.compress(b"\0" * (30 * 1024 * 1024))
    chunks = [bomb[i : i + 4096] for i in range(0, len(bomb), 4096)]
    with pytest.raises(FetchError) as info:
        read_body(iter(chunks), "gzip", 1024 * 1024, "http://x/")
    assert info.value.reason == "too_large"
    assert read_body(iter([gzip.compress(b"ok" * 10)]), "gzip", 100, "u") == b"ok" * 10
    assert read_body(iter([zlib.compress(b"deflated")]), "deflate", 100, "u") == b"deflated"
    with pytest.raises(FetchError) as info:
        read_body(iter([b"not gzip at all"]), "gzip", 100, "u")
    assert info.value.reason == "bad_encoding"
    with pytest.raises(FetchError) as info:
        read_body(iter([b"x"]), "br", 100, "u")
    assert info.value.reason == "unsupported_encoding"


def test_retry_after_forms():
    assert retry_after_s("7") == 7.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


@pytest.mark.parametrize(
    ("text", "encoding", "header", "expected"),
    [
        (
            "Élection à Genève: les électeurs ont voté.",
            "cp1252",
            "text/html; charset=utf-8",
            "cp1252",
        ),
        (
            "Élection à Genève: les électeurs ont voté.",
            "utf-8",
            "text/html; charset=iso-8859-1",
            "utf-8",
        ),
        ('<meta charset="koi8-r"><p>Выборы прошли спокойно.</p>', "koi8-r", None, "koi8-r"),
        ("plain ascii", "ascii", None, "utf-8"),
    ],
)
def test_detect_charset(text, encoding, header, expected):
    assert detect_charset(text.encode(encoding), header) == expected


def test_policy_checks_its_arguments():
    with pytest.raises(ValueError, match="max_bytes"):
        FetchPolicy(max_bytes=0)
    with pytest.raises(ValueError, match="allow_networks"):
        FetchPolicy(allow_networks=("not-a-network",))


# --- against the local server -------------------------------------------------------------


def test_fetches_a_page_with_the_configured_user_agent(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    result = Fetcher(policy(user_agent="TestBot/9.9")).fetch(server.url("/a"))
    assert result.status == 200
    assert result.content == PAGE.encode()
    assert result.content_type.startswith("text/html")
    assert server.headers_of("/a")[0]["User-Agent"] == "TestBot/9.9"


def test_loopback_is_refused_without_the_allowlist(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    fetcher = Fetcher(policy(allow_networks=()))
    # The check runs on resolved addresses, so other spellings of loopback are caught too.
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1"):
        url = server.url("/a").replace("127.0.0.1", host)
        assert fetch_error(fetcher, url).reason == "blocked_address", host
    assert server.hits["/a"] == 0
    assert server.hits["/robots.txt"] == 0


def test_each_redirect_hop_is_checked_again(server: LocalServer):
    server.routes["/to-metadata"] = Reply(
        302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    server.routes["/to-file"] = Reply(302, headers={"Location": "file:///etc/passwd"})
    fetcher = Fetcher(policy())
    assert fetch_error(fetcher, server.url("/to-metadata")).reason == "blocked_address"
    assert fetch_error(fetcher, server.url("/to-file")).reason == "blocked_scheme"


def test_redirects_are_followed_and_bounded(server: LocalServer):
    server.routes["/old"] = Reply(301, headers={"Location": "/mid"})
    server.routes["/mid"] = Reply(307, headers={"Location": server.url("/new")})
    server.routes["/new"] = html_reply(PAGE)
    server.routes["/loop-a"] = Reply(302, headers={"Location": "/loop-b"})
    server.routes["/loop-b"] = Reply(302, headers={"Location": "/loop-a"})
    for i in range(10):
        server.routes[f"/hop{i}"] = Reply(302, headers={"Location": f"/hop{i + 1}"})
    fetcher = Fetcher(policy(max_redirects=3))
    result = fetcher.fetch(server.url("/old"))
    assert result.final_url == server.url("/new")
    assert result.redirects == (server.url("/mid"), server.url("/new"))
    assert fetch_error(fetcher, server.url("/loop-a")).reason == "redirect_loop"
    assert fetch_error(fetcher, server.url("/hop0")).reason == "too_many_redirects"
    assert server.hits["/hop4"] == 0


def test_503_with_retry_after_is_retried_after_the_wait(server: LocalServer):
    server.routes["/busy"] = [
        Reply(503, headers={"Retry-After": "3"}),
        html_reply(PAGE),
    ]
    sleep = RecordingSleep()
    result = Fetcher(policy(), sleep=sleep).fetch(server.url("/busy"))
    assert result.status == 200
    assert server.hits["/busy"] == 2
    assert max(sleep.waits) > 2.0


def test_429_gives_up_after_the_retries(server: LocalServer):
    server.routes["/limited"] = Reply(429, headers={"Retry-After": "2"})
    sleep = RecordingSleep()
    fetcher = Fetcher(policy(retries=2, respect_robots=False), sleep=sleep)
    error = fetch_error(fetcher, server.url("/limited"))
    assert error.reason == "http_429"
    assert server.hits["/limited"] == 3
    assert len(sleep.waits) == 2
    # The last Retry-After still holds the host's next request back.
    server.routes["/next"] = html_reply(PAGE)
    fetcher.fetch(server.url("/next"))
    assert len(sleep.waits) == 3 and sleep.waits[-1] > 1.0


def test_a_retry_after_beyond_the_cap_ends_the_fetch_at_once(server: LocalServer):
    server.routes["/later"] = Reply(503, headers={"Retry-After": "3600"})
    server.routes["/other"] = html_reply(PAGE)
    fetcher = Fetcher(policy(max_backoff_s=10, respect_robots=False))
    error = fetch_error(fetcher, server.url("/later"))
    assert error.reason == "http_503"
    assert server.hits["/later"] == 1
    # The rest of the host's pages are not asked for while it wants to be left alone.
    assert fetch_error(fetcher, server.url("/other")).reason == "http_503"
    assert server.hits["/other"] == 0


def test_5xx_is_retried_with_backoff(server: LocalServer):
    server.routes["/flaky"] = [Reply(500), Reply(502), html_reply(PAGE)]
    sleep = RecordingSleep()
    result = Fetcher(policy(backoff_s=1.0), sleep=sleep).fetch(server.url("/flaky"))
    assert result.content == PAGE.encode()
    assert server.hits["/flaky"] == 3
    assert len(sleep.waits) == 2 and sleep.waits[1] > sleep.waits[0]


def test_404_is_not_retried(server: LocalServer):
    assert fetch_error(Fetcher(policy()), server.url("/missing")).reason == "http_404"
    assert server.hits["/missing"] == 1


def test_slow_headers_time_out_and_are_retried(server: LocalServer):
    server.routes["/slow"] = html_reply(PAGE, delay_s=1.5)
    error = fetch_error(Fetcher(policy(read_timeout_s=0.3, retries=1)), server.url("/slow"))
    assert error.reason == "timeout"
    assert server.hits["/slow"] == 2


def test_a_slow_drip_body_hits_the_total_timeout(server: LocalServer):
    server.routes["/drip"] = Reply(body=b"x" * 40, drip_s=0.1)
    fetcher = Fetcher(policy(read_timeout_s=1.0, total_timeout_s=0.5, retries=0))
    assert fetch_error(fetcher, server.url("/drip")).reason == "timeout"


def test_oversized_bodies_are_refused(server: LocalServer):
    server.routes["/big"] = Reply(body=b"x" * 5000)
    server.routes["/big-unannounced"] = Reply(body=b"x" * 5000, content_length=False)
    server.routes["/bomb"] = gzip_reply(b"<p>" + b"\0" * (20 * 1024 * 1024))
    server.routes["/small-gzip"] = gzip_reply(PAGE.encode())
    fetcher = Fetcher(policy(max_bytes=4096, retries=0))
    assert fetch_error(fetcher, server.url("/big")).reason == "too_large"
    assert fetch_error(fetcher, server.url("/big-unannounced")).reason == "too_large"
    assert fetch_error(fetcher, server.url("/bomb")).reason == "too_large"
    assert fetcher.fetch(server.url("/small-gzip")).content == PAGE.encode()
    assert server.headers_of("/small-gzip")[0]["Accept-Encoding"] == "gzip, deflate"


def test_conditional_get_returns_not_modified(server: LocalServer):
    def feed(handler) -> Reply:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(
            body=b"<rss/>",
            headers={"ETag": '"v1"', "Last-Modified": "Sun, 22 Nov 2026 05:00:00 GMT"},
        )

    server.routes["/feed"] = feed
    fetcher = Fetcher(policy())
    first = fetcher.fetch(server.url("/feed"))
    assert (first.status, first.etag) == (200, '"v1"')
    second = fetcher.fetch(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.content == b""
    sent = server.headers_of("/feed")[1]
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Sun, 22 Nov 2026 05:00:00 GMT"


def test_robots_txt_is_honoured(server: LocalServer):
    server.routes["/robots.txt"] = Reply(
        body=b"User-agent: *\nDisallow: /private\n\nUser-agent: OtherBot\nDisallow: /\n"
    )
    server.routes["/private/a"] = html_reply(PAGE)
    server.routes["/public/a"] = html_reply(PAGE)
    fetcher = Fetcher(policy())
    assert fetch_error(fetcher, server.url("/private/a")).reason == "robots_disallowed"
    assert fetcher.fetch(server.url("/public/a")).status == 200
    assert server.hits["/private/a"] == 0
    assert server.hits["/robots.txt"] == 1
    blind = Fetcher(policy(respect_robots=False))
    assert blind.fetch(server.url("/private/a")).status == 200
    other = Fetcher(policy(user_agent="OtherBot/1.0"))
    assert fetch_error(other, server.url("/public/a")).reason == "robots_disallowed"


def test_unreachable_robots_txt_disallows_but_a_missing_one_allows(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    server.routes["/robots.txt"] = Reply(500)
    error = fetch_error(Fetcher(policy(retries=0)), server.url("/a"))
    assert error.reason == "robots_unavailable"
    server.routes["/robots.txt"] = Reply(404)
    assert Fetcher(policy(retries=0)).fetch(server.url("/a")).status == 200


def test_one_request_at_a_time_per_host(server: LocalServer):
    for i in range(4):
        server.routes[f"/p{i}"] = html_reply(PAGE, delay_s=0.1)
    fetcher = Fetcher(policy(respect_robots=False))
    threads = [
        threading.Thread(target=fetcher.fetch, args=(server.url(f"/p{i}"),)) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(server.hits[f"/p{i}"] for i in range(4)) == 4
    assert server.max_in_flight == 1


def test_min_delay_between_requests_to_a_host(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    sleep = RecordingSleep()
    fetcher = Fetcher(policy(min_delay_s=30.0, respect_robots=False), sleep=sleep)
    fetcher.fetch(server.url("/a"))
    assert sleep.waits == []
    fetcher.fetch(server.url("/a"))
    assert len(sleep.waits) == 1 and sleep.waits[0] > 25.0


def test_wrong_charsets_become_utf8_documents(server: LocalServer):
    text = "Élection à Genève: les électeurs genevois ont dit non à la réforme."
    page = f"<html><head><title>x</title></head><body><p>{text}</p></body></html>"
    server.routes["/latin1-says-utf8"] = Reply(
        body=page.encode("cp1252"), headers={"Content-Type": "text/html; charset=utf-8"}
    )
    server.routes["/utf8-says-latin1"] = Reply(
        body=page.encode("utf-8"), headers={"Content-Type": "text/html; charset=iso-8859-1"}
    )
    fetcher = Fetcher(policy(respect_robots=False))
    for path in ("/latin1-says-utf8", "/utf8-says-latin1"):
        request = PageRequest(url=server.url(path), source_ref=path, source_kind="feed")
        doc = page_document(request, fetcher.fetch(request.url))
        assert isinstance(doc, RawDocument)
        assert text in doc.content.decode("utf-8")
        assert doc.content_type == "text/html; charset=utf-8"


def test_a_redirected_page_keeps_its_final_url_and_its_canonical_link(server: LocalServer):
    # The feed links /story?utm_source=rss; the site moved it twice; the page names its
    # canonical URL. The document is the page that answered, and the article says so.
    server.routes["/story?utm_source=rss"] = Reply(301, headers={"Location": "/2026/story"})
    server.routes["/2026/story"] = Reply(302, headers={"Location": "/2026/11/story.html"})
    server.routes["/2026/11/story.html"] = html_reply(
        '<html><head><title>Story</title><link rel="canonical" href="/canonical-story?utm_medium=x">'
        "</head><body><article><p>"
        + "The harbour authority said the new ferry terminal would open in the spring. " * 8
        + "</p></article></body></html>"
    )
    server.routes["/image"] = Reply(body=b"\x89PNG", headers={"Content-Type": "image/png"})
    fetcher = Fetcher(policy(respect_robots=False))
    request = PageRequest(
        url=server.url("/story?utm_source=rss"),
        source_ref=server.url("/story?utm_source=rss"),
        source_kind="feed",
        hints=(("title", "From the feed"),),
    )
    doc = page_document(request, fetcher.fetch(request.url))
    assert isinstance(doc, RawDocument)
    assert doc.hint("title") == "From the feed"
    assert doc.url == server.url("/2026/11/story.html")
    assert doc.source_ref == request.url  # what the feed asked for
    article = extract(doc)
    assert isinstance(article, Article)
    assert article.url == server.url("/2026/11/story.html")
    assert article.canonical_url == server.url("/canonical-story")
    assert canonical_url_of(article) == server.url("/canonical-story")
    image = PageRequest(url=server.url("/image"), source_ref="f", source_kind="feed")
    dead = page_document(image, fetcher.fetch(image.url))
    assert isinstance(dead, DeadLetter) and dead.reason == "not_html"


def test_fetch_pages_transform(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    server.routes["/b"] = html_reply(PAGE.replace("Hello", "Other"))
    requests = [
        PageRequest(server.url("/a"), "feed1", "feed", (("title", "A"),)),
        PageRequest(server.url("/a#comments"), "feed2", "feed", (("title", "A2"),)),
        PageRequest(server.url("/b"), "feed1", "feed"),
        PageRequest(server.url("/gone"), "feed1", "feed"),
        PageRequest("http://10.9.8.7/x", "feed1", "feed"),
    ]
    with test_pipeline.TestPipeline() as p:
        docs, dead = p | beam.Create(requests) | FetchPages(policy(respect_robots=False))
        assert_that(
            docs | "Urls" >> beam.Map(lambda d: (d.url, d.hint("title"), b"Hello" in d.content)),
            equal_to(
                [
                    (server.url("/a"), "A", True),
                    # the URL that answered (the fragment is not sent)
                    (server.url("/a"), "A2", True),
                    (server.url("/b"), None, False),
                ]
            ),
            label="Documents",
        )
        assert_that(
            dead | "Reasons" >> beam.Map(lambda d: (d.stage, d.reason, d.url)),
            equal_to(
                [
                    ("fetch", "http_404", server.url("/gone")),
                    ("fetch", "blocked_address", "http://10.9.8.7/x"),
                ]
            ),
            label="DeadLetters",
        )
    # The same page asked for twice (the fragment differs) is fetched once.
    assert server.hits["/a"] == 1


def test_https_is_pinned_to_the_checked_address_and_verifies_the_host(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("news.test").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    with serving(tls=context) as tls_server:
        tls_server.routes["/a"] = html_reply(PAGE)
        port = tls_server.server_address[1]
        fetcher = Fetcher(policy(ca_bundle=str(bundle), respect_robots=False), resolver=resolver)
        result = fetcher.fetch(f"https://news.test:{port}/a")
        assert result.content == PAGE.encode()
        assert tls_server.headers_of("/a")[0]["Host"] == f"news.test:{port}"
        assert asked == ["news.test"]
        # The certificate names news.test, not other.test: the pinned connection still checks.
        error = fetch_error(fetcher, f"https://other.test:{port}/a")
        assert error.reason == "tls_error"
        # Without the test CA, the certificate is not trusted.
        untrusting = Fetcher(policy(respect_robots=False), resolver=resolver)
        assert fetch_error(untrusting, f"https://news.test:{port}/a").reason == "tls_error"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z]{2,5}){1,2}", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True), max_size=3),
    st.dictionaries(
        st.sampled_from(["id", "utm_source", "page", "fbclid", "q"]),
        st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True),
        max_size=3,
    ),
    st.text(alphabet="abc", max_size=3),
)
def test_canonicalize_url_is_idempotent(scheme, host, path, query, fragment):
    url = f"{scheme}://{host}/{'/'.join(path)}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
    url += f"#{fragment}" if fragment else ""
    once = canonicalize_url(url)
    assert once is not None and "#" not in once and "utm_source" not in once
    assert urllib.parse.urlsplit(once).hostname == host.lower()
    assert canonicalize_url(once) == once


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=3000),
    st.sampled_from([None, "text/html; charset=utf-8", "text/html; charset=bogus"]),
)
def test_any_bytes_become_utf8(content, content_type):
    body, charset = to_utf8(content, content_type)
    body.decode("utf-8")
    assert charset


# --- reasons named as they happened -------------------------------------------------------


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose connections the kernel accepts but nobody ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def header_dripper(max_s: float = 8.0) -> Iterator[int]:
    """A server that sends a status line, then one header byte every 50 ms (for at most
    ``max_s``): each socket read gets a byte in time, so only a deadline on the whole response
    ends it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                    for _ in range(int(max_s / 0.05)):
                        if stop.is_set():
                            break
                        conn.sendall(b"a")
                        time.sleep(0.05)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_refused_port_is_connection_refused():
    fetcher = Fetcher(policy(retries=0, respect_robots=False))
    error = fetch_error(fetcher, f"http://127.0.0.1:{free_port()}/a")
    assert error.reason == "connection_refused"


def test_a_server_that_accepts_and_never_answers_times_out():
    with silent_listener() as port:
        fetcher = Fetcher(policy(retries=0, read_timeout_s=0.3, respect_robots=False))
        error = fetch_error(fetcher, f"http://127.0.0.1:{port}/a")
    assert error.reason == "timeout"
    assert "read_timeout_s" in error.message


def test_headers_dripped_byte_by_byte_hit_the_total_timeout():
    with header_dripper() as port:
        fetcher = Fetcher(
            policy(retries=0, read_timeout_s=0.5, total_timeout_s=0.6, respect_robots=False)
        )
        error = fetch_error(fetcher, f"http://127.0.0.1:{port}/a")
    assert error.reason == "timeout"
    assert "total_timeout_s" in error.message


def test_tls_to_a_plain_http_server_is_a_tls_error(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    fetcher = Fetcher(policy(retries=0, respect_robots=False))
    error = fetch_error(fetcher, server.url("/a").replace("http://", "https://"))
    assert error.reason == "tls_error"


def test_a_down_feed_server_is_not_a_robots_refusal():
    # robots.txt is asked for first; the host being down is what happened, and says so.
    fetcher = Fetcher(policy(retries=0))
    error = fetch_error(fetcher, f"http://127.0.0.1:{free_port()}/feed.xml")
    assert error.reason == "connection_refused"
    assert "robots" not in error.reason


def test_blocked_loopback_names_the_setting_that_allows_it(server: LocalServer):
    error = fetch_error(Fetcher(policy(allow_networks=())), server.url("/a"))
    assert error.reason == "blocked_address"
    assert "fetch.allow_networks" in error.message and "127.0.0.1/32" in error.message


# --- robots.txt as RFC 9309 reads it ------------------------------------------------------


def test_robots_txt_wildcards_end_anchors_and_longest_match(server: LocalServer):
    server.routes["/robots.txt"] = Reply(
        body=b"User-agent: news-ingest\n"
        b"Disallow: /*.pdf$\n"
        b"Disallow: /private\n"
        b"Allow: /private/press\n"
        b"Disallow: /*?print=\n"
        b"Crawl-delay: 7\n"
    )
    for path in ("/doc.pdf", "/doc.pdf?x=1", "/private/a", "/private/press/1", "/s?print=1"):
        server.routes[path] = html_reply(PAGE)
    sleep = RecordingSleep()
    fetcher = Fetcher(policy(max_backoff_s=30.0), sleep=sleep)
    assert fetch_error(fetcher, server.url("/doc.pdf")).reason == "robots_disallowed"
    assert fetcher.fetch(server.url("/doc.pdf?x=1")).status == 200  # "$" anchors the end
    assert fetch_error(fetcher, server.url("/private/a")).reason == "robots_disallowed"
    assert fetcher.fetch(server.url("/private/press/1")).status == 200  # the longer rule wins
    assert fetch_error(fetcher, server.url("/s?print=1")).reason == "robots_disallowed"
    assert server.hits["/doc.pdf"] == server.hits["/private/a"] == server.hits["/s?print=1"] == 0
    # Crawl-delay spaces the host's requests
    assert sleep.waits and min(sleep.waits) > 5.0
    error = fetch_error(fetcher, server.url("/doc.pdf"))
    assert "fetch.respect_robots" in error.message


# --- what an attacker tries next ----------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # decimal
        "0x7f.1",  # hex and short form
        "0177.0.0.1",  # octal
        "017700000001",
        "127.000.000.001",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "[::1]",
        "localhost",
        "localhost.",  # trailing dot
        "LOCALHOST",
        "0",  # 0.0.0.0 reaches the local host on Linux
    ],
)
def test_spellings_of_loopback_are_refused(server: LocalServer, host: str):
    server.routes["/a"] = html_reply(PAGE)
    url = server.url("/a").replace("127.0.0.1", host)
    error = fetch_error(Fetcher(policy(allow_networks=(), retries=0)), url)
    assert error.reason == "blocked_address", (host, error)
    assert "fetch.allow_networks" in error.message
    assert server.hits["/a"] == 0 and server.hits["/robots.txt"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com@127.0.0.1:{port}/a",  # userinfo: the host is what follows the @
        "http://example.com:80@127.0.0.1:{port}/a",
        "http://user:pass@127.0.0.1:{port}/a",
    ],
)
def test_userinfo_tricks_are_refused(server: LocalServer, url: str):
    server.routes["/a"] = html_reply(PAGE)
    url = url.format(port=server.server_address[1])
    error = fetch_error(Fetcher(policy()), url)
    assert error.reason == "bad_url"
    assert "127.0.0.1" in error.message
    assert server.hits["/a"] == 0


@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",  # IPv4-compatible ::127.0.0.1
        "::ffff:0:7f00:1",  # IPv4-translated
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
        "64:ff9b:1::808:808",  # local-use NAT64 translates to anything
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    ],
)
def test_ipv6_forms_that_carry_a_private_ipv4_are_refused(address: str):
    assert not is_public_address(ipaddress.ip_address(address))
    target = parse_target("http://rebind.example/a")
    with pytest.raises(FetchError) as info:
        checked_address(target, (), resolver=lambda h, p: [address])
    assert info.value.reason == "blocked_address"


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"])
def test_ipv6_forms_of_public_ipv4_pass(address: str):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{port}/x",  # loopback outside the allowed /32
        "http://2130706434:{port}/x",
        "http://0x7f.0.0.2:{port}/x",
        "http://[::ffff:127.0.0.2]:{port}/x",
        "http://[::1]:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://10.0.0.1/",
    ],
)
def test_a_redirect_to_a_private_address_is_refused(server: LocalServer, location: str):
    server.routes["/go"] = Reply(302, headers={"Location": location.format(port=1)})
    fetcher = Fetcher(policy(retries=0))
    error = fetch_error(fetcher, server.url("/go"))
    assert error.reason == "blocked_address", error
    assert "fetch.allow_networks" in error.message


def test_an_unresolvable_spelling_is_a_dns_error_not_a_fetch(server: LocalServer):
    server.routes["/a"] = html_reply(PAGE)
    url = server.url("/a").replace("127.0.0.1", "%31%32%37.0.0.1")
    assert fetch_error(Fetcher(policy(allow_networks=())), url).reason in ("dns_error", "bad_url")
    assert server.hits["/a"] == 0


@pytest.mark.parametrize(
    ("encoding", "bomb"),
    [
        ("gzip", gzip.compress(b"\0" * (20 * 1024 * 1024))),
        ("deflate", zlib.compress(b"\0" * (20 * 1024 * 1024), 9)),
        ("x-gzip", gzip.compress(b"<p>" * (7 * 1024 * 1024))),
    ],
)
def test_compression_bombs_are_refused_without_inflating_them(
    server: LocalServer, encoding: str, bomb: bytes
):
    headers = {"Content-Type": "text/html", "Content-Encoding": encoding}
    server.routes["/bomb"] = Reply(body=bomb, headers=headers)
    server.routes["/bomb-unannounced"] = Reply(body=bomb, headers=headers, content_length=False)
    fetcher = Fetcher(policy(max_bytes=1024 * 1024, retries=0, respect_robots=False))
    for path in ("/bomb", "/bomb-unannounced"):
        error = fetch_error(fetcher, server.url(path))
        assert error.reason == "too_large"
        assert "fetch.max_bytes" in error.message


def test_stacked_encodings_are_refused(server: LocalServer):
    body = gzip.compress(gzip.compress(b"\0" * (20 * 1024 * 1024)))
    server.routes["/twice"] = Reply(
        body=body, headers={"Content-Type": "text/html", "Content-Encoding": "gzip, gzip"}
    )
    fetcher = Fetcher(policy(retries=0, respect_robots=False))
    assert fetch_error(fetcher, server.url("/twice")).reason == "unsupported_encoding"


def test_a_robots_txt_bomb_is_capped_too(server: LocalServer):
    server.routes["/robots.txt"] = gzip_reply(b"#" * (20 * 1024 * 1024), "text/plain")
    server.routes["/a"] = html_reply(PAGE)
    error = fetch_error(Fetcher(policy(max_bytes=1024 * 1024, retries=0)), server.url("/a"))
    assert error.reason == "robots_unavailable"
    assert server.hits["/a"] == 0


@pytest.mark.parametrize("label", ["base64", "zlib", "rot13", "unicode_escape", "undefined"])
def test_a_page_labelled_with_a_codec_no_page_uses_still_decodes(label: str):
    body = "<p>Caf\u00e9 \\u0041 ouvert.</p>".encode("cp1252")
    text, charset = to_utf8(body, f"text/html; charset={label}")
    assert "Caf\u00e9 \\u0041 ouvert." in text.decode("utf-8")
    meta = f'<meta charset="{label}">'.encode() + body
    assert "Caf\u00e9" in to_utf8(meta)[0].decode("utf-8")


# --- every input lands once ---------------------------------------------------------------


def test_one_failing_page_is_its_own_dead_letter_and_its_host_goes_on(server, monkeypatch):
    import news_ingest.transforms.fetch as fetch_stage

    for i in range(5):
        server.routes[f"/p{i}"] = html_reply(PAGE.replace("Hello", f"Page {i}"))
    real = fetch_stage.to_utf8

    def to_utf8_with_a_bug(content, content_type=None):
        if b"Page 3" in content:
            raise RuntimeError("a bug that only this page's bytes reach")
        return real(content, content_type)

    monkeypatch.setattr(fetch_stage, "to_utf8", to_utf8_with_a_bug)
    requests = [PageRequest(server.url(f"/p{i}"), f"entry-{i}", "feed") for i in range(5)]
    with test_pipeline.TestPipeline() as p:
        docs, dead = p | beam.Create(requests) | FetchPages(policy(respect_robots=False))
        assert_that(
            docs | "Refs" >> beam.Map(lambda d: d.source_ref),
            equal_to([f"entry-{i}" for i in (0, 1, 2, 4)]),
            label="Documents",
        )
        assert_that(
            dead | "Dead" >> beam.Map(lambda d: (d.source_ref, d.url, d.stage, d.reason)),
            equal_to([("entry-3", server.url("/p3"), "fetch", "exception")]),
            label="DeadLetters",
        )


def test_a_page_that_is_not_html_or_not_found_is_its_requests_dead_letter(server):
    server.routes["/img"] = Reply(body=b"\x89PNG", headers={"Content-Type": "image/png"})
    requests = [
        PageRequest(server.url("/img"), "entry-img", "feed"),
        PageRequest(server.url("/gone"), "entry-gone", "sitemap"),
    ]
    with test_pipeline.TestPipeline() as p:
        docs, dead = p | beam.Create(requests) | FetchPages(policy(respect_robots=False))
        assert_that(docs, equal_to([]), label="NoDocuments")
        assert_that(
            dead
            | "Dead"
            >> beam.Map(
                lambda d: (
                    d.source_ref,
                    d.source_kind,
                    d.url,
                    d.stage,
                    d.reason,
                    d.error_type,
                    d.error_message,
                )
            ),
            equal_to(
                [
                    (
                        "entry-img",
                        "feed",
                        server.url("/img"),
                        "fetch",
                        "not_html",
                        None,
                        "content-type image/png",
                    ),
                    (
                        "entry-gone",
                        "sitemap",
                        server.url("/gone"),
                        "fetch",
                        "http_404",
                        "FetchError",
                        "HTTP status 404",
                    ),
                ]
            ),
            label="DeadLetters",
        )


def test_a_page_whose_label_once_raised_is_a_document_and_spares_its_host(server):
    # charset=base64 made the charset ladder raise LookupError: the whole host's group became
    # one dead letter whose source_ref was the repr of the group.
    for i in range(5):
        label = "base64" if i == 2 else "windows-1252"
        server.routes[f"/p{i}"] = Reply(
            body=PAGE.replace("Hello", f"Caf\u00e9 {i}").encode("cp1252"),
            headers={"Content-Type": f"text/html; charset={label}"},
        )
    requests = [PageRequest(server.url(f"/p{i}"), f"entry-{i}", "feed") for i in range(5)]
    with test_pipeline.TestPipeline() as p:
        docs, dead = p | beam.Create(requests) | FetchPages(policy(respect_robots=False))
        assert_that(
            docs
            | "Texts"
            >> beam.Map(lambda d: f"Caf\u00e9 {d.source_ref[-1]}" in d.content.decode("utf-8")),
            equal_to([True] * 5),
            label="Documents",
        )
        assert_that(dead, equal_to([]), label="NoDeadLetters")


_PRIVATE_V4 = st.one_of(
    st.ip_addresses(v=4, network="127.0.0.0/8"),
    st.ip_addresses(v=4, network="10.0.0.0/8"),
    st.ip_addresses(v=4, network="172.16.0.0/12"),
    st.ip_addresses(v=4, network="192.168.0.0/16"),
    st.ip_addresses(v=4, network="169.254.0.0/16"),
    st.ip_addresses(v=4, network="100.64.0.0/10"),
    st.ip_addresses(v=4, network="0.0.0.0/8"),
)


@settings(max_examples=300, deadline=None)
@given(_PRIVATE_V4)
def test_no_ipv6_embedding_of_a_private_ipv4_is_public(v4):
    n = int(v4)
    embeddings = [
        (0xFFFF << 32) | n,  # ::ffff:a.b.c.d
        n,  # ::a.b.c.d
        (0xFFFF << 48) | n,  # ::ffff:0:a.b.c.d
        (0x64FF9B << 96) | n,  # 64:ff9b::a.b.c.d
        (0x2002 << 112) | (n << 80) | 1,  # 2002:AABB:CCDD::1
    ]
    for value in embeddings:
        address = ipaddress.IPv6Address(value)
        assert not is_public_address(address), address


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_url_text_is_a_target_or_a_fetch_error(text):
    for url in (text, f"http://{text}/", f"https://{text}:80/x"):
        try:
            target = parse_target(url)
        except FetchError:
            continue
        assert target.scheme in ("http", "https") and 0 <= target.port <= 65535
        assert target.host and target.host.isascii() and target.host == target.host.lower()
        assert not target.host.endswith(".")


def test_robots_txt_is_kept_a_day_and_an_unavailable_one_is_asked_again_soon(server):
    now = [1000.0]
    server.routes["/a"] = html_reply(PAGE)
    server.routes["/robots.txt"] = [Reply(500), Reply(body=b"User-agent: *\nDisallow: /b\n")]
    fetcher = Fetcher(policy(retries=0), clock=lambda: now[0], sleep=RecordingSleep())
    assert fetch_error(fetcher, server.url("/a")).reason == "robots_unavailable"
    now[0] += 60
    assert fetch_error(fetcher, server.url("/a")).reason == "robots_unavailable"
    assert server.hits["/robots.txt"] == 1
    now[0] += 300  # RFC 9309: an unavailable robots.txt is not the last word
    assert fetcher.fetch(server.url("/a")).status == 200
    now[0] += 23 * 3600
    fetcher.fetch(server.url("/a"))
    assert server.hits["/robots.txt"] == 2
    now[0] += 2 * 3600  # kept at most a day
    fetcher.fetch(server.url("/a"))
    assert server.hits["/robots.txt"] == 3
