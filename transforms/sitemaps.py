"""Sitemaps and URL lists: news discovery besides feeds.

A sitemap source (a URL or a file, gzip'd or not) is read through the one ``Fetcher`` (the
polite, address-checked client of ``news_ingest.transforms.fetch``) and parsed; a sitemap index is
followed to its sitemaps, a ``<urlset>`` gives page URLs, and a Google News sitemap adds
``news:title``, ``news:publication_date``, ``news:keywords``, ``news:language`` and
``news:publication/news:name``. Each URL becomes a ``PageRequest`` for
``news_ingest.transforms.fetch.FetchPages`` (the path feed entries take), with those fields as ``hints``
(``title, published, tags, language, publisher``): fallbacks for the page's own metadata.

A URL list is a text file of page URLs, one per line (blank lines and ``#`` comments
ignored), read on the launcher; its URLs become page requests without hints.

The parser is lxml with a locked-down parser, not ultimate-sitemap-parser. usp could parse
bytes fetched by our own client (``usp.tree.sitemap_from_str``, or a custom web client), but it
is licensed GPL-3.0-or-later, which this Apache-2.0 package cannot take as a dependency. lxml
is already one; the parser below resolves no entities, loads no DTD and never touches the
network, and documents that declare entities are refused before it sees them
(``news_ingest.transforms.feeds.refuse_entity_declarations``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from lxml import etree
from news_ingest.transforms.feeds import refuse_entity_declarations
from news_ingest.transforms.fetch import (  # the one import of the HTTP client in this module
    Fetcher,
    FetcherDoFn,
    FetchError,
    FetchPolicy,
    PageRequest,
    host_key,
)
from news_ingest.transforms.schema import UTC, DeadLetter
from news_ingest.transforms.stage import ApplyStage, StageError, dead_letter

STAGE = "sitemaps"

# Source kinds of the pages found here (the values of ``source_kind``).
SOURCE_SITEMAP = "sitemap"
SOURCE_URL_LIST = "url"

SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, text/plain;q=0.5"
DEFAULT_MAX_DEPTH = 3
DEFAULT_MAX_SITEMAPS = 1000
# The sitemaps.org protocol's own limit for one sitemap file.
DEFAULT_MAX_URLS = 50_000

INDEX = "sitemapindex"
URLSET = "urlset"
TEXT = "text"


@dataclasses.dataclass(frozen=True)
class SitemapSource:
    """One sitemap, sitemap index or news sitemap to read: an http(s) URL or a file path."""

    url: str

    @property
    def is_remote(self) -> bool:
        return urllib.parse.urlsplit(self.url).scheme.lower() in ("http", "https")


@dataclasses.dataclass(frozen=True)
class SitemapEntry:
    """One ``<url>`` of a sitemap: the page and its news fields as hints."""

    sitemap_ref: str
    loc: str
    hints: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class ParsedSitemap:
    kind: str
    sitemaps: tuple[str, ...]
    entries: tuple[SitemapEntry, ...]


# --- Reading ------------------------------------------------------------------------------


def gunzip_capped(content: bytes, max_bytes: int, ref: str) -> bytes:
    """``content`` gunzipped when it is gzip (by its magic bytes: sitemaps are often served
    as ``.xml.gz`` without a Content-Encoding), never inflating past ``max_bytes``.

    Raises:
        StageError: reason ``too_large`` or ``bad_encoding``.
    """
    if not content.startswith(b"\x1f\x8b"):
        return content
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(content, max_bytes + 1)
    except zlib.error as exc:
        raise StageError(STAGE, "bad_encoding", f"{ref}: cannot gunzip: {exc}") from exc
    if len(out) > max_bytes or decomp.unconsumed_tail:
        raise StageError(STAGE, "too_large", f"{ref}: gunzipped sitemap exceeds {max_bytes} bytes")
    if not decomp.eof:
        raise StageError(STAGE, "bad_encoding", f"{ref}: truncated gzip stream")
    return out


def read_file_capped(path: str, max_bytes: int) -> bytes:
    """The raw bytes of a sitemap or URL-list file, local or on any file system Beam knows
    (``gs://``, ``s3://``), refusing more than ``max_bytes``.

    Raises:
        StageError: reason ``too_large``.
        OSError: the file cannot be read.
    """
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    # Uncompressed: gzip is recognised by its bytes (gunzip_capped) and inflated under a cap.
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise StageError(STAGE, "too_large", f"{path}: file exceeds {max_bytes} bytes")
    return data


def read_sitemap(fetcher: Fetcher | None, ref: str, max_bytes: int) -> tuple[bytes, str]:
    """The (gunzipped) bytes of a sitemap and the reference its relative links resolve
    against (the final URL after redirects, or the file path).

    Raises:
        FetchError: the fetch failed or was refused.
        StageError: too large or badly gzip'd.
        OSError: a file cannot be read.
    """
    if SitemapSource(ref).is_remote:
        assert fetcher is not None
        result = fetcher.fetch(ref, accept=SITEMAP_ACCEPT)
        return gunzip_capped(result.content, max_bytes, ref), result.final_url
    return gunzip_capped(read_file_capped(ref, max_bytes), max_bytes, ref), ref


# --- Parsing ------------------------------------------------------------------------------


def _parser_options() -> dict[str, Any]:
    # No entity expansion, no DTD, no network, no "huge tree" (lxml's own depth and text
    # size limits stay on), comments and processing instructions dropped.
    return {
        "resolve_entities": False,
        "load_dtd": False,
        "no_network": True,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(el: Any, name: str) -> str | None:
    for child in el:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _find(el: Any, name: str) -> Any:
    for child in el:
        if _local(child.tag) == name:
            return child
    return None


def w3c_datetime(value: str | None) -> str | None:
    """An ISO 8601 UTC timestamp from a sitemap's W3C datetime (``2026-11-22``,
    ``2026-11-22T06:00Z``, ``2026-11-22T06:00:00+01:00``); None when unreadable. A date alone
    is midnight UTC; a time without an offset is taken as UTC."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _keywords(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(dict.fromkeys(k.strip() for k in value.split(",") if k.strip()))


