"""Feeds: feed lists, feed parsing (RSS, Atom, RDF through feedparser; JSON Feed), polling.

A feed source (a URL or a local file) is polled through the one ``Fetcher`` (conditional GET
when a state folder remembers the validators), parsed, and its entries become page requests
(``news_ingest.transforms.fetch.FetchPages``) whose documents carry the entry's fields as ``hints``:
``title, author, published (ISO 8601), summary, categories, tags, language, guid, publisher``,
fallbacks for the page's own metadata at extraction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import io
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import feedparser
import lxml.html
from apache_beam.metrics import Metrics
from news_ingest.transforms import atomic, files
from news_ingest.transforms.dates import parse_published, to_iso
from news_ingest.transforms.durations import parse_duration
from news_ingest.transforms.fetch import FetcherDoFn, PageRequest
from news_ingest.transforms.schema import SOURCE_FEED, UTC, DeadLetter, RawDocument, stable_id
from news_ingest.transforms.sources import read_capped
from news_ingest.transforms.stage import ApplyStage, StageError, dead_letter
from news_ingest.transforms.web.charsets import sniff_unicode
from news_ingest.transforms.web.http import Fetcher, FetchError, FetchPolicy
from news_ingest.transforms.web.urls import canonicalize_url, host_key

STAGE = "feeds"

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
FEED_KEYS = ("url", "publisher", "language", "tags", "poll_interval")
JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")
DEFAULT_POLL_INTERVAL_S = 3600.0
DEFAULT_MAX_ENTRIES = 1000


# --- Feed lists ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FeedSource:
    """One feed to poll, as listed in a feeds list or the config's ``feeds.sources``."""

    url: str
    publisher: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S

    @property
    def is_remote(self) -> bool:
        return urllib.parse.urlsplit(self.url).scheme.lower() in ("http", "https")


def parse_interval(value: Any, where: str = "poll_interval") -> float:
    """Seconds from a number of seconds or a string like ``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``.

    Raises:
        ValueError: the value is not a positive duration.
    """
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a duration like 900, '15m' or '1h'") from None
    if seconds <= 0:
        raise ValueError(f"{where}: must be positive, got {value!r}")
    return seconds


def feed_source(data: Any, where: str = "feed", base_dir: str | None = None) -> FeedSource:
    """A ``FeedSource`` from one feeds-list entry (a mapping, or just the URL).

    Relative local paths are resolved against ``base_dir`` (the feeds list's folder).

    Raises:
        ValueError: an unknown key, a missing url or a value of the wrong type; the message
            names ``where``.
    """
    if isinstance(data, str):
        data = {"url": data}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with a url, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FEED_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {FEED_KEYS}")
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{where}.url: a feed needs a url")
    url = url.strip()
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        if not urllib.parse.urlsplit(url).hostname:
            raise ValueError(f"{where}.url: {url!r} has no host")
    elif files.is_remote(url):
        # a feed file on an object store (s3://, gs://): read as a local one is, by Beam
        if not files.has_filesystem(url):
            raise ValueError(
                f"{where}.url: only http(s) URLs, local files and files on a store Beam reads "
                f"(s3://, gs://) are feeds, not {url!r}"
            )
    elif scheme and len(scheme) > 1:
        raise ValueError(f"{where}.url: only http(s) URLs and local files are feeds, not {url!r}")
    elif base_dir and files.is_remote(base_dir) and not os.path.isabs(url):
        url = files.join(base_dir, url)  # a relative entry of a feeds list on a bucket
    elif base_dir and not os.path.isabs(url):
        url = os.path.normpath(os.path.join(base_dir, url))
    for key in ("publisher", "language"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{where}.{key}: expected a string, got {data[key]!r}")
    tags = data.get("tags") or ()
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"{where}.tags: expected a list of strings, got {tags!r}")
    interval = data.get("poll_interval", DEFAULT_POLL_INTERVAL_S)
    return FeedSource(
        url=url,
        publisher=data.get("publisher"),
        language=data.get("language"),
        tags=tuple(tags),
        poll_interval_s=parse_interval(interval, f"{where}.poll_interval"),
    )


