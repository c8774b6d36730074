"""The one atomic-write helper: a file is written whole under a temporary name beside it, then
renamed over the target, so a reader (or a restart after a crash) never sees half a file.

On an object store (``s3://``, ``gs://``) the whole content is uploaded in one write: an object
becomes visible only once its upload is complete, and replaces the old object whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from news_ingest.transforms import files


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``, on an
    error it is removed. The folder is created when missing. Local paths only."""
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
