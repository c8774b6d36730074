"""The HTTP client: the one polite and safe fetch used for feeds, pages and robots.txt.

Everything that goes to the network goes through ``Fetcher.fetch``:

* Safety: only ``http``/``https``; the host is resolved first and every address it resolves to
  must be public (no loopback, private, link-local, shared, multicast or cloud-metadata
  address, nor an IPv6 form that carries one: IPv4-mapped, -compatible, -translated, 6to4,
  NAT64) unless it is in ``fetch.allow_networks``; the connection then goes to the checked
  address (pinned, so a second DNS answer cannot swap it). Each redirect hop is checked again.
  Bodies are capped, after decompression too (gzip bombs), and so is the time one response
  takes, headers included (a watchdog closes the socket at the deadline).
* Politeness: one request at a time per host (a lock), a minimum delay between requests to a
  host, ``Retry-After`` honoured (it also holds back the host's next request), robots.txt
  honoured (RFC 9309, with its Crawl-delay), retries with exponential backoff on 5xx, 429,
  timeouts and connection errors.
* Conditional GET: ``etag``/``last_modified`` become ``If-None-Match``/``If-Modified-Since``;
  a 304 is returned as a result with ``not_modified``.

Failures raise ``FetchError`` with a reason code named after what happened
(``connection_refused``, ``dns_error``, ``timeout``, ``tls_error``, ``connection_error``,
``http_<status>``, ``blocked_address`` ...); callers turn it into a dead letter. A refusal's
message names the setting that would allow it.

The client is urllib3 (not requests) because pinning the connection to the checked address and
reading the raw, still-compressed body in bounded chunks are both first-class there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import certifi
import urllib3
from news_ingest.transforms.schema import UTC
from news_ingest.transforms.web.robots import ALLOW_ALL, RobotsRules, parse_robots, unavailable
from news_ingest.transforms.web.urls import SCHEMES
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 64 * 1024

# Addresses that are global by the registry but still reach a cloud provider's metadata
# service from inside its network.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)
# IPv6 prefixes whose last 32 bits are an IPv4 address that the network may reach for them:
# IPv4-compatible (deprecated), IPv4-translated (RFC 2765), NAT64 (RFC 6052).
_EMBEDDING_V4 = tuple(ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
# NAT64 for local use (RFC 8215): global by the registry, but it translates to any IPv4.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")

# Reasons of failures that say the host cannot be reached at all (not what it answered).
UNREACHABLE = ("connection_refused", "connection_error", "dns_error", "timeout", "tls_error")
# How long robots.txt rules are kept, and how soon an unavailable one is asked for again.
ROBOTS_TTL_S = 24 * 3600.0
ROBOTS_RETRY_S = 300.0


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
    """How to fetch: timeouts, caps, politeness and safety settings (the ``fetch:`` section).

    Attributes:
        user_agent: sent with every request; its product token (before ``/``) is matched
            against robots.txt groups.
        connect_timeout_s: seconds to establish a connection.
        read_timeout_s: seconds a single socket read may wait.
        total_timeout_s: seconds one response may take in all, headers and body (defeats
            slow drips).
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
    """A response: ``content`` is the body with its content-encoding undone (not transcoded);
    ``final_url`` is the URL that answered, after ``redirects``."""

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


