"""Fetching over HTTP: the one polite and safe fetch used for feeds, pages and robots.txt.

Everything that goes to the network goes through ``Fetcher.fetch``:

* Safety: only ``http``/``https``; the host is resolved first and every address it resolves to
  must be public (no loopback, private, link-local, shared, multicast or cloud-metadata
  address) unless it is in an explicit allowlist; the connection then goes to the checked
  address (pinned, so a second DNS answer cannot swap it). Each redirect hop is checked again.
  Bodies are capped, after decompression too (gzip bombs), and so is the time one fetch takes.
* Politeness: one request at a time per host (a lock), a minimum delay between requests to a
  host, ``Retry-After`` honoured (it also holds back the host's next request), robots.txt
  honoured (with its Crawl-delay), retries with exponential backoff on 5xx, 429 and timeouts.
* Conditional GET: ``etag``/``last_modified`` become ``If-None-Match``/``If-Modified-Since``;
  a 304 is returned as a result with ``not_modified``.

Failures raise ``FetchError`` with a reason code; callers turn it into a dead letter.

The client is urllib3 (not requests) because pinning the connection to the checked address and
reading the raw, still-compressed body in bounded chunks are both first-class there.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import email.utils
import ipaddress
import re
import socket
import threading
import time
import urllib.parse
import urllib.robotparser
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import apache_beam as beam
import certifi
import charset_normalizer
import courlan
import urllib3
from apache_beam.metrics import Metrics
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from transforms.schema import UTC, DeadLetter, RawDocument
from transforms.stage import ApplyStage

STAGE = "fetch"

SCHEMES = ("http", "https")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 64 * 1024

# Addresses that are global by the registry but still reach a cloud provider's metadata
# service from inside its network.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)


class FetchError(Exception):
    """A fetch that failed or was refused; ``reason`` is the dead-letter reason code."""

    def __init__(self, reason: str, message: str, url: str, retryable: bool = False):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.url = url
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class FetchPolicy:
    """How to fetch: timeouts, caps, politeness and safety settings.

    Attributes:
        user_agent: sent with every request; its product token (before ``/``) is matched
            against robots.txt groups.
        connect_timeout_s: seconds to establish a connection.
        read_timeout_s: seconds a single socket read may wait.
        total_timeout_s: seconds one response may take in all (defeats slow drip bodies).
        max_bytes: largest body accepted, compressed and decompressed.
        max_redirects: redirects followed before giving up.
        retries: extra attempts on 5xx, 429, timeouts and connection errors.
        backoff_s: first backoff; doubled on every retry.
        max_backoff_s: longest wait for a backoff or a ``Retry-After``; a longer
            ``Retry-After`` ends the fetch (reason ``http_429``/``http_503``).
        min_delay_s: least time between two requests to one host.
        respect_robots: check robots.txt before fetching a page.
        allow_networks: CIDR blocks (``127.0.0.1/32``) allowed although not public.
        ca_bundle: PEM file of trusted certificate authorities; None: certifi's bundle.
    """

    user_agent: str = "news-ingest/0.1"
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    min_delay_s: float = 1.0
    respect_robots: bool = True
    allow_networks: tuple[str, ...] = ()
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("backoff_s", "max_backoff_s", "min_delay_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.max_redirects < 0 or self.retries < 0:
            raise ValueError("max_redirects and retries must not be negative")
        if not self.user_agent.strip():
            raise ValueError("user_agent must not be empty")
        for net in self.allow_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"allow_networks: {net!r} is not a CIDR block") from exc

    @property
    def robots_agent(self) -> str:
        return self.user_agent.split("/", 1)[0].strip()


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """A response: ``content`` is the body with its content-encoding undone (not transcoded)."""

    url: str
    final_url: str
    status: int
    content: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: dt.datetime
    redirects: tuple[str, ...] = ()

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --- URLs ---------------------------------------------------------------------------------


def canonicalize_url(url: str | None) -> str | None:
    """The canonical form of an http(s) URL: host lower-cased, default port, tracking
    parameters (utm_*, fbclid, gclid ...) and fragment removed (by courlan); None when the
    URL is not an absolute http(s) URL."""
    if not url:
        return None
    try:  # urlsplit raises on a malformed host ("http://["), .port on a bad port
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme.lower() not in SCHEMES or not parts.hostname:
            return None
        parts.port  # noqa: B018 - validates the port
        normalized = courlan.normalize_url(url.strip())
    except (ValueError, AttributeError):
        return None
    return urllib.parse.urldefrag(normalized).url


_CANONICAL_LINK = re.compile(rb"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(rb"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def canonical_link(html: bytes, base_url: str) -> str | None:
    """The canonicalized ``<link rel=canonical href>`` of a page, resolved against
    ``base_url``; None when absent or not http(s)."""
    head = html[: 256 * 1024]
    end = head.lower().find(b"</head")
    if end >= 0:
        head = head[:end]
    for tag in _CANONICAL_LINK.findall(head):
        attrs = {
            m.group(1).lower(): (m.group(2) or m.group(3) or m.group(4) or b"")
            for m in _ATTR.finditer(tag)
        }
        if b"canonical" in attrs.get(b"rel", b"").lower().split() and attrs.get(b"href"):
            href = attrs[b"href"].decode("utf-8", "replace").strip()
            return canonicalize_url(urllib.parse.urljoin(base_url, href))
    return None


# --- Charsets -----------------------------------------------------------------------------


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    # WHATWG: a page labelled latin-1 or ascii is decoded as windows-1252.
    return "cp1252" if name in ("latin-1", "iso8859-1", "ascii") else name


def charset_of(content_type: str | None) -> str | None:
    """The codec named by a Content-Type header's charset parameter, if Python knows it."""
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return _codec(match.group(1)) if match else None


