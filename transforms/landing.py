"""The landing-zone rule: when a file that another program writes into a folder is complete.

A folder that other programs write into (a watched folder of ``news-ingest stream``, or a batch
run's directory or glob input with ``read.landing: true``) holds files that may still be being
written. A file is taken only when

* its name is not a temporary one: dot-files, ``*.tmp``, ``*.part``, ``*.crdownload`` (and the
  ``.tmp-<n>`` names of atomic writers), names containing ``_COPYING_`` (``hdfs dfs -put``);
* it has settled: its modification time is at least ``settle_s`` seconds old. Every write moves
  the mtime, so an unchanged mtime over that span also means an unchanged size;
* when a marker convention is configured, its marker exists: ``_SUCCESS`` in the file's folder
  (Hadoop and Spark jobs write it last) or ``<name>.done`` beside the file.

Pure functions on names and ``os.stat`` results; the callers list the folders.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable

SUCCESS = "_SUCCESS"
DONE = ".done"
MARKERS = (SUCCESS, DONE)

# Suffixes of files still being written under a temporary name, then renamed.
_TEMP = re.compile(r"(\.(tmp|part|crdownload)([.-][^/]*)?$)|_COPYING_", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class LandingRule:
    """When a landing-zone file is complete (see the module docstring).

    Attributes:
        settle_s: seconds a file's mtime must lie in the past (0: at once).
        marker: None, ``"_SUCCESS"`` (the folder's marker) or ``".done"`` (``<name>.done``).
    """

    settle_s: float
    marker: str | None

    def __post_init__(self) -> None:
        if self.settle_s < 0:
            raise ValueError(f"settle_s: must not be negative, got {self.settle_s}")
        if self.marker is not None and self.marker not in MARKERS:
            raise ValueError(f"marker: one of null, {', '.join(MARKERS)}; got {self.marker!r}")


def is_temp_name(path: str) -> bool:
    """Whether ``path``'s file name marks a file that is not (yet) an input."""
    name = os.path.basename(path)
    return name.startswith(".") or bool(_TEMP.search(name))


def is_settled(stat: os.stat_result, now: float, settle_s: float) -> bool:
    """Whether a file with ``stat`` has not been written to for ``settle_s`` seconds."""
    return now - stat.st_mtime >= settle_s


def has_marker(
    path: str, marker: str | None, exists: Callable[[str], bool] = os.path.exists
) -> bool:
    """Whether the marker convention ``marker`` says ``path`` is complete (None: always)."""
    if marker is None:
        return True
    if marker == SUCCESS:
        return exists(os.path.join(os.path.dirname(path), SUCCESS))
    return exists(path + DONE)


def is_ready(
    path: str,
    stat: os.stat_result,
    now: float,
    rule: LandingRule,
    exists: Callable[[str], bool] = os.path.exists,
) -> bool:
    """Whether the landing-zone file ``path`` (with ``stat``) may be taken at ``now``."""
    return (
        not is_temp_name(path)
        and is_settled(stat, now, rule.settle_s)
        and has_marker(path, rule.marker, exists)
    )
