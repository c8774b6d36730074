"""Paths on any file system Beam knows: local paths as they are, ``s3://``, ``gs://`` (and
whatever else ``apache_beam.io.filesystems.FileSystems`` has a plug-in for) through Beam.

Every path the pipeline takes goes through this module: inputs (listed and opened), and the
output side (staging, commit, manifest, the cross-run index, feed state, configs, rule packs).

Local paths keep their own listing rules (``news_ingest.transforms.sources.list_inputs``: FIFOs and dot-files
are not inputs, directories are walked); a path with a scheme is listed and opened by Beam, which
reads the scheme's settings (``--s3_endpoint_url``, credentials, project) from the pipeline
options once ``FileSystems.set_options`` has seen them: ``Pipeline()`` does that on the launcher
and Beam's SDK harness on every worker.
"""

from __future__ import annotations

import contextlib
import glob as _glob
import os
import re
import shutil
import threading
import types
from typing import IO

from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


# --------------------------------------------------------------------------------------------
# One S3 client per process. Beam's S3 file system builds a new boto3 session and client for
# every call (each open, match, exists, copy, delete): 0.1-0.3 s of loading botocore's service
# model each time, which made a commit of a few dozen files and every poll of a stream's state
# on a bucket wait seconds on client construction alone. Beam's client wrapper is kept whole (it
# carries the state of one download); only the boto3 client it asks its session for is shared,
# keyed by the exact arguments Beam builds it with: boto3 clients are thread-safe.

_S3_CLIENTS: dict[tuple[object, ...], object] = {}
_S3_LOCK = threading.Lock()


class _OneClientPerSettings:
    """What Beam's S3 wrapper takes for boto3's session (it calls ``Session().client(...)``
    once per file-system call): the client of a process and settings is built once."""

    def client(self, **settings: object) -> object:
        import boto3

        key = (os.getpid(), *sorted(settings.items()))  # a forked worker builds its own
        with _S3_LOCK:
            client = _S3_CLIENTS.get(key)
            if client is None:
                client = _S3_CLIENTS[key] = boto3.session.Session().client(**settings)
        return client


def _share_s3_clients() -> None:
    """Make Beam's S3 file system build one boto3 client per process and settings."""
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # no boto3: Beam has no S3 file system to speed up
        return
    if boto3_client.boto3 is not None:
        sessions = types.SimpleNamespace(Session=_OneClientPerSettings)
        boto3_client.boto3 = types.SimpleNamespace(session=sessions)


_share_s3_clients()


def set_options(beam_args: list[str]) -> None:
    """Give Beam's file systems the settings among ``beam_args`` (``--s3_endpoint_url``,
    credentials, project) before anything is read, on the launcher."""
    FileSystems.set_options(PipelineOptions(beam_args))


def scheme_of(path: str) -> str | None:
    """The URL scheme of ``path`` (``s3``, ``gs`` ...), or None for a local path.

    ``file://`` counts as local: Beam's local file system handles it the same way.
    """
    match = _SCHEME.match(path)
    if not match or match.group(1).lower() == "file":
        return None
    return match.group(1).lower()


def has_filesystem(path: str) -> bool:
    """Whether Beam has a file system for ``path``'s scheme (always, for a local path)."""
    if not is_remote(path):
        return True
    try:
        FileSystems.get_filesystem(path)
    except ValueError:
        return False
    return True


def is_remote(path: str) -> bool:
    """True when ``path`` lives on a file system other than the local one."""
    return scheme_of(path) is not None


def open_read(path: str) -> IO[bytes]:
    """A binary reader of ``path``, local or remote, never decompressed on the way (the
    callers cap what they decompress themselves)."""
    if is_remote(path):
        try:
            return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except OSError:
            raise  # Beam's own FileNotFoundError for a missing object, among others
        except Exception as exc:  # noqa: BLE001 - Beam wraps every back-end error in its own types
            if _not_found(exc):
                raise FileNotFoundError(f"no such object: {path}") from exc
            raise OSError(f"cannot read {path}: {exc}") from exc
    return open(path, "rb")


def _not_found(exc: Exception) -> bool:
    """Whether a back-end error of Beam's says the object or prefix is not there."""
    text = str(exc)
    return "No files found" in text or "Not Found" in text


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
    return [(m.path, m.size_in_bytes) for m in _match_metadata(pattern)]


def _match_metadata(pattern: str) -> list[FileMetadata]:
    try:
        results = FileSystems.match([pattern])
    except Exception as exc:  # noqa: BLE001 - Beam wraps every back-end error in its own types
        if _not_found(exc):
            return []
        raise OSError(f"cannot list {pattern}: {exc}") from exc
    return [m for r in results for m in r.metadata_list]


# --------------------------------------------------------------------------------------------
# Output-side operations: the output folder, its staging area, the manifest, the cross-run
# index, feed state, configs and rule packs. A local path keeps the local file system's
# semantics (folders, ``os.replace`` as an atomic rename); a path with a scheme is an object
# store's key, where there are no folders and no atomic rename: a "rename" is a copy and a
# delete, and a "folder" is every object under its prefix.


def join(base: str, *parts: str) -> str:
    """``base`` and ``parts`` joined with the separator of ``base``'s file system."""
    if is_remote(base):
        return FileSystems.join(base.rstrip("/"), *parts)
    return os.path.join(base, *parts)