def load_feed_list(path: str) -> list[FeedSource]:
    """The feeds of a feeds list: a YAML list of feeds, or a config file whose
    ``feeds.sources`` holds them (so one file serves ``--input`` and ``--config``).

    Raises:
        ValueError: the file cannot be read or a feed is malformed.
    """
    import yaml

    try:
        data = yaml.safe_load(files.read_text(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"feeds list {path}: {exc}") from exc
    where = files.basename(path)
    if isinstance(data, dict):
        section = data.get("feeds")
        data = section.get("sources") if isinstance(section, dict) else section
        where += ":feeds.sources"
    if not isinstance(data, list):
        raise ValueError(f"feeds list {path}: expected a list of feeds (or feeds.sources)")
    base = files.parent(path) if files.is_remote(path) else os.path.dirname(os.path.abspath(path))
    return [feed_source(item, f"{where}[{i}]", base) for i, item in enumerate(data)]


# --- Parsing ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed: its link, its fields as hints, and its own content if any."""

    feed_ref: str
    link: str | None
    hints: tuple[tuple[str, Any], ...]
    content_html: str | None = None

    def hint(self, key: str, default: Any = None) -> Any:
        return dict(self.hints).get(key, default)


@dataclasses.dataclass(frozen=True)
class ParsedFeed:
    kind: str
    title: str | None
    language: str | None
    entries: tuple[FeedEntry, ...]
    bozo: str | None = None


_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ELEMENT_START = re.compile(rb"<[A-Za-z_]")
# feedparser spends about 65 microseconds per tag, so a 10 MiB feed of empty tags would take
# minutes; 200,000 elements (a few seconds) is far above what a feed of max_entries (1,000)
# entries with inline XHTML content needs.
MAX_FEED_ELEMENTS = 200_000
# Where "<!ENTITY" may appear as text and declares nothing: comments and CDATA sections.
_INERT_START = re.compile(rb"<!--|<!\[CDATA\[")


def _outside_comments_and_cdata(data: bytes) -> bytes:
    """``data`` without its comments and CDATA sections, in one linear pass (a regex with a
    lazy ``.*?`` would rescan to the end for every unclosed opener). An unclosed one is kept
    with the rest of the document: a declaration behind it is still seen."""
    parts = []
    pos = 0
    while match := _INERT_START.search(data, pos):
        parts.append(data[pos : match.start()])
        close = b"-->" if match.group() == b"<!--" else b"]]>"
        end = data.find(close, match.end())
        if end < 0:
            pos = match.start()
            break
        pos = end + len(close)
    parts.append(data[pos:])
    return b"".join(parts)


def _as_utf8(content: bytes) -> bytes:
    codec = sniff_unicode(content)
    if codec and codec != "utf-8-sig":
        return content.decode(codec, "replace").encode("utf-8")
    return content


def refuse_entity_declarations(content: bytes) -> None:
    """Refuse XML that declares entities (billion laughs, quadratic blow-up, external
    entities) before any XML parser sees it. Feeds have no use for them; a plain
    ``<!DOCTYPE rss ...>`` (RSS 0.91) is fine. A declaration counts wherever it stands outside
    comments and CDATA sections: a comment before the DTD, or a DTD after the root element,
    must not hide one (outside those two, ``<!ENTITY`` is no text a feed may hold).

    Raises:
        StageError: reason ``xml_entities``.
    """
    _check_markup(_outside_comments_and_cdata(_as_utf8(content)), None)


def _check_markup(visible: bytes, max_elements: int | None) -> None:
    if _ENTITY_DECL.search(visible):
        raise StageError(STAGE, "xml_entities", "the document declares XML entities; refused")
    if max_elements is not None:
        elements = len(_ELEMENT_START.findall(visible))
        if elements > max_elements:
            raise StageError(
                STAGE, "too_complex", f"{elements} XML elements exceed the limit of {max_elements}"
            )


def _text_of(fragment: str | None) -> str | None:
    """Plain text of an HTML fragment (feed summaries are HTML)."""
    if not fragment or not fragment.strip():
        return None
    if "<" not in fragment:
        return html.unescape(fragment).strip() or None
    try:
        text = lxml.html.fromstring(fragment).text_content()
    except (ValueError, lxml.etree.ParserError):
        text = re.sub(r"<[^>]+>", " ", fragment)
    return re.sub(r"\s+", " ", text).strip() or None


def _entry_time(entry: Any) -> str | None:
    """The entry's date as the feed wrote it (offset kept), else feedparser's UTC reading."""
    for key in ("published", "updated"):
        found = parse_published(entry.get(key))
        if found is not None:
            return to_iso(found)
    return _iso(entry.get("published_parsed") or entry.get("updated_parsed"))


def _iso(parsed: time.struct_time | None) -> str | None:
    if not parsed:
        return None
    try:
        return dt.datetime(*parsed[:6], tzinfo=UTC).isoformat()
    except (TypeError, ValueError):
        return None


def _hints(fields: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in fields.items() if v not in (None, "", ()))


def _http_link(value: Any, base: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    link = urllib.parse.urljoin(base or "", value.strip())
    return link if urllib.parse.urlsplit(link).scheme in ("http", "https") else None


def _entry_link(entry: Any) -> str | None:
    link = entry.get("link")
    if not link:
        for alt in entry.get("links") or ():
            if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                link = alt["href"]
                break
    if not link and entry.get("guidislink"):
        link = entry.get("id")
    return link if isinstance(link, str) and link.strip() else None


# RSS 2.0's author element is "email (Name)"; feedparser 6.0.14 splits it wrongly
# ("desk@gazette.example (Jane Reporter)" -> name "ple (Jane Reporter"), so read it ourselves.
_RSS_AUTHOR = re.compile(r"^\s*[^\s@()]+@[^\s()]+\s*\((?P<name>[^()]+)\)\s*$")
_BARE_EMAIL = re.compile(r"^\s*[^\s@()]+@[^\s()]+\s*$")


def entry_authors(entry: Any) -> list[str]:
    """Author names of a feed entry: the name of an RSS ``email (Name)`` author, else the names
    feedparser found; a bare e-mail address is not a name."""
    raw = entry.get("author")
    if isinstance(raw, str):
        match = _RSS_AUTHOR.match(raw)
        if match:
            return [match.group("name").strip()]
        if _BARE_EMAIL.match(raw):
            return []
    names = [a.get("name") for a in entry.get("authors") or () if a.get("name")]
    if not names and isinstance(raw, str) and raw.strip():
        names = [raw.strip()]
    return [n.strip() for n in names if not _BARE_EMAIL.match(n)]


def parse_xml_feed(
    content: bytes, feed_ref: str, content_type: str | None = None, source: FeedSource | None = None
) -> ParsedFeed:
    """Entries of an RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or RDF feed, through feedparser.

    Ill-formed ("bozo") feeds still give the entries feedparser recovers; a feed with none
    and a bozo error is refused.

    Raises:
        StageError: reason ``xml_entities``, ``too_complex`` (more than ``MAX_FEED_ELEMENTS``
            elements) or ``bad_feed``.
    """
    _check_markup(_outside_comments_and_cdata(_as_utf8(content)), MAX_FEED_ELEMENTS)
    headers = {"content-location": feed_ref}
    if content_type:
        headers["content-type"] = content_type
    # A file-like object: feedparser treats a bare string or bytes as a URL or a file name.
    parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
    bozo = repr(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    if not parsed.entries and (bozo or not parsed.get("version")):
        raise StageError(STAGE, "bad_feed", bozo or "not a feed: no version and no entries")
    feed = parsed.get("feed", {})
    language = (source.language if source else None) or feed.get("language")
    entries = []
    for entry in parsed.entries:
        authors = entry_authors(entry)
        content_html = None
        for body in entry.get("content") or ():
            if body.get("value"):
                content_html = body["value"]
                break
        summary = entry.get("summary")
        categories = tuple(
            dict.fromkeys(t.get("term") or t.get("label") for t in entry.get("tags") or ())
        )
        fields = {
            "title": _text_of(entry.get("title")),
            # ";" separates authors in hints, as in trafilatura's metadata
            "author": "; ".join(authors) or None,
            "published": _entry_time(entry),
            "summary": _text_of(summary),
            "categories": tuple(c for c in categories if c),
            "tags": source.tags if source else (),
            "language": entry.get("language") or language,
            "guid": entry.get("id"),
            "publisher": source.publisher if source else None,
        }
        entries.append(
            FeedEntry(
                feed_ref=feed_ref,
                link=_http_link(_entry_link(entry), feed_ref),
                hints=_hints(fields),
                content_html=content_html or summary,
            )
        )
    return ParsedFeed(
        kind=parsed.get("version") or "unknown",
        title=_text_of(feed.get("title")),
        language=language,
        entries=tuple(entries),
        bozo=bozo,
    )


def _rfc3339(value: Any) -> str | None:
    # the offset is kept: the article's published_offset_min comes from it
    found = parse_published(value) if isinstance(value, str) else None
    return to_iso(found) if found is not None else None


def parse_json_feed(content: bytes, feed_ref: str, source: FeedSource | None = None) -> ParsedFeed:
    """Entries of a JSON Feed (version 1 or 1.1), which feedparser does not read.

    Raises:
        StageError: reason ``bad_feed``.
    """
    try:
        data = json.loads(content.decode("utf-8-sig", "replace"))
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested 100,000 deep
        raise StageError(STAGE, "bad_feed", f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict) or not JSON_FEED_VERSION.match(str(data.get("version", ""))):
        raise StageError(STAGE, "bad_feed", "not a JSON Feed (no jsonfeed.org version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise StageError(STAGE, "bad_feed", "JSON Feed without an items list")
    base = data.get("home_page_url") if isinstance(data.get("home_page_url"), str) else feed_ref
    language = (source.language if source else None) or data.get("language")
    feed_authors = data.get("authors") or ([data["author"]] if data.get("author") else [])
    entries = []
    for item in items:
        if not isinstance(item, dict):
            entries.append(FeedEntry(feed_ref=feed_ref, link=None, hints=()))
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        names = [a.get("name") for a in authors or feed_authors if isinstance(a, dict)]
        raw_tags = item.get("tags")
        tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
        content_html = item.get("content_html")
        if not content_html and isinstance(item.get("content_text"), str):
            content_html = "<p>" + html.escape(item["content_text"]) + "</p>"
        fields = {
            "title": _text_of(item.get("title")) if isinstance(item.get("title"), str) else None,
            "author": "; ".join(n for n in names if isinstance(n, str)) or None,
            "published": _rfc3339(item.get("date_published") or item.get("date_modified")),
            "summary": _text_of(item.get("summary"))
            if isinstance(item.get("summary"), str)
            else None,
            "categories": tuple(t for t in tags if isinstance(t, str)),
            "tags": source.tags if source else (),
            "language": item.get("language") or language,
            "guid": str(item["id"]) if item.get("id") is not None else None,
            "publisher": source.publisher if source else None,
        }
        link = _http_link(item.get("url"), base) or _http_link(item.get("external_url"), base)
        entries.append(
            FeedEntry(
                feed_ref=feed_ref,
                link=link,
                hints=_hints(fields),
                content_html=content_html if isinstance(content_html, str) else None,
            )
        )
    title = data.get("title") if isinstance(data.get("title"), str) else None
    return ParsedFeed("json1", title, language, tuple(entries))


def parse_feed(
    content: bytes, feed_ref: str, content_type: str | None = None, source: FeedSource | None = None
) -> ParsedFeed:
    """Parse any supported feed: JSON Feed when the body is a JSON object, else XML.

    Raises:
        StageError: the feed is refused or unusable; ``reason`` says why.
    """
    if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_json_feed(content, feed_ref, source)
    return parse_xml_feed(content, feed_ref, content_type, source)


# --- Entries to documents -----------------------------------------------------------------


def entry_request(entry: FeedEntry) -> PageRequest:
    """The page fetch for an entry: the entry link, the entry fields as hints."""
    assert entry.link is not None
    return PageRequest(
        url=entry.link, source_ref=entry.link, source_kind=SOURCE_FEED, hints=entry.hints
    )


def entry_document(entry: FeedEntry) -> RawDocument | None:
    """A document from the entry's own content (when pages are not fetched); None when the
    entry carries no content."""
    if not entry.content_html or not entry.content_html.strip():
        return None
    title = html.escape(entry.hint("title") or "")
    page = f"<html><head><title>{title}</title></head><body>{entry.content_html}</body></html>"
    return RawDocument(
        source_ref=entry.link or f"{entry.feed_ref}#{entry.hint('guid', '')}",
        source_kind=SOURCE_FEED,
        content=page.encode("utf-8"),
        url=entry.link,
        content_type="text/html; charset=utf-8",
        hints=entry.hints,
    )


# --- Feed state and the one poller -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FeedState:
    """What is remembered of a feed between polls, in every driver: its validators and when it
    was last polled (epoch seconds). The batch graph, the stream launcher and the unbounded
    graph all poll through ``poll_feed`` on this state and keep it in a ``FeedStateStore``."""

    etag: str | None = None
    last_modified: str | None = None
    polled_at: float | None = None

    def due(self, interval_s: float, now: float) -> bool:
        return self.polled_at is None or now - self.polled_at >= interval_s

    def to_json(self, url: str) -> dict[str, Any]:
        """The stored form: ``{url, etag, last_modified, polled_at}`` (ISO 8601, UTC)."""
        polled = None
        if self.polled_at is not None:
            polled = dt.datetime.fromtimestamp(self.polled_at, UTC).isoformat()
        return {
            "url": url,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "polled_at": polled,
        }

    @classmethod
    def from_json(cls, data: Any, url: str) -> FeedState:
        """The state stored for ``url`` (an empty state when ``data`` is another feed's or
        malformed)."""
        if not isinstance(data, dict) or data.get("url") != url:
            return cls()
        polled_at = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            polled_at = dt.datetime.fromisoformat(data["polled_at"]).timestamp()
        etag, modified = data.get("etag"), data.get("last_modified")
        return cls(
            etag if isinstance(etag, str) else None,
            modified if isinstance(modified, str) else None,
            polled_at,
        )


class FeedStateStore:
    """The one feed-state store: ``<folder>/feed-<hash of the URL>.json`` per feed, each written
    whole under a temporary name, then renamed (so a reader never sees half a file). Without a
    folder nothing is remembered: every poll is due and unconditional. Holds no cache, so any
    number of workers may share one folder."""

    def __init__(self, folder: str | None):
        self.folder = folder

    def path(self, url: str) -> str:
        """The state file of a feed; the folder may be an object-store prefix."""
        assert self.folder is not None
        return files.join(self.folder, f"feed-{stable_id('feed', url)}.json")

    def load(self, url: str) -> FeedState:
        """The state remembered for a feed (empty when none or unreadable)."""
        if not self.folder:
            return FeedState()
        try:
            return FeedState.from_json(json.loads(files.read_text(self.path(url))), url)
        except (OSError, ValueError):
            return FeedState()

    def save(self, url: str, state: FeedState) -> None:
        if self.folder:
            files.makedirs(self.folder)
            atomic.write_json(self.path(url), state.to_json(url))


# What became of a poll.
PARSED = "parsed"
NOT_MODIFIED = "not_modified"
NOT_DUE = "not_due"
FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Polled:
    """One poll of one feed: what happened, the feed's new state, its entries (at most
    ``max_entries``) or the dead letter of its failure."""

    status: str
    state: FeedState
    entries: tuple[FeedEntry, ...] = ()
    dead: DeadLetter | None = None
    bozo: bool = False
    over_cap: int = 0


def feed_dead_letter(
    source: FeedSource, stage: str, reason: str, message: str | None, error_type: str
) -> DeadLetter:
    """The dead letter of a feed that could not be polled or parsed at ``stage``."""
    return dead_letter(
        StageError(stage, reason, message),
        source.url,
        source_kind=SOURCE_FEED,
        url=source.url if source.is_remote else None,
        error_type=error_type,
    )


def _failure(source: FeedSource, exc: BaseException) -> DeadLetter:
    if isinstance(exc, FetchError | StageError):
        reason, message = exc.reason, exc.message
    elif isinstance(exc, OSError | ValueError | EOFError):
        reason, message = ("too_large" if "exceeds" in str(exc) else "unreadable"), str(exc)
    else:
        reason, message = "exception", repr(exc)
    return feed_dead_letter(source, STAGE, reason, message, type(exc).__name__)


def poll_feed(
    fetcher: Fetcher | None,
    source: FeedSource,
    state: FeedState,
    now: float,
    max_bytes: int,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Polled:
    """Poll one feed: the one poller of the batch graph, the stream launcher and the unbounded
    graph (feed source + its state -> entries, new state, dead letter).

    A remote feed is fetched only when its ``poll_interval`` has passed since
    ``state.polled_at`` (else ``NOT_DUE``), conditionally (``If-None-Match`` /
    ``If-Modified-Since``): an unchanged feed gives ``NOT_MODIFIED``. A local feed file is read
    every time, and its state stays empty. A failure is returned as a dead letter (stage
    ``feeds``, ``FAILED``), never raised: one bad feed must not stop a run or a stream; an
    unexpected error is one too (reason ``exception``). A failed poll counts as a poll, so the
    feed is tried again after its interval, not at once.
    """
    try:
        if not source.is_remote:
            parsed = parse_feed(read_capped(source.url, max_bytes), source.url, None, source)
            new_state = state
        else:
            if not state.due(source.poll_interval_s, now):
                return Polled(NOT_DUE, state)
            assert fetcher is not None
            result = fetcher.fetch(
                source.url,
                etag=state.etag,
                last_modified=state.last_modified,
                accept=FEED_ACCEPT,
            )
            if result.not_modified:
                kept = FeedState(
                    result.etag or state.etag, result.last_modified or state.last_modified, now
                )
                return Polled(NOT_MODIFIED, kept)
            parsed = parse_feed(result.content, result.final_url, result.content_type, source)
            new_state = FeedState(result.etag, result.last_modified, now)
    except Exception as exc:  # noqa: BLE001 - one feed's failure or bug must not stop the rest
        failed = state if not source.is_remote else dataclasses.replace(state, polled_at=now)
        return Polled(FAILED, failed, dead=_failure(source, exc))
    kept_entries = parsed.entries[:max_entries]
    return Polled(
        PARSED,
        new_state,
        kept_entries,
        bozo=parsed.bozo is not None,
        over_cap=len(parsed.entries) - len(kept_entries),
    )


def count_poll(stage: str, polled: Polled) -> None:
    """The counters of one poll, the same in every driver: ``not_modified`` and ``not_due``
    polls, ``bozo`` feeds, ``entries`` and ``entries_over_cap``. A parsed poll shows in
    ``entries``; a failed one is counted with its dead letter (``reason:<code>``, by
    ``ApplyStage`` in the batch graph)."""
    if polled.status in (NOT_MODIFIED, NOT_DUE):
        Metrics.counter(stage, polled.status).inc()
    if polled.bozo:
        Metrics.counter(stage, "bozo").inc()
    if polled.entries:
        Metrics.counter(stage, "entries").inc(len(polled.entries))
    if polled.over_cap:
        Metrics.counter(stage, "entries_over_cap").inc(polled.over_cap)


class _PollHostFeeds(FetcherDoFn):
    """Polls all feeds of one host in turn with one fetcher (politeness holds per host). Each
    feed that fails is its own dead letter, and the host's other feeds go on."""

    def __init__(
        self, policy: FetchPolicy, max_bytes: int, max_entries: int, state_dir: str | None
    ):
        super().__init__(policy)
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.store = FeedStateStore(state_dir)

    def process(self, keyed: tuple[str, Iterable[FeedSource]]) -> Iterator[FeedEntry | DeadLetter]:
        _host, sources = keyed
        for source in sorted(set(sources), key=lambda s: s.url):
            state = self.store.load(source.url)
            polled = poll_feed(
                self.fetcher, source, state, time.time(), self.max_bytes, self.max_entries
            )
            if polled.state != state:
                self.store.save(source.url, polled.state)
            count_poll(STAGE, polled)
            if polled.dead is not None:
                yield polled.dead
            yield from polled.entries


def _source_host(source: FeedSource) -> str:
    return host_key(source.url) if source.is_remote else ""


class PollFeeds(beam.PTransform):
    """FeedSource -> (FeedEntry, DeadLetter): feeds grouped by host, polled one at a time."""

    def __init__(
        self,
        policy: FetchPolicy,
        max_bytes: int,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        state_dir: str | None = None,
    ):
        super().__init__()
        if max_bytes <= 0 or max_entries <= 0:
            raise ValueError("max_bytes and max_entries must be positive")
        self.dofn = _PollHostFeeds(policy, max_bytes, max_entries, state_dir)

    def expand(self, sources):  # type: ignore[no-untyped-def]
        return (
            sources
            | "KeyFeedsByHost" >> beam.Map(lambda s: (_source_host(s), s))
            | "GroupFeedsByHost" >> beam.GroupByKey()
            | "PollHostFeeds" >> ApplyStage(STAGE, self.dofn)
        )


def _entry_dead(entry: FeedEntry, reason: str, message: str) -> DeadLetter:
    guid = entry.hint("guid")
    return dead_letter(
        StageError(STAGE, reason, message),
        f"{entry.feed_ref}#{guid}" if guid else entry.feed_ref,
        source_kind=SOURCE_FEED,
        url=entry.link,
        excerpt=entry.hint("title"),
    )


def entry_work(
    entry: FeedEntry, fetch_pages: bool = True
) -> PageRequest | RawDocument | DeadLetter:
    """What an entry becomes in every driver: its page fetch (``fetch_pages``), else a document
    of its own content; a dead letter (``no_link``, ``no_content``) when it has neither."""
    if fetch_pages:
        if entry.link is None:
            return _entry_dead(entry, "no_link", "feed entry without a link")
        return entry_request(entry)
    doc = entry_document(entry)
    if doc is None:
        return _entry_dead(entry, "no_content", "feed entry without content")
    return doc


def page_key(url: str, guid: str | None) -> str:
    """The identity of a page to fetch for a feed entry, in every driver: the entry guid with
    the canonical link, else the canonical link."""
    canonical = canonicalize_url(url) or url
    return f"guid:{guid}|{canonical}" if guid else f"link:{canonical}"


def work_item_key(item: PageRequest | RawDocument | DeadLetter) -> str:
    """The identity of an entry's work in every stream: its page (``page_key``), its own
    content by source, a dead letter by what failed (so one failure is written once)."""
    if isinstance(item, PageRequest):
        return page_key(item.url, dict(item.hints).get("guid"))
    if isinstance(item, RawDocument):
        return f"doc:{item.source_ref}"
    return f"dead:{item.dead_letter_id}"


class _EntryToWork(beam.DoFn):
    def __init__(self, fetch_pages: bool):
        self.fetch_pages = fetch_pages

    def process(self, entry: FeedEntry) -> Iterator[PageRequest | RawDocument | DeadLetter]:
        yield entry_work(entry, self.fetch_pages)


# Counters of the second pass of the feeds stage (entries to page requests or documents).
ENTRIES_COUNTERS = "feed_entries"


class EntriesToWork(beam.PTransform):
    """FeedEntry -> (PageRequest or RawDocument, DeadLetter): entries become page fetches, or
    documents of their own content when ``fetch_pages`` is off."""

    def __init__(self, fetch_pages: bool = True):
        super().__init__()
        self.fetch_pages = fetch_pages

    def expand(self, entries):  # type: ignore[no-untyped-def]
        # Counted apart from the polling pass: the entries passed that one already.
        return entries | "EntriesToWork" >> ApplyStage(
            STAGE, _EntryToWork(self.fetch_pages), counters=ENTRIES_COUNTERS
        )
