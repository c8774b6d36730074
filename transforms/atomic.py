"""The one atomic-write helper: a file is written whole under a temporary name beside it, then
renamed over the target, so a reader (or a restart after a crash) never sees half a file.

On an object store (``s3://``, ``gs://``) the whole content is uploaded in one write: an object
becomes visible only once its upload is complete, and replaces the old object whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from news_ingest.transforms import files


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary local path for ``path``; on a clean exit it replaces ``path``, on an
    error it is removed. Locally the temporary file sits beside ``path`` (its folder created
    when missing) and is renamed over it. For an object-store ``path`` it is a local temporary
    file, uploaded on a clean exit in one write (``write_bytes``): an upload that fails leaves
    no object, and nothing of a failed write is uploaded. (The whole file is in memory while it
    is uploaded: shards are sized by ``--shards`` for that.)"""
    if files.is_remote(path):
        fd, tmp = tempfile.mkstemp(prefix="news-ingest-", suffix=".part")
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb") as fh:
                write_bytes(path, fh.read())
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # Process and thread in the name: two writers of one path never share a temporary file.
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        yield tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` (local or on an object store) atomically."""
    if files.is_remote(path):
        # The content is all in memory: nothing can fail between the first write and the
        # close that completes the upload, so a half object is never committed.
        with files.create(path) as fh:
            fh.write(data)
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data: Any, **dump_options: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``dump_options`` go to ``json.dumps``)."""
    write_text(path, json.dumps(data, **dump_options))