_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
    re.IGNORECASE,
)


def detect_charset(content: bytes, content_type: str | None = None) -> str:
    """The codec to decode ``content`` with.

    Order: a byte-order mark; valid UTF-8 with non-ASCII bytes (a far stronger signal than a
    header, which servers often get wrong); the header's charset; the document's own
    ``<meta charset>`` or XML declaration; charset-normalizer's guess; cp1252.
    """
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if content.startswith(bom):
            return name
    if not content.isascii():
        try:
            content.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    match = _META_CHARSET.search(content[:8192])
    declared = [charset_of(content_type)]
    if match:
        declared.append(_codec((match.group(1) or match.group(2)).decode("ascii", "replace")))
    for label in declared:
        if label and label not in ("utf-8", "utf-16", "utf-32"):
            try:
                content.decode(label)
                return label
            except UnicodeDecodeError:
                continue
    if content.isascii():
        return "utf-8"
    matches = charset_normalizer.from_bytes(content[:200_000])
    best = matches.best()
    if best is None:
        return "cp1252"
    # Short Western texts fit several single-byte charsets equally well; among equals prefer
    # windows-1252, the web's most common legacy charset.
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    if any("cp1252" in m.could_be_from_charset for m in tied):
        return "cp1252"
    return _codec(best.encoding) or "cp1252"


def to_utf8(content: bytes, content_type: str | None = None) -> tuple[bytes, str]:
    """``content`` re-encoded as UTF-8 (without BOM), and the charset it was decoded from."""
    name = detect_charset(content, content_type)
    text = content.decode(name, "replace")
    return text.lstrip("\ufeff").encode("utf-8"), name


# --- Safety -------------------------------------------------------------------------------


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for globally routable unicast addresses that are not a metadata service."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