def basename(path: str) -> str:
    """The last component of ``path`` (a file name, or an object key's last segment)."""
    if is_remote(path):
        return path.rstrip("/").rsplit("/", 1)[-1]
    return os.path.basename(path)


def parent(path: str) -> str:
    """The folder (the key prefix) ``path`` is in."""
    if is_remote(path):
        return path.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(path)


def relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` (``/``-separated on an object store)."""
    if is_remote(root):
        prefix = root.rstrip("/") + "/"
        if not path.startswith(prefix):
            raise ValueError(f"{path} is not under {root}")
        return path[len(prefix) :]
    return os.path.relpath(path, root)


def exists(path: str) -> bool:
    """Whether the file or object ``path`` exists."""
    if is_remote(path):
        return bool(FileSystems.exists(path))
    return os.path.exists(path)


def is_remote_file(path: str) -> bool:
    """Whether ``path`` is an object on a store Beam reads that is there: False for a local
    path, a scheme Beam has no file system for, or a store that refuses to say."""
    if not is_remote(path) or not has_filesystem(path):
        return False
    try:
        return exists(path)
    except Exception:  # noqa: BLE001 - a store's refusal (no access, no bucket) is its own type
        return False


def glob(pattern: str) -> list[str]:
    """The files ``pattern`` matches, sorted (``*`` stays within one folder or key segment)."""
    if is_remote(pattern):
        return sorted(path for path, _size in _match(pattern))
    return sorted(_glob.glob(pattern))


def glob_modified(pattern: str) -> list[tuple[str, float]]:
    """``(path, modification time)`` of the files ``pattern`` matches, sorted by path.

    The time is epoch seconds of the file system that holds the files: the local clock for a
    local path, the store's own clock (an object's last-modified, whole seconds on S3) for an
    object store; compare it only with times read from the same store.
    """
    if is_remote(pattern):
        return sorted((m.path, float(m.last_updated_in_seconds)) for m in _match_metadata(pattern))
    found = []
    for path in sorted(_glob.glob(pattern)):
        with contextlib.suppress(FileNotFoundError):  # removed between listing and stat
            found.append((path, os.path.getmtime(path)))
    return found


def modified_time(path: str) -> float | None:
    """The modification time of the file ``path`` (as ``glob_modified`` gives it), or None
    when there is no such file."""
    if is_remote(path):
        found = dict(glob_modified(path))
        return found.get(path)
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return None


def files_under(folder: str) -> list[str]:
    """Every file below ``folder`` (every object under the prefix ``folder/``), sorted."""
    if is_remote(folder):
        return sorted(path for path, _size in _match(folder.rstrip("/") + "/**"))
    return sorted(
        os.path.join(top, name) for top, _dirs, names in os.walk(folder) for name in names
    )


def read_bytes(path: str) -> bytes:
    """The whole content of ``path``."""
    with open_read(path) as fh:
        return fh.read()


def read_text(path: str) -> str:
    """The content of ``path`` decoded as UTF-8."""
    return read_bytes(path).decode("utf-8")


def create(path: str) -> IO[bytes]:
    """A binary writer of ``path``, never compressed on the way (a local folder is made when
    missing). On an object store the object appears when the writer is closed: write whole
    files with ``news_ingest.transforms.atomic``, not through this, when a half-written file
    must never be seen."""
    if is_remote(path):
        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
    makedirs(os.path.dirname(path) or ".")
    return open(path, "wb")


def makedirs(folder: str) -> None:
    """Create a local folder (and its parents); nothing on an object store, which has none."""
    if not is_remote(folder):
        os.makedirs(folder, exist_ok=True)


def copy(src: str, dst: str) -> None:
    """Copy the file ``src`` to ``dst`` (on an object store, a server-side copy)."""
    if is_remote(src) or is_remote(dst):
        FileSystems.copy([src], [dst])
        return
    makedirs(os.path.dirname(dst) or ".")
    shutil.copyfile(src, dst)


def rename(src: str, dst: str) -> None:
    """Move the file or folder ``src`` to ``dst``, replacing ``dst``'s file.

    Locally this is ``os.replace``, atomic. An object store has no rename: each object is
    copied, then the source deleted; a crash in between leaves both copies (whole files), so
    callers make a rerun tolerate them.
    """
    if not (is_remote(src) or is_remote(dst)):
        os.replace(src, dst)
        return
    if FileSystems.exists(src):
        pairs = [(src, dst)]
    else:
        pairs = [(path, join(dst, relative(path, src))) for path in files_under(src)]
    for source, target in pairs:
        FileSystems.copy([source], [target])
        FileSystems.delete([source])


def remove(path: str) -> None:
    """Delete the file ``path``; a missing file is not an error."""
    if is_remote(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def remove_tree(folder: str) -> None:
    """Delete ``folder`` and everything below it (every object under its prefix); a missing
    folder is not an error."""
    if is_remote(folder):
        found = files_under(folder)
        if found:
            FileSystems.delete(found)
        return
    shutil.rmtree(folder, ignore_errors=True)


def remove_empty_dir(folder: str) -> None:
    """Remove a local folder if it is empty (an object store has no folders to remove)."""
    if not is_remote(folder):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
