"""Input sources: list input paths before the pipeline starts, read each into ``RawDocument``s.

Listing happens on the launcher (Beam's DaskRunner cannot run ``Read``-based sources), so the
graph starts from ``beam.Create(paths)`` and each path is read inside a ``DoFn``. Text and HTML
files are one document each; a WARC file is one document per HTTP response record. Feed files
and feeds lists are listed here too, but read by ``transforms.feeds``.
"""

from __future__ import annotations

import datetime as dt
import glob
import gzip
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.landing import is_temp_name
from transforms.schema import (
    SOURCE_FEED,
    SOURCE_HTML,
    SOURCE_TEXT,
    SOURCE_WARC,
    UTC,
    DeadLetter,
    RawDocument,
)
from transforms.stage import ApplyStage, rejection

STAGE = "read"

# Listing kind of a YAML feeds list (not a source kind: its feeds are polled, not read).
FEED_LIST = "feedlist"

# Extension -> source kind. Longest suffix wins (".html.gz" before ".gz").
EXTENSIONS: dict[str, str] = {
    ".txt": SOURCE_TEXT,
    ".text": SOURCE_TEXT,
    ".html": SOURCE_HTML,
    ".htm": SOURCE_HTML,
    ".html.gz": SOURCE_HTML,
    ".htm.gz": SOURCE_HTML,
    ".txt.gz": SOURCE_TEXT,
    ".warc": SOURCE_WARC,
    ".warc.gz": SOURCE_WARC,
    ".xml": SOURCE_FEED,
    ".rss": SOURCE_FEED,
    ".atom": SOURCE_FEED,
    ".json": SOURCE_FEED,
    ".yaml": FEED_LIST,
    ".yml": FEED_LIST,
}

# Too ambiguous to pick up while walking a directory (any XML, JSON or YAML file would do);
# they are inputs when named explicitly.
EXPLICIT_ONLY = (".xml", ".json", ".yaml", ".yml")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class InputError(ValueError):
    """An input given on the command line or in the config cannot be used."""


def kind_of(path: str, extensions: dict[str, str] = EXTENSIONS) -> str | None:
    """The source kind of ``path`` by its extension, or None when it is not an input."""
    name = path.lower()
    for suffix in sorted(extensions, key=len, reverse=True):
        if name.endswith(suffix):
            return extensions[suffix]
    return None


def list_inputs(specs: Sequence[str], extensions: dict[str, str] = EXTENSIONS) -> list[str]:
    """Expand files, directories (recursively, by extension) and globs into sorted file paths.

    Raises:
        InputError: a spec matches nothing, or a directory holds no input files.
    """
    found: set[str] = set()
    for spec in specs:
        if os.path.isdir(spec):
            matched = [
                os.path.join(root, name)
                for root, _dirs, files in os.walk(spec)
                for name in files
                if kind_of(name, extensions)
                and not is_temp_name(name)
                and not name.lower().endswith(EXPLICIT_ONLY)
                # regular files only (after links): a FIFO named *.txt would block the read
                and os.path.isfile(os.path.join(root, name))
            ]
            if not matched:
                raise InputError(f"no input files ({', '.join(sorted(extensions))}) under {spec}")
        elif os.path.isfile(spec):
            matched = [spec]
        else:
            matched = [
                p
                for p in glob.glob(spec, recursive=True)
                if os.path.isfile(p) and not is_temp_name(p)
            ]
            if not matched:
                raise InputError(f"input not found: {spec}")
        found.update(os.path.normpath(p) for p in matched)
    return sorted(found)


def read_capped(path: str, max_bytes: int) -> bytes:
    """The bytes of ``path`` (gunzipped for ``.gz``), refusing more than ``max_bytes``."""
    if path.lower().endswith(".gz"):
        out = bytearray()
        with open(path, "rb") as fh:
            decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while chunk := fh.read(64 * 1024):
                out += decomp.decompress(chunk, max_bytes + 1 - len(out))
                if len(out) > max_bytes or decomp.unconsumed_tail:
                    raise ValueError(f"decompressed size exceeds {max_bytes} bytes")
            if not decomp.eof:
                raise gzip.BadGzipFile("truncated gzip stream")
        return bytes(out)
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ValueError(f"file size {size} exceeds {max_bytes} bytes")
    with open(path, "rb") as fh:
        # Read at most one byte past the cap: a device or a link to one reports size 0.
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"file size exceeds {max_bytes} bytes")
    return data