# --- Safety -------------------------------------------------------------------------------


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for globally routable unicast addresses that are not a metadata service; an IPv6
    address that carries an IPv4 one (mapped, compatible, translated, 6to4, NAT64) is judged
    by the IPv4 address it carries."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif any(ip in net for net in _EMBEDDING_V4):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
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

    The host is lower-cased, put in its ASCII (IDNA) form and loses a trailing dot
    (``localhost.`` is ``localhost``), so that the name checked, resolved, sent and verified is
    one and the same.

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
        raise FetchError(
            "blocked_scheme", f"scheme {scheme or '(none)'!r} is not fetched (http, https)", url
        )
    if parts.username is not None or parts.password is not None:
        raise FetchError(
            "bad_url",
            f"user info in the URL ({parts.username}@...): credentials are not sent, and the"
            f" host would be {parts.hostname!r}",
            url,
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise FetchError("bad_url", "no host in URL", url)
    if ":" not in host:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise FetchError("bad_url", f"host {host!r} is not a valid name: {exc}", url) from exc
    return Target(url, scheme, host.lower(), port or (443 if scheme == "https" else 80))


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
            net = f"{ip}/{ip.max_prefixlen}"
            raise FetchError(
                "blocked_address",
                f"{target.host} resolves to non-public address {ip}; allow it with"
                f" fetch.allow_networks (e.g. [{net}])",
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
    raise FetchError("unsupported_encoding", f"content-encoding {enc!r} (gzip, deflate)", url)


def _too_large(what: str, max_bytes: int, url: str) -> FetchError:
    return FetchError("too_large", f"{what} exceeds fetch.max_bytes ({max_bytes})", url)


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
            raise _too_large("body", max_bytes, url)
        if decoder is None:
            out += chunk
        else:
            try:
                out += decoder.decompress(chunk, max_bytes + 1 - len(out))
            except zlib.error as exc:
                raise FetchError("bad_encoding", f"cannot decompress body: {exc}", url) from exc
            if decoder.unconsumed_tail:
                raise _too_large("decompressed body", max_bytes, url)
        if len(out) > max_bytes:
            raise _too_large("body", max_bytes, url)
    if decoder is not None:
        try:
            out += decoder.flush()
        except zlib.error as exc:
            raise FetchError("bad_encoding", f"cannot decompress body: {exc}", url) from exc
        if len(out) > max_bytes:
            raise _too_large("decompressed body", max_bytes, url)
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


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes is short; a bound guards against cycles
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def network_error(exc: BaseException, url: str, policy: FetchPolicy) -> FetchError:
    """The ``FetchError`` of an exception raised while connecting or reading, named after
    what happened. urllib3 2 derives ``NewConnectionError`` (refused, unreachable) from
    ``ConnectTimeoutError``, so the connection errors are told apart before the timeouts."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, SSLError) or _caused_by(exc, ssl.SSLError):
        return FetchError("tls_error", str(exc), url)
    if isinstance(exc, NameResolutionError) or _caused_by(exc, socket.gaierror):
        return FetchError("dns_error", str(exc), url)
    if _caused_by(exc, ConnectionRefusedError):
        return FetchError("connection_refused", f"connection refused: {exc}", url, True)
    if isinstance(exc, NewConnectionError):
        return FetchError("connection_error", str(exc), url, True)
    if isinstance(exc, ConnectTimeoutError):
        return FetchError(
            "timeout", f"no connection within fetch.connect_timeout_s: {exc}", url, True
        )
    if isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return FetchError("timeout", f"no answer within fetch.read_timeout_s: {exc}", url, True)
    return FetchError("connection_error", str(exc), url, True)


# --- The deadline -------------------------------------------------------------------------

_CURRENT = threading.local()


class _Watch:
    """The connection one request uses, so that a watchdog can close its socket when the
    request's deadline passes (a socket timeout bounds one read, not a slow drip of many)."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.fired = False
        self._done = False
        self._lock = threading.Lock()

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = getattr(self.conn, "sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> bool:
        """Stop watching; True when the deadline had already closed the socket."""
        with self._lock:
            self._done = True
            return self.fired


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.conn = self
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:
            watch.conn = self
        super().request(*args, **kwargs)


@contextmanager
def _deadline(seconds: float) -> Iterator[_Watch]:
    watch = _Watch()
    timer = threading.Timer(seconds, watch.expire)
    timer.daemon = True
    _CURRENT.watch = watch
    timer.start()
    try:
        yield watch
    finally:
        timer.cancel()
        _CURRENT.watch = None


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
        # origin -> (until, rules): RFC 9309 asks not to keep a robots.txt past 24 hours.
        self._robots: dict[str, tuple[float, RobotsRules]] = {}
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
                    pool.ConnectionCls = _WatchedHTTPSConnection
                else:
                    pool = urllib3.HTTPConnectionPool(address, target.port, maxsize=1)
                    pool.ConnectionCls = _WatchedHTTPConnection
                self._pools[key] = pool
            return pool

    def _request_once(self, target: Target, headers: dict[str, str]) -> _Response:
        address = checked_address(target, self._allow, self._resolver)
        pool = self._pool(target, address)
        default = 443 if target.scheme == "https" else 80
        host_header = _bracket(target.host) + ("" if target.port == default else f":{target.port}")
        policy = self.policy
        over = FetchError(
            "timeout",
            f"response took longer than fetch.total_timeout_s ({policy.total_timeout_s}s)",
            target.url,
            retryable=True,
        )
        ok = False
        resp: Any = None
        with _deadline(policy.total_timeout_s) as watch:
            try:
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
                except (HTTPError, OSError) as exc:
                    raise over if watch.fired else network_error(exc, target.url, policy) from exc
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                length = resp_headers.get("content-length", "")
                if length.isdigit() and int(length) > policy.max_bytes:
                    raise _too_large(f"content-length {length}", policy.max_bytes, target.url)

                def chunks() -> Iterator[bytes]:
                    while chunk := resp.read1(CHUNK):
                        if watch.fired:
                            raise over
                        yield chunk
                    if watch.fired:  # the watchdog ended the body: it is not complete
                        raise over

                try:
                    body = read_body(
                        chunks(), resp_headers.get("content-encoding"), policy.max_bytes, target.url
                    )
                except (ProtocolError, HTTPError, OSError) as exc:
                    raise over if watch.fired else network_error(exc, target.url, policy) from exc
                ok = True
                return _Response(resp.status, resp_headers, body)
            finally:
                expired = watch.disarm()
                if resp is not None and ok and not expired:
                    resp.release_conn()
                elif resp is not None or expired:
                    # The rest of the body is unread: the connection cannot be reused.
                    if resp is not None:
                        resp.close()
                    pool.close()
                    with self._guard:
                        self._pools.pop((target.scheme, address, target.port, target.host), None)

    def _request(self, target: Target, headers: dict[str, str]) -> _Response:
        policy = self.policy
        refused = self._refused_until.get(target.host)
        if refused is not None and refused[0] > self._clock():
            raise FetchError(
                refused[1], "the host asked to wait longer than fetch.max_backoff_s", target.url
            )
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
                        reason,
                        f"Retry-After {asked:.0f}s exceeds fetch.max_backoff_s"
                        f" ({policy.max_backoff_s:.0f}s)",
                        target.url,
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

    def _robots_for(self, target: Target) -> RobotsRules:
        origin = target.origin
        with self._guard:
            cached = self._robots.get(origin)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        rules: RobotsRules
        try:
            result = self._fetch(origin + "/robots.txt", {}, robots=False)
        except FetchError as exc:
            # RFC 9309: an unreachable robots.txt means complete disallow, except that
            # a client error (4xx: no robots.txt) means no rules.
            if exc.reason.startswith("http_4"):
                rules = ALLOW_ALL
            else:
                rules = unavailable(exc.reason, exc.message)
        else:
            rules = parse_robots(result.content)
            delay = rules.crawl_delay(self.policy.robots_agent)
            if delay:
                self._host_delay[target.host] = min(delay, self.policy.max_backoff_s)
        keep = ROBOTS_RETRY_S if rules.unavailable else ROBOTS_TTL_S
        with self._guard:
            self._robots[origin] = (self._clock() + keep, rules)
        return rules

    def _check_robots(self, target: Target) -> None:
        rules = self._robots_for(target)
        if rules.unavailable in UNREACHABLE:
            # The host itself cannot be reached: say what happened, not that robots.txt refused.
            raise FetchError(
                rules.unavailable,
                f"{target.origin} cannot be reached (asking for robots.txt): {rules.message}",
                target.url,
            )
        if rules.unavailable is not None:
            raise FetchError(
                "robots_unavailable",
                f"robots.txt unavailable ({rules.unavailable}), which RFC 9309 reads as"
                " disallow all; fetch.respect_robots: false skips the check",
                target.url,
            )
        if not rules.allows(target.url, self.policy.robots_agent):
            raise FetchError(
                "robots_disallowed",
                f"disallowed by robots.txt for agent {self.policy.robots_agent!r}"
                " (from fetch.user_agent); fetch.respect_robots: false skips the check",
                target.url,
            )

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
                        "too_many_redirects",
                        f"more than fetch.max_redirects ({policy.max_redirects}) redirects",
                        url,
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
            The response; ``not_modified`` is true for a 304 to a conditional request, and
            ``final_url`` is the URL that answered.

        Raises:
            FetchError: refused (scheme, address, robots.txt), failed (connection refused,
                DNS, timeout, TLS, HTTP status after retries) or too large; ``reason`` says
                which.
        """
        extra: dict[str, str] = {}
        if etag:
            extra["If-None-Match"] = etag
        if last_modified:
            extra["If-Modified-Since"] = last_modified
        if accept:
            extra["Accept"] = accept
        return self._fetch(url, extra, robots=True)