def _absolute(loc: str | None, base: str) -> str | None:
    """The absolute http(s) URL of a ``<loc>``; None for anything else (``file:``, ``ftp:``,
    a bare path in a local file), which no sitemap may list."""
    if not loc:
        return None
    url = urllib.parse.urljoin(base if SitemapSource(base).is_remote else "", loc.strip())
    return url if SitemapSource(url).is_remote else None


def _entry(el: Any, ref: str) -> SitemapEntry | None:
    loc = _absolute(_child_text(el, "loc"), ref)
    if loc is None:
        return None
    news = _find(el, "news")
    if news is None:
        return SitemapEntry(ref, loc)
    publication = _find(news, "publication")
    fields = {
        "title": _child_text(news, "title"),
        "published": w3c_datetime(_child_text(news, "publication_date")),
        "tags": _keywords(_child_text(news, "keywords")),
        "language": _child_text(publication, "language") if publication is not None else None,
        "publisher": _child_text(publication, "name") if publication is not None else None,
    }
    hints = tuple((k, v) for k, v in fields.items() if v not in (None, "", ()))
    return SitemapEntry(ref, loc, hints)


def parse_xml_sitemap(content: bytes, ref: str) -> ParsedSitemap:
    """The sitemaps of a ``<sitemapindex>`` or the entries of a ``<urlset>`` (plain or Google
    News), read element by element so a large sitemap is never held as a whole tree.

    Namespaces are matched by local name: many sitemaps get the namespace URI wrong.

    Raises:
        StageError: reason ``xml_entities`` (entity declarations), ``bad_sitemap``
            (ill-formed XML) or ``not_a_sitemap`` (another root element).
    """
    try:
        refuse_entity_declarations(content)
    except StageError as exc:  # the feeds stage's check; the refusal is this stage's
        raise StageError(STAGE, exc.reason, f"{ref}: {exc.message}") from exc
    kind: str | None = None
    sitemaps: list[str] = []
    entries: list[SitemapEntry] = []
    try:
        for event, el in etree.iterparse(
            io.BytesIO(content), events=("start", "end"), **_parser_options()
        ):
            name = _local(el.tag)
            if kind is None:
                if name not in (INDEX, URLSET):
                    raise StageError(STAGE, "not_a_sitemap", f"{ref}: root element <{name}>")
                kind = name
                continue
            if event != "end":
                continue
            if kind == INDEX and name == "sitemap":
                loc = _absolute(_child_text(el, "loc"), ref)
                if loc is not None:
                    sitemaps.append(loc)
                el.clear()
            elif kind == URLSET and name == "url":
                entry = _entry(el, ref)
                if entry is not None:
                    entries.append(entry)
                el.clear()
    except etree.XMLSyntaxError as exc:
        raise StageError(STAGE, "bad_sitemap", f"{ref}: {exc}") from exc
    if kind is None:
        raise StageError(STAGE, "bad_sitemap", f"{ref}: empty document")
    return ParsedSitemap(kind, tuple(sitemaps), tuple(entries))


