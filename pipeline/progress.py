"""Progress of a long run on a terminal: documents done, rate and ETA.

Runners differ in what they tell the launcher while a job runs (the DirectRunner blocks in
``run()`` and reports metrics only at the end; the Dask runner reports none), so progress does
not rely on metrics: a pass-through step counts the documents that finished the per-document
stages and sends the counts as UDP datagrams to the launcher on 127.0.0.1. Sending never blocks
and never fails the pipeline; datagrams from workers on other hosts simply do not arrive.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, TextIO

import apache_beam as beam
from apache_beam import pvalue

HOST = "127.0.0.1"
SEND_EVERY_S = 0.25


class _CountDocuments(beam.DoFn):
    """Counts elements and sends the count since the last send to the launcher."""

    def __init__(self, port: int):
        self.port = port
        self._sock: socket.socket | None = None
        self._pending = 0
        self._last = 0.0

    def setup(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def _send(self) -> None:
        if self._pending and self._sock is not None:
            with contextlib.suppress(OSError):  # a full buffer or a gone launcher: skip
                self._sock.sendto(str(self._pending).encode("ascii"), (HOST, self.port))
            self._pending = 0
        self._last = time.monotonic()

    def process(self, element: Any) -> Iterable[Any]:
        self._pending += 1
        if time.monotonic() - self._last >= SEND_EVERY_S:
            self._send()
        return ()

    def finish_bundle(self) -> None:
        self._send()

    def teardown(self) -> None:
        if self._sock is not None:
            self._send()
            self._sock.close()
            self._sock = None


class CountDocuments(beam.PTransform):
    """Send the number of elements of ``pcolls`` to a ``Reporter`` listening on ``port``."""

    def __init__(self, port: int):
        super().__init__()
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        self.port = port

    def expand(self, pcolls):  # type: ignore[no-untyped-def]
        # One counting step per input, not a Flatten: the DirectRunner materializes a Flatten of
        # several inputs and runs its consumer only after they are complete, so counts behind
        # one would all arrive at the end.
        for i, pcoll in enumerate(pcolls):
            pcoll | f"SendCounts{i}" >> beam.ParDo(_CountDocuments(self.port))
        return pvalue.PDone(pcolls[0].pipeline) if pcolls else None


def format_line(done: int, total: int | None, seconds: float) -> str:
    """``done/total docs (pct) rate docs/s ETA`` (no total or ETA when the total is unknown or
    passed, e.g. feeds or WARC files holding many documents)."""
    rate = done / seconds if seconds > 0 else 0.0
    parts = [f"{done}/{total} docs" if total else f"{done} docs"]
    if total and done <= total:
        parts.append(f"({100 * done / total:.0f}%)")
    parts.append(f"{rate:.1f} docs/s")
    if total and 0 < done < total and rate > 0:
        parts.append(f"ETA {_duration((total - done) / rate)}")
    parts.append(f"elapsed {_duration(seconds)}")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Reporter:
    """Receives counts on a UDP port of 127.0.0.1 and redraws one status line on ``stream``.

    Use as a context manager; ``port`` is the port to give ``CountDocuments``.
    """

    def __init__(self, total: int | None, stream: TextIO | None = None, every_s: float = 0.5):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.done = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="news-ingest-progress", daemon=True)
        self._t0 = time.monotonic()
        self._width = 0

    def __enter__(self) -> Reporter:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        self._sock.close()
        self.stream.write("\r" + " " * self._width + "\r")
        self.stream.flush()

    def _receive(self) -> None:
        data = self._sock.recv(64)
        with contextlib.suppress(ValueError):
            self.done += int(data)

    def _drain(self) -> None:
        self._sock.setblocking(False)
        with contextlib.suppress(OSError):
            while True:
                self._receive()

    def _loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                self._receive()
            now = time.monotonic()
            if now - last >= self.every_s:
                self._draw(now - self._t0)
                last = now

    def _draw(self, seconds: float) -> None:
        line = "news-ingest: " + format_line(self.done, self.total, seconds)
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
