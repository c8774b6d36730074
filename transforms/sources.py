"""Input sources: list input paths before the pipeline starts, read each into ``RawDocument``s.

Listing happens on the launcher (Beam's DaskRunner cannot run ``Read``-based sources), so the
graph starts from ``beam.Create(paths)`` and each path is read inside a ``DoFn``.
"""

from __future__ import annotations

import glob
import gzip
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam

from transforms.schema import SOURCE_HTML, SOURCE_TEXT, DeadLetter, RawDocument
from transforms.stage import ApplyStage, rejection

STAGE = "read"

# Extension -> source kind. Longest suffix wins (".html.gz" before ".gz").
EXTENSIONS: dict[str, str] = {
    ".txt": SOURCE_TEXT,
    ".text": SOURCE_TEXT,
    ".html": SOURCE_HTML,
    ".htm": SOURCE_HTML,
    ".html.gz": SOURCE_HTML,
    ".htm.gz": SOURCE_HTML,
    ".txt.gz": SOURCE_TEXT,
}

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
                if kind_of(name, extensions) and not name.startswith(".")
            ]
            if not matched:
                raise InputError(f"no input files ({', '.join(sorted(extensions))}) under {spec}")
        elif os.path.isfile(spec):
            matched = [spec]
        else:
            matched = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
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
        return fh.read()


def read_path(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[RawDocument | DeadLetter]:
    """Read one input path into documents (one for a text or HTML file)."""
    kind = kind_of(path) or SOURCE_TEXT
    try:
        content = read_capped(path, max_bytes)
    except (OSError, ValueError, EOFError) as exc:
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
