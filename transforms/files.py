"""Input paths on any file system Beam knows: local paths as they are, ``s3://``, ``gs://`` (and
whatever else ``apache_beam.io.filesystems.FileSystems`` has a plug-in for) through Beam.

Local paths keep their own listing rules (``news_ingest.transforms.sources.list_inputs``: FIFOs and dot-files
are not inputs, directories are walked); a path with a scheme is listed and opened by Beam, which
reads the scheme's settings (``--s3_endpoint_url``, credentials, project) from the pipeline
options once ``FileSystems.set_options`` has seen them: ``Pipeline()`` does that on the launcher
and Beam's SDK harness on every worker.
"""

from __future__ import annotations

import re
from typing import IO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


def scheme_of(path: str) -> str | None:
    """The URL scheme of ``path`` (``s3``, ``gs`` ...), or None for a local path.

    ``file://`` counts as local: Beam's local file system handles it the same way.
    """
    match = _SCHEME.match(path)
    if not match or match.group(1).lower() == "file":
        return None
    return match.group(1).lower()


def is_remote(path: str) -> bool:
    """True when ``path`` lives on a file system other than the local one."""
    return scheme_of(path) is not None


def open_read(path: str) -> IO[bytes]:
    """A binary reader of ``path``, local or remote, never decompressed on the way (the
    callers cap what they decompress themselves)."""
    if is_remote(path):
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open(path, "rb")


def match_remote(spec: str) -> list[tuple[str, int]]:
    """``(path, size)`` of every object that ``spec`` names on a remote file system.

    ``spec`` is an object, a glob (``*``, ``?``, ``[...]``; ``**`` crosses ``/``) or a prefix
    ("folder"): a spec without glob characters that names no object is read as the prefix
    ``spec/`` and everything under it is listed.
    """
    found = _match(spec)
    if not found and not _GLOB.search(spec):
        found = _match(spec.rstrip("/") + "/**")
    return sorted(found)


def _match(pattern: str) -> list[tuple[str, int]]:
    try:
        results = FileSystems.match([pattern])
    except Exception as exc:  # noqa: BLE001 - Beam wraps every back-end error in its own types
        if "No files found" in str(exc) or "Not Found" in str(exc):
            return []
        raise OSError(f"cannot list {pattern}: {exc}") from exc
    return [(m.path, m.size_in_bytes) for r in results for m in r.metadata_list]