@dataclasses.dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        netloc = _bracket(self.host) + ("" if self.port == default else f":{self.port}")
        return f"{self.scheme}://{netloc}"

    @property
    def request_path(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_target(url: str) -> Target:
    """Split ``url`` into what a request needs; refuses schemes other than http(s).

    Raises:
        FetchError: reason ``blocked_scheme`` or ``bad_url``.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("bad_url", str(exc), url) from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise FetchError("blocked_scheme", f"scheme {scheme or '(none)'!r} is not fetched", url)
    if not parts.hostname:
        raise FetchError("bad_url", "no host in URL", url)
    if parts.username or parts.password:
        raise FetchError("bad_url", "credentials in URL are not sent", url)
    return Target(url, scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80))


Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_address(
    target: Target,
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    resolver: Resolver = resolve_host,
) -> str:
    """The address to connect to for ``target``: every resolved address must be public or
    allow-listed (one bad answer refuses the host, so round-robin DNS cannot sneak one in).

    Raises:
        FetchError: reason ``dns_error`` or ``blocked_address``.
    """
    try:
        addresses = resolver(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise FetchError("dns_error", f"cannot resolve {target.host}: {exc}", target.url) from exc
    if not addresses:
        raise FetchError("dns_error", f"{target.host} has no address", target.url)
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        allowed = any(ip in net for net in allow if ip.version == net.version)
        if not allowed and not is_public_address(ip):
            raise FetchError(
                "blocked_address",
                f"{target.host} resolves to non-public address {ip}",
                target.url,
            )
    return addresses[0]


# --- Bodies -------------------------------------------------------------------------------


def _decoder(encoding: str | None, url: str) -> Any:
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if enc == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise FetchError("unsupported_encoding", f"content-encoding {enc!r}", url)


def read_body(chunks: Iterator[bytes], encoding: str | None, max_bytes: int, url: str) -> bytes:
    """Join ``chunks`` and undo the content-encoding, refusing more than ``max_bytes`` on the
    wire or after decompression (the decompressor is never asked for more than the cap).

    Raises:
        FetchError: reason ``too_large``, ``bad_encoding`` or ``unsupported_encoding``.
    """
    decoder = _decoder(encoding, url)
    out = bytearray()
    wire = 0
    for chunk in chunks:
        wire += len(chunk)
        if wire > max_bytes:
            raise FetchError("too_large", f"body exceeds {max_bytes} bytes", url)
        if decoder is None:
            out += chunk
        else:
            try:
                out += decoder.decompress(chunk, max_bytes + 1 - len(out))
            except zlib.error as exc:
                raise FetchError("bad_encoding", f"cannot decompress body: {exc}", url) from exc
            if decoder.unconsumed_tail:
                raise FetchError("too_large", f"decompressed body exceeds {max_bytes} bytes", url)
        if len(out) > max_bytes:
            raise FetchError("too_large", f"body exceeds {max_bytes} bytes", url)
    if decoder is not None:
        try:
            out += decoder.flush()
        except zlib.error as exc:
            raise FetchError("bad_encoding", f"cannot decompress body: {exc}", url) from exc
        if len(out) > max_bytes:
            raise FetchError("too_large", f"decompressed body exceeds {max_bytes} bytes", url)
    return bytes(out)


def retry_after_s(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or dt.datetime.now(UTC))).total_seconds())


# --- The fetcher --------------------------------------------------------------------------


@dataclasses.dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Fetcher:
    """The one way news-ingest fetches: build one per worker (``DoFn.setup``) and reuse it.

    Thread-safe: requests to one host are serialized by a per-host lock; different hosts
    proceed in parallel. The politeness state and the robots.txt cache live in the instance,
    so they hold within one worker; the pipeline groups requests by host so that one host's
    requests meet a single instance.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver = resolve_host,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.policy = policy
        self._allow = tuple(ipaddress.ip_network(n, strict=False) for n in policy.allow_networks)
        self._resolver = resolver
        self._sleep = sleep
        self._clock = clock
        self._guard = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._next_ok: dict[str, float] = {}
        self._host_delay: dict[str, float] = {}
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        # Hosts that asked (Retry-After) to wait longer than max_backoff_s: until, reason.
        self._refused_until: dict[str, tuple[float, str]] = {}

    def close(self) -> None:
        with self._guard:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()

    # politeness

    @contextmanager
    def _host_turn(self, host: str) -> Iterator[None]:
        with self._guard:
            lock = self._host_locks.setdefault(host, threading.Lock())
        with lock:
            wait = self._next_ok.get(host, 0.0) - self._clock()
            if wait > 0:
                self._sleep(wait)
            try:
                yield
            finally:
                delay = max(self.policy.min_delay_s, self._host_delay.get(host, 0.0))
                self._next_ok[host] = max(self._next_ok.get(host, 0.0), self._clock() + delay)

    def _hold_host(self, host: str, seconds: float) -> None:
        self._next_ok[host] = max(self._next_ok.get(host, 0.0), self._clock() + seconds)

    # connections

    def _pool(self, target: Target, address: str) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        with self._guard:
            pool = self._pools.get(key)
            if pool is None:
                if target.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        target.port,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=self.policy.ca_bundle or certifi.where(),
                        server_hostname=target.host,
                        assert_hostname=target.host,
                        maxsize=1,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, target.port, maxsize=1)
                self._pools[key] = pool
            return pool

    def _request_once(self, target: Target, headers: dict[str, str]) -> _Response:
        address = checked_address(target, self._allow, self._resolver)
        pool = self._pool(target, address)
        default = 443 if target.scheme == "https" else 80
        host_header = _bracket(target.host) + ("" if target.port == default else f":{target.port}")
        policy = self.policy
        deadline = self._clock() + policy.total_timeout_s
        try:
            resp = pool.urlopen(
                "GET",
                target.request_path,
                headers={"Host": host_header, **headers},
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(
                    connect=policy.connect_timeout_s, read=policy.read_timeout_s
                ),
            )
        except (TimeoutError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise FetchError("timeout", str(exc), target.url, retryable=True) from exc
        except SSLError as exc:
            raise FetchError("tls_error", str(exc), target.url) from exc
        except (HTTPError, OSError) as exc:
            raise FetchError("connection_error", str(exc), target.url, retryable=True) from exc
        resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        ok = False
        try:
            length = resp_headers.get("content-length", "")
            if length.isdigit() and int(length) > policy.max_bytes:
                raise FetchError(
                    "too_large", f"content-length {length} exceeds {policy.max_bytes}", target.url
                )

            def chunks() -> Iterator[bytes]:
                while chunk := resp.read1(CHUNK):
                    if self._clock() > deadline:
                        raise FetchError(
                            "timeout",
                            f"response took longer than {policy.total_timeout_s}s",
                            target.url,
                            retryable=True,
                        )
                    yield chunk

            try:
                body = read_body(
                    chunks(), resp_headers.get("content-encoding"), policy.max_bytes, target.url
                )
            except (TimeoutError, ReadTimeoutError) as exc:
                raise FetchError("timeout", str(exc), target.url, retryable=True) from exc
            except (ProtocolError, HTTPError, OSError) as exc:
                raise FetchError("connection_error", str(exc), target.url, True) from exc
            ok = True
            return _Response(resp.status, resp_headers, body)
        finally:
            if ok:
                resp.release_conn()
            else:
                # The rest of the body is unread: the connection cannot be reused.
                resp.close()
                pool.close()
                with self._guard:
                    self._pools.pop((target.scheme, address, target.port, target.host), None)

    def _request(self, target: Target, headers: dict[str, str]) -> _Response:
        policy = self.policy
        refused = self._refused_until.get(target.host)
        if refused is not None and refused[0] > self._clock():
            raise FetchError(refused[1], "the host asked to wait past max_backoff_s", target.url)
        attempt = 0
        while True:
            error: FetchError | None = None
            resp: _Response | None = None
            with self._host_turn(target.host):
                try:
                    resp = self._request_once(target, headers)
                except FetchError as exc:
                    if not exc.retryable:
                        raise
                    error = exc
            if resp is not None and resp.status not in RETRY_STATUSES:
                return resp
            asked = retry_after_s(resp.headers.get("retry-after")) if resp is not None else None
            if resp is not None and asked is not None:
                # The server's wish holds for the host's next requests too, retried or not.
                self._hold_host(target.host, min(asked, policy.max_backoff_s))
                if asked > policy.max_backoff_s:
                    reason = f"http_{resp.status}"
                    self._refused_until[target.host] = (self._clock() + asked, reason)
                    raise FetchError(
                        reason, f"Retry-After {asked:.0f}s exceeds max_backoff_s", target.url
                    )
            if attempt >= policy.retries:
                if error is not None:
                    raise error
                assert resp is not None
                return resp
            wait = max(policy.backoff_s * (2**attempt), asked or 0.0)
            self._hold_host(target.host, min(wait, policy.max_backoff_s))
            attempt += 1

    # robots.txt

    def _robots_for(self, target: Target) -> urllib.robotparser.RobotFileParser | str:
        origin = target.origin
        with self._guard:
            cached = self._robots.get(origin)
        if cached is not None:
            return cached
        rules: urllib.robotparser.RobotFileParser | str
        try:
            result = self._fetch(origin + "/robots.txt", {}, robots=False)
        except FetchError as exc:
            # RFC 9309: an unreachable robots.txt means complete disallow, except that
            # a client error (4xx: no robots.txt) means no rules.
            if exc.reason.startswith("http_4"):
                rules = "allow"
            else:
                rules = f"robots.txt unavailable ({exc.reason})"
        else:
            parser = urllib.robotparser.RobotFileParser()
            text = result.content.decode(detect_charset(result.content), "replace")
            parser.parse(text.splitlines())
            rules = parser
            delay = parser.crawl_delay(self.policy.robots_agent)
            if delay:
                self._host_delay[target.host] = min(float(delay), self.policy.max_backoff_s)
        with self._guard:
            self._robots[origin] = rules
        return rules

    def _check_robots(self, target: Target) -> None:
        rules = self._robots_for(target)
        if rules == "allow":
            return
        if isinstance(rules, str):
            raise FetchError("robots_unavailable", rules, target.url)
        if not rules.can_fetch(self.policy.robots_agent, target.url):
            raise FetchError("robots_disallowed", "disallowed by robots.txt", target.url)

    # the fetch

    def _fetch(self, url: str, extra: dict[str, str], robots: bool) -> FetchResult:
        policy = self.policy
        headers = {
            "User-Agent": policy.user_agent,
            "Accept-Encoding": "gzip, deflate",
            **extra,
        }
        seen = {url}
        redirects: list[str] = []
        current = url
        while True:
            target = parse_target(current)
            if robots and policy.respect_robots:
                # Refuse a bad address as such before asking its robots.txt.
                checked_address(target, self._allow, self._resolver)
                self._check_robots(target)
            resp = self._request(target, headers)
            location = resp.headers.get("location")
            if resp.status in REDIRECT_STATUSES and location:
                nxt = urllib.parse.urljoin(current, location.strip())
                if nxt in seen:
                    raise FetchError("redirect_loop", f"redirect back to {nxt}", url)
                if len(redirects) >= policy.max_redirects:
                    raise FetchError(
                        "too_many_redirects", f"more than {policy.max_redirects} redirects", url
                    )
                seen.add(nxt)
                redirects.append(nxt)
                current = nxt
                continue
            if resp.status >= 400 or (resp.status >= 300 and resp.status != 304):
                raise FetchError(f"http_{resp.status}", f"HTTP status {resp.status}", url)
            return FetchResult(
                url=url,
                final_url=current,
                status=resp.status,
                content=resp.body,
                content_type=resp.headers.get("content-type"),
                etag=resp.headers.get("etag"),
                last_modified=resp.headers.get("last-modified"),
                fetched_at=dt.datetime.now(UTC),
                redirects=tuple(redirects),
            )

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
    ) -> FetchResult:
        """GET ``url`` politely and safely, following redirects.

        Args:
            url: an absolute http(s) URL.
            etag: validator of a copy already held (sends ``If-None-Match``).
            last_modified: date of a copy already held (sends ``If-Modified-Since``).
            accept: the ``Accept`` header.

        Returns:
            The response; ``not_modified`` is true for a 304 to a conditional request.

        Raises:
            FetchError: refused (scheme, address, robots.txt), failed (timeout, connection,
                HTTP status after retries) or too large; ``reason`` says which.
        """
        extra: dict[str, str] = {}
        if etag:
            extra["If-None-Match"] = etag
        if last_modified:
            extra["If-Modified-Since"] = last_modified
        if accept:
            extra["Accept"] = accept
        return self._fetch(url, extra, robots=True)