def _warc_dead(ref: str, url: str | None, reason: str, message: str) -> DeadLetter:
    return DeadLetter(
        source_ref=ref,
        stage=STAGE,
        reason=reason,
        error_message=message,
        source_kind=SOURCE_WARC,
        url=url,
    )


WARC_HTML_TYPES = ("text/html", "application/xhtml+xml")


def read_warc(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[RawDocument | DeadLetter]:
    """One document per HTTP response record of a WARC file (``.warc`` or ``.warc.gz``).

    Other record types (request, metadata, warcinfo, revisit) are not documents and are
    skipped (counted). A response with a non-2xx status or a non-HTML body is a dead letter.
    Each document's ``source_ref`` is ``path@offset`` of its record; ``url`` is the record's
    WARC-Target-URI and ``fetched_at`` its WARC-Date; the body is transcoded to UTF-8 from the
    charset of its HTTP headers (or detected).
    """
    from warcio.archiveiterator import ArchiveIterator

    from transforms.fetch import canonical_link, canonicalize_url, to_utf8

    skipped = Metrics.counter(STAGE, "warc_records_skipped")
    ref = path
    try:
        with open(path, "rb") as fh:
            records = ArchiveIterator(fh)
            for record in records:
                if record.rec_type != "response":
                    skipped.inc()
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                http = record.http_headers
                if http is None:
                    skipped.inc()
                    continue
                # The body first: warcio finds a record's offset by reading it to the end.
                body = record.content_stream().read(max_bytes + 1)
                ref = f"{path}@{records.get_record_offset()}"
                status = http.get_statuscode() or ""
                if not status:
                    yield _warc_dead(ref, url, "bad_record", "response record without a status")
                    continue
                if not status.startswith("2"):
                    yield _warc_dead(ref, url, f"http_{status}", f"HTTP status {status}")
                    continue
                ctype = http.get_header("Content-Type")
                mime = (ctype or "text/html").split(";", 1)[0].strip().lower()
                if mime not in WARC_HTML_TYPES:
                    yield _warc_dead(ref, url, "not_html", f"content-type {mime}")
                    continue
                if len(body) > max_bytes:
                    yield _warc_dead(ref, url, "too_large", f"body exceeds {max_bytes} bytes")
                    continue
                content, _charset = to_utf8(body, ctype)
                canonical = canonical_link(content, url) if url else None
                canonical = canonical or canonicalize_url(url)
                yield RawDocument(
                    source_ref=ref,
                    source_kind=SOURCE_WARC,
                    content=content,
                    url=url,
                    fetched_at=_warc_date(record.rec_headers.get_header("WARC-Date")),
                    content_type=f"{mime}; charset=utf-8",
                    hints=(("canonical_url", canonical),) if canonical else (),
                )
    except Exception as exc:  # noqa: BLE001 - warcio raises anything on broken input
        yield _warc_dead(ref, None, "bad_warc", f"{type(exc).__name__}: {exc}"[:2000])


def _warc_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_path(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[RawDocument | DeadLetter]:
    """Read one input path into documents (one for a text or HTML file, one per response
    record of a WARC file)."""
    kind = kind_of(path) or SOURCE_TEXT
    if kind == SOURCE_WARC:
        yield from read_warc(path, max_bytes)
        return
    try:
        content = read_capped(path, max_bytes)
    except (OSError, ValueError, EOFError, zlib.error) as exc:  # zlib: a plain file named .gz
        reason = "too_large" if "exceeds" in str(exc) else "unreadable"
        dead = rejection(path, STAGE, reason, f"{type(exc).__name__}: {exc}")
        yield DeadLetter(**{**dead.__dict__, "source_kind": kind, "error_type": type(exc).__name__})
        return
    yield RawDocument(source_ref=path, source_kind=kind, content=content)


class _ReadPath(beam.DoFn):
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process(self, path: str) -> Iterable[RawDocument | DeadLetter]:
        yield from read_path(path, self.max_bytes)


class ReadSources(beam.PTransform):
    """paths -> (RawDocument, DeadLetter) PCollections."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__()
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes

    def expand(self, paths):  # type: ignore[no-untyped-def]
        return paths | "ReadPaths" >> ApplyStage(STAGE, _ReadPath(self.max_bytes))