def parse_text_sitemap(content: bytes, ref: str) -> ParsedSitemap:
    """A sitemaps.org text sitemap: one absolute http(s) URL per line."""
    text = content.decode("utf-8-sig", "replace")
    entries = []
    for line in text.splitlines():
        loc = _absolute(line.strip(), ref) if line.strip() else None
        if loc is not None:
            entries.append(SitemapEntry(ref, loc))
    return ParsedSitemap(TEXT, (), tuple(entries))


def parse_sitemap(content: bytes, ref: str) -> ParsedSitemap:
    """Parse a sitemap index, an XML or news sitemap, or a text sitemap (by its first byte).

    Raises:
        StageError: the sitemap is refused or unusable; ``reason`` says why.
    """
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") or content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return parse_xml_sitemap(content, ref)
    return parse_text_sitemap(content, ref)


# --- Expanding a source -------------------------------------------------------------------


def sitemap_dead(ref: str, error: StageError, error_type: str | None) -> DeadLetter:
    """The dead letter of a sitemap that could not be read or parsed."""
    url = ref if SitemapSource(ref).is_remote else None
    return dead_letter(error, ref, source_kind=SOURCE_SITEMAP, url=url, error_type=error_type)


@dataclasses.dataclass(frozen=True)
class SitemapLimits:
    """How far one sitemap source is followed.

    Attributes:
        max_bytes: largest sitemap body, after gunzip.
        max_depth: index levels followed below the source (an index of sitemaps is 1).
        max_sitemaps: sitemaps read per source, the source included.
        max_urls: page URLs taken per source.
    """

    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = DEFAULT_MAX_DEPTH
    max_sitemaps: int = DEFAULT_MAX_SITEMAPS
    max_urls: int = DEFAULT_MAX_URLS

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_sitemaps", "max_urls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_depth < 0:
            raise ValueError(f"max_depth must not be negative, got {self.max_depth}")


def expand_sitemap(
    fetcher: Fetcher | None, source: SitemapSource, limits: SitemapLimits
) -> Iterator[SitemapEntry | DeadLetter]:
    """Every page entry reachable from ``source``, breadth first through sitemap indexes; a
    sitemap that fails becomes a dead letter and the others go on. A page listed twice is
    taken once (its first listing's hints); a sitemap listed twice is read once."""
    queue: list[tuple[str, int]] = [(source.url, 0)]
    seen_sitemaps = {source.url}
    seen_urls: set[str] = set()
    read = 0
    while queue:
        ref, depth = queue.pop(0)
        if read >= limits.max_sitemaps:
            Metrics.counter(STAGE, "sitemaps_over_cap").inc(len(queue) + 1)
            return
        read += 1
        try:
            content, base = read_sitemap(fetcher, ref, limits.max_bytes)
            parsed = parse_sitemap(content, base)
        except StageError as exc:
            yield sitemap_dead(ref, exc, type(exc).__name__)
            continue
        except FetchError as exc:
            yield sitemap_dead(ref, StageError(STAGE, exc.reason, exc.message), "FetchError")
            continue
        except OSError as exc:
            yield sitemap_dead(ref, StageError(STAGE, "unreadable", str(exc)), type(exc).__name__)
            continue
        Metrics.counter(STAGE, parsed.kind).inc()
        for child in parsed.sitemaps:
            if child in seen_sitemaps:
                continue
            seen_sitemaps.add(child)
            if depth + 1 > limits.max_depth:
                too_deep = StageError(STAGE, "too_deep", f"deeper than {limits.max_depth}")
                yield sitemap_dead(child, too_deep, None)
            else:
                queue.append((child, depth + 1))
        for entry in parsed.entries:
            if entry.loc in seen_urls:
                continue
            if len(seen_urls) >= limits.max_urls:
                Metrics.counter(STAGE, "urls_over_cap").inc()
                continue
            seen_urls.add(entry.loc)
            yield entry


