"""Input sources: list input paths before the pipeline starts, read each into ``RawDocument``s.

Listing happens on the launcher (Beam's DaskRunner cannot run ``Read``-based sources), so the
graph starts from ``beam.Create(paths)`` and each path is read inside a ``DoFn``. Text and HTML
files are one document each; a WARC file is one document per HTTP response record. Feed files
and feeds lists are listed here too, but read by ``news_ingest.transforms.feeds``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import gzip
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from news_ingest.transforms.files import is_remote, match_remote, open_read
from news_ingest.transforms.landing import is_temp_name
from news_ingest.transforms.schema import (
    SOURCE_FEED,
    SOURCE_HTML,
    SOURCE_TEXT,
    SOURCE_WARC,
    UTC,
    DeadLetter,
    RawDocument,
)
from news_ingest.transforms.stage import ApplyStage, StageError, dead_letter

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

    A spec with a scheme (``s3://bucket/prefix/*.warc.gz``, ``gs://...``) is listed through
    Beam's file systems: an object, a glob, or a prefix whose objects are taken by extension
    like a directory's files.

    Raises:
        InputError: a spec matches nothing, or a directory holds no input files.
    """
    found: set[str] = set()
    for spec in specs:
        if is_remote(spec):
            found.update(_list_remote(spec, extensions))
            continue
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


def _list_remote(spec: str, extensions: dict[str, str]) -> list[str]:
    try:
        objects = match_remote(spec)
    except OSError as exc:
        raise InputError(str(exc)) from exc
    # An object named exactly is an input whatever its name; a glob or prefix takes what a
    # directory walk would (by extension, no dot-files, no explicit-only kinds).
    named = [path for path, _size in objects if path == spec]
    if named:
        return named
    matched = [
        path
        for path, _size in objects
        if kind_of(path, extensions)
        and not path.rsplit("/", 1)[-1].startswith(".")
        and not path.lower().endswith(EXPLICIT_ONLY)
    ]
    if not matched:
        raise InputError(f"input not found: {spec}")
    return matched


def read_capped(path: str, max_bytes: int) -> bytes:
    """The bytes of ``path`` (gunzipped for ``.gz``), refusing more than ``max_bytes``.

    ``path`` may be remote (``s3://``, ``gs://``): it is read through Beam's file systems.
    """
    if path.lower().endswith(".gz"):
        out = bytearray()
        with open_read(path) as fh:
            decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while chunk := fh.read(64 * 1024):
                out += decomp.decompress(chunk, max_bytes + 1 - len(out))
                if len(out) > max_bytes or decomp.unconsumed_tail:
                    raise ValueError(f"decompressed size exceeds {max_bytes} bytes")
            if not decomp.eof:
                raise gzip.BadGzipFile("truncated gzip stream")
        return bytes(out)
    size = None if is_remote(path) else os.path.getsize(path)
    if size is not None and size > max_bytes:
        raise ValueError(f"file size {size} exceeds {max_bytes} bytes")
    with open_read(path) as fh:
        # Read at most one byte past the cap: a device or a link to one reports size 0. A
        # regular file's own size bounds the read (read(n) reserves n bytes up front).
        data = fh.read((size or max_bytes) + 1)
        if size and len(data) > size:
            # The file grew since it was sized: read on to the cap.
            data += fh.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise ValueError(f"file size exceeds {max_bytes} bytes")
    return data


def _warc_dead(ref: str, url: str | None, reason: str, message: str) -> DeadLetter:
    return dead_letter(StageError(STAGE, reason, message), ref, source_kind=SOURCE_WARC, url=url)


WARC_HTML_TYPES = ("text/html", "application/xhtml+xml")


def read_warc(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[RawDocument | DeadLetter]:
    """One document per HTTP response record of a WARC file (``.warc`` or ``.warc.gz``).

    Other record types (request, metadata, warcinfo, revisit) are not documents and are
    skipped (counted). A response with a non-2xx status or a non-HTML body is a dead letter.
    Each document's ``source_ref`` is ``path@offset`` of its record; ``url`` is the record's
    WARC-Target-URI and ``fetched_at`` its WARC-Date; the body is transcoded to UTF-8 from the
    charset of its HTTP headers (or detected).
    """
    from news_ingest.transforms.web.charsets import to_utf8
    from warcio.archiveiterator import ArchiveIterator

    skipped = Metrics.counter(STAGE, "warc_records_skipped")
    ref = path
    try:
        with open_read(path) as fh:
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
                try:
                    content, _charset = to_utf8(body, ctype)
                    fetched_at = _warc_date(record.rec_headers.get_header("WARC-Date"))
                except Exception as exc:  # noqa: BLE001 - one record's bug must not end its file
                    yield _warc_dead(ref, url, "exception", f"{type(exc).__name__}: {exc}"[:2000])
                    continue
                yield RawDocument(
                    source_ref=ref,
                    source_kind=SOURCE_WARC,
                    content=content,
                    url=url,
                    fetched_at=fetched_at,
                    content_type=f"{mime}; charset=utf-8",
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
        yield dead_letter(
            StageError(STAGE, reason, f"{type(exc).__name__}: {exc}"),
            path,
            source_kind=kind,
            error_type=type(exc).__name__,
        )
        return
    yield RawDocument(source_ref=path, source_kind=kind, content=content)


class _ReadPath(beam.DoFn):
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process(self, path: str) -> Iterable[RawDocument | DeadLetter]:
        yield from read_path(path, self.max_bytes)


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """The ``read:`` section of the config itself.

    Attributes:
        max_bytes: largest input file (after gunzip) read; larger ones become dead letters
            (reason ``too_large``).
        landing: directory and glob inputs are landing folders written by other programs: a
            file is taken only when complete (the ``stream:`` section's landing rule).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    landing: bool = False

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")


class ReadSources(beam.PTransform):
    """paths -> (RawDocument, DeadLetter) PCollections."""

    def __init__(self, options: ReadOptions | None = None):
        super().__init__()
        self.options = options or ReadOptions()

    def expand(self, paths):  # type: ignore[no-untyped-def]
        return paths | "ReadPaths" >> ApplyStage(STAGE, _ReadPath(self.options.max_bytes))
