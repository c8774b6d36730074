"""Remote faults through a whole run: every feed entry ends as an article or a dead letter with
the fault's reason; the run neither crashes nor hangs, and a remote fault does not spend the
error budget.

A feed on a real HTTP server on 127.0.0.1 links pages that answer 500, 503, 429, reset the
connection, trickle their body, stall before answering, or fail once and then succeed; one
link's host does not resolve (the resolver is replaced in-process, so no DNS query leaves the
machine).
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator

import pytest
import yaml
from news_ingest.pipeline import cli

from tests.conftest import read_table
from tests.localhttp import LocalServer, Reply, html_reply, serving

SENTENCE = "The harbour authority said the new ferry terminal would open in the spring."


def page(title: str) -> str:
    body = "".join(
        f"<p>{SENTENCE} {title} part {i} gives the readers more detail.</p>" for i in range(4)
    )
    return f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"


def reset(handler) -> Reply:
    """Abort the connection with a TCP reset instead of answering."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    for stream in (handler.wfile, handler.rfile):
        stream.close()
    handler.connection.close()
    raise ConnectionResetError("reset by the test server")


# path -> (route, expected table, expected reason)
PAGES = {
    "/ok.html": (html_reply(page("Ok")), "articles", None),
    "/flaky.html": ([Reply(status=500), html_reply(page("Flaky"))], "articles", None),
    "/e500.html": (Reply(status=500, body=b"boom"), "dead_letters", "http_500"),
    "/e503.html": (Reply(status=503, headers={"Retry-After": "0"}), "dead_letters", "http_503"),
    "/e429.html": (Reply(status=429, headers={"Retry-After": "0"}), "dead_letters", "http_429"),
    "/reset.html": (reset, "dead_letters", "connection_error"),
    "/trickle.html": (html_reply(page("Trickle") * 20, drip_s=0.01), "dead_letters", "timeout"),
    "/stall.html": (html_reply(page("Stall"), delay_s=3.0), "dead_letters", "timeout"),
}
UNRESOLVABLE = "http://nowhere.invalid/news.html"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with serving() as local:
        local.handle_error = lambda request, address: None  # the reset route's aftermath
        for path, (route, _table, _reason) in PAGES.items():
            local.routes[path] = route
        yield local


@pytest.fixture
def no_dns(monkeypatch):
    """Names ending in .invalid do not resolve; the real resolver is never asked for them."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts but nobody ever answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def run_feed(
    server: LocalServer, links: list[str], tmp_path, respect_robots: bool = False, feeds=()
) -> tuple[int, object]:
    """Run the CLI on one feed (served by ``server``) that links ``links``, and on ``feeds``."""
    items = "".join(
        f"<item><title>Entry {i}</title><link>{link}</link><guid>e{i}</guid></item>"
        for i, link in enumerate(links)
    )
    server.routes["/feed.xml"] = Reply(
        body=f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'.encode(),
        headers={"Content-Type": "application/rss+xml"},
    )
    feed_list = tmp_path / "feeds.yaml"
    feed_list.write_text(yaml.safe_dump([{"url": server.url("/feed.xml")}, *feeds]))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "fetch": {
                    "allow_networks": ["127.0.0.1/32"],
                    "min_delay_s": 0.0,
                    "retries": 1,
                    "backoff_s": 0.01,
                    "connect_timeout_s": 1.0,
                    "read_timeout_s": 0.5,
                    "total_timeout_s": 1.0,
                    # Faults of the pages themselves: robots.txt (whose failure refuses a host,
                    # reason robots_unavailable) is tested by the fetch module.
                    "respect_robots": respect_robots,
                }
            }
        )
    )
    out = tmp_path / "out"
    return cli.main(
        ["run", "--input", str(feed_list), "--config", str(config), "--output", str(out)]
    ), out


def test_remote_faults_end_as_dead_letters_with_their_reasons(
    server, no_dns, silent_port, tmp_path
):
    refused = f"http://127.0.0.1:{free_port()}/refused.html"
    silent = f"http://127.0.0.1:{silent_port}/silent.html"
    links = [server.url(p) for p in PAGES] + [UNRESOLVABLE, refused, silent]
    code, out = run_feed(server, links, tmp_path)
    assert code == 0

    articles = read_table(out, "articles").to_pylist()
    dead = read_table(out, "dead_letters").to_pylist()
    assert len(articles) + len(dead) == len(links)
    expected_articles = {
        server.url(p) for p, (_r, table, _x) in PAGES.items() if table == "articles"
    }
    assert {a["url"] for a in articles} == expected_articles
    assert all(SENTENCE in a["text"] for a in articles)
    expected_dead = {
        server.url(p): reason for p, (_r, table, reason) in PAGES.items() if table == "dead_letters"
    }
    expected_dead[UNRESOLVABLE] = "dns_error"
    expected_dead[refused] = "connection_refused"
    expected_dead[silent] = "timeout"
    assert {d["url"]: d["reason"] for d in dead} == expected_dead
    assert {d["stage"] for d in dead} == {"fetch"}
    # The flaky page was retried once; the 500 page was tried twice (one retry), no more.
    assert server.hits["/flaky.html"] == 2
    assert server.hits["/e500.html"] == 2

    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["error_budget"]["failed"] == 0


def test_a_down_feed_server_is_a_feed_dead_letter_with_what_happened(server, tmp_path):
    # With robots.txt on (the default), the first request to a down host is for its robots.txt:
    # the dead letter says the host refused the connection, not that robots.txt refused.
    down = f"http://127.0.0.1:{free_port()}/feed.xml"
    code, out = run_feed(
        server, [server.url("/ok.html")], tmp_path, respect_robots=True, feeds=[{"url": down}]
    )
    assert code == 0
    assert [a["url"] for a in read_table(out, "articles").to_pylist()] == [server.url("/ok.html")]
    dead = read_table(out, "dead_letters").to_pylist()
    assert [(d["stage"], d["reason"], d["source_ref"]) for d in dead] == [
        ("feeds", "connection_refused", down)
    ]
