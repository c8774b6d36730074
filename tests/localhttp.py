"""A real HTTP server on 127.0.0.1 for tests: canned replies per path, slow and broken ones too.

Routes map a path (with query) to a ``Reply``, a list of replies (the n-th request gets the
n-th, the last repeats), or a function of the request handler returning a ``Reply``. The
server records every request (path and headers) and the highest number served at once.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gzip
import http.server
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    drip_s: float = 0.0  # between body bytes (a slow drip)
    content_length: bool = True


def html_reply(html: str, charset: str = "utf-8", **kw: Any) -> Reply:
    headers = {"Content-Type": f"text/html; charset={charset}", **kw.pop("headers", {})}
    return Reply(body=html.encode(charset), headers=headers, **kw)


def gzip_reply(body: bytes, content_type: str = "text/html; charset=utf-8") -> Reply:
    return Reply(
        body=gzip.compress(body),
        headers={"Content-Type": content_type, "Content-Encoding": "gzip"},
    )


Route = Reply | list[Reply] | Callable[["Handler"], Reply]


class Handler(http.server.BaseHTTPRequestHandler):
    server: LocalServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers.items())))
            srv.hits[self.path] += 1
            n = srv.hits[self.path]
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            route = srv.routes.get(self.path)
            if route is None:
                reply = Reply(status=404, body=b"not found")
            elif isinstance(route, Reply):
                reply = route
            elif isinstance(route, list):
                reply = route[min(n, len(route)) - 1]
            else:
                reply = route(self)
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _send(self, reply: Reply) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.content_length:
            self.send_header("Content-Length", str(len(reply.body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if reply.drip_s:
            for i in range(len(reply.body)):
                self.wfile.write(reply.body[i : i + 1])
                self.wfile.flush()
                time.sleep(reply.drip_s)
        else:
            self.wfile.write(reply.body)


class LocalServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@contextlib.contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    """A ``LocalServer`` answering on a free port of 127.0.0.1 until the block ends (over TLS
    when given a server context)."""
    server = LocalServer()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
