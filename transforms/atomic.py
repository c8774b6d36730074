"""The one atomic-write helper: a file is written whole under a temporary name beside it, then
renamed over the target, so a reader (or a restart after a crash) never sees half a file."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``, on an
    error it is removed. The folder is created when missing."""
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


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str, data: Any, **dump_options: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``dump_options`` go to ``json.dumps``)."""
    write_text(path, json.dumps(data, **dump_options))