# --- Pages as documents -------------------------------------------------------------------

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


@dataclasses.dataclass(frozen=True)
class PageRequest:
    """A page to fetch and the document it becomes (its kind and hints)."""

    url: str
    source_ref: str
    source_kind: str
    hints: tuple[tuple[str, Any], ...] = ()


def host_key(url: str) -> str:
    """The politeness key of a URL: its lower-cased host ('' when it has none)."""
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def page_dead(
    request: PageRequest, reason: str, message: str, error_type: str | None
) -> DeadLetter:
    return DeadLetter(
        source_ref=request.source_ref,
        stage=STAGE,
        reason=reason,
        error_type=error_type,
        error_message=message[:2000],
        source_kind=request.source_kind,
        url=request.url,
    )


def page_document(request: PageRequest, result: FetchResult) -> RawDocument | DeadLetter:
    """The document of a fetched page: the body transcoded to UTF-8, the request's hints plus
    ``canonical_url`` (the page's ``<link rel=canonical>``, else its canonicalized final URL).
    """
    mime = (result.content_type or "text/html").split(";", 1)[0].strip().lower()
    if mime not in HTML_TYPES:
        return page_dead(request, "not_html", f"content-type {mime}", None)
    body, _charset = to_utf8(result.content, result.content_type)
    canonical = canonical_link(body, result.final_url) or canonicalize_url(result.final_url)
    hints = tuple((k, v) for k, v in request.hints if k != "canonical_url")
    return RawDocument(
        source_ref=request.source_ref,
        source_kind=request.source_kind,
        content=body,
        url=request.url,
        fetched_at=result.fetched_at,
        content_type=f"{mime}; charset=utf-8",
        hints=hints + ((("canonical_url", canonical),) if canonical else ()),
    )