def entry_request(entry: SitemapEntry) -> PageRequest:
    """The page fetch for a sitemap entry: its URL, its news fields as hints."""
    return PageRequest(
        url=entry.loc, source_ref=entry.loc, source_kind=SOURCE_SITEMAP, hints=entry.hints
    )


# --- URL lists ----------------------------------------------------------------------------

_COMMENT = re.compile(r"^\s*(#.*)?$")


def parse_url_list(text: str) -> list[str]:
    """The URLs of a URL list: one per line; blank lines and ``#`` comment lines ignored,
    each URL once, in file order. Lines are kept as written (a bad URL becomes a dead letter
    at the fetch, with its reason)."""
    urls = [line.strip() for line in text.splitlines() if not _COMMENT.match(line)]
    return list(dict.fromkeys(urls))


def load_url_list(path: str, max_bytes: int) -> list[PageRequest]:
    """The page requests of a URL-list file (local or on an object store).

    Raises:
        ValueError: the file cannot be read or is too large.
    """
    try:
        data = gunzip_capped(read_file_capped(path, max_bytes), max_bytes, path)
    except (OSError, StageError) as exc:
        raise ValueError(f"URL list {path}: {exc}") from exc
    return [
        PageRequest(url=url, source_ref=url, source_kind=SOURCE_URL_LIST)
        for url in parse_url_list(data.decode("utf-8-sig", "replace"))
    ]


# --- Beam ---------------------------------------------------------------------------------


class _ExpandHostSitemaps(FetcherDoFn):
    """Expands all sitemap sources of one host in turn with one fetcher (politeness holds per
    host, as for feeds)."""

    def __init__(self, policy: FetchPolicy, limits: SitemapLimits):
        super().__init__(policy)
        self.limits = limits
        self.urls = Metrics.counter(STAGE, "urls")

    def process(
        self, keyed: tuple[str, Iterable[SitemapSource]]
    ) -> Iterator[PageRequest | DeadLetter]:
        _host, sources = keyed
        for source in sorted(set(sources), key=lambda s: s.url):
            for item in expand_sitemap(self.fetcher, source, self.limits):
                if isinstance(item, DeadLetter):
                    yield item
                else:
                    self.urls.inc()
                    yield entry_request(item)


def _source_host(source: SitemapSource) -> str:
    return host_key(source.url) if source.is_remote else ""


class ExpandSitemaps(beam.PTransform):
    """SitemapSource -> (PageRequest, DeadLetter): sources grouped by host, each followed
    through its indexes to page requests for ``FetchPages``."""

    def __init__(self, policy: FetchPolicy, limits: SitemapLimits):
        super().__init__()
        if not isinstance(limits, SitemapLimits):
            raise TypeError("ExpandSitemaps needs SitemapLimits")
        self.dofn = _ExpandHostSitemaps(policy, limits)

    def expand(self, sources):  # type: ignore[no-untyped-def]
        return (
            sources
            | "KeySitemapsByHost" >> beam.Map(lambda s: (_source_host(s), s))
            | "GroupSitemapsByHost" >> beam.GroupByKey()
            | "ExpandHostSitemaps" >> ApplyStage(STAGE, self.dofn)
        )