class FetcherDoFn(beam.DoFn):
    """A DoFn that owns one ``Fetcher`` (its connection pools and per-host politeness state) per
    DoFn instance: built in ``setup``, closed in ``teardown``, never per element."""

    def __init__(self, policy: FetchPolicy):
        self.policy = policy
        self.fetcher: Fetcher | None = None

    def setup(self) -> None:
        self.fetcher = Fetcher(self.policy)

    def teardown(self) -> None:
        if self.fetcher is not None:
            self.fetcher.close()


class _FetchHostPages(FetcherDoFn):
    """Fetches all pages of one host in turn; a URL asked for twice is fetched once."""

    def __init__(self, policy: FetchPolicy):
        super().__init__(policy)
        self.fetched = Metrics.counter(STAGE, "fetched")
        self.reused = Metrics.counter(STAGE, "reused")

    def process(
        self, keyed: tuple[str, Iterable[PageRequest]]
    ) -> Iterator[RawDocument | DeadLetter]:
        assert self.fetcher is not None
        _host, requests = keyed
        done: dict[str, FetchResult | FetchError] = {}
        for request in sorted(requests, key=lambda r: (r.url, r.source_ref, repr(r.hints))):
            key = canonicalize_url(request.url) or request.url
            outcome = done.get(key)
            if outcome is None:
                try:
                    outcome = self.fetcher.fetch(request.url, accept=", ".join(HTML_TYPES[:2]))
                    self.fetched.inc()
                except FetchError as exc:
                    outcome = exc
                done[key] = outcome
            else:
                self.reused.inc()
            if isinstance(outcome, FetchError):
                yield page_dead(request, outcome.reason, outcome.message, "FetchError")
            else:
                yield page_document(request, outcome)


class FetchPages(beam.PTransform):
    """PageRequest -> (RawDocument, DeadLetter).

    Requests are grouped by host (a ``GroupByKey``), so all fetches to one host run in turn in
    one worker, whatever the number of workers: the per-host politeness (one request at a
    time, ``min_delay_s``, Retry-After, Crawl-delay) holds across the whole run. Different
    hosts are fetched in parallel, one per worker.
    """

    def __init__(self, policy: FetchPolicy):
        super().__init__()
        if not isinstance(policy, FetchPolicy):
            raise TypeError("FetchPages needs a FetchPolicy")
        self.policy = policy

    def expand(self, requests):  # type: ignore[no-untyped-def]
        return (
            requests
            | "KeyPagesByHost" >> beam.Map(lambda r: (host_key(r.url), r))
            | "GroupPagesByHost" >> beam.GroupByKey()
            | "FetchHostPages" >> ApplyStage(STAGE, _FetchHostPages(self.policy))
        )
