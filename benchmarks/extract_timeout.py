"""Does a timed-out extraction stop? Beam's thread timeout versus subprocess isolation.

    python benchmarks/extract_timeout.py [PARAGRAPHS] [TIMEOUT_S]

Builds one pathological page (PARAGRAPHS paragraphs, default 80,000: trafilatura needs far
longer than the timeout on it), lifts the element cap so the page reaches the extractor, and
runs the real Extract transform on the DirectRunner, once per isolation mode, each in a fresh
process. Prints the run's wall time and outcome, then watches the process after the run has
returned: how long extra threads stay alive and how much CPU the process burns meanwhile
(an abandoned but unstopped thread shows up here), and whether a child process is left.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time

WATCH_LIMIT_S = 180.0


def page(paragraphs: int) -> bytes:
    body = "".join(f"<p>Paragraph {i} with a few words in it.</p>" for i in range(paragraphs))
    return f"<html><body>{body}</body></html>".encode()


def one_mode(isolation: str, paragraphs: int, timeout: float) -> None:
    import apache_beam as beam
    from news_ingest.transforms.extract import Extract, ExtractOptions
    from news_ingest.transforms.schema import SOURCE_HTML, RawDocument

    raw = RawDocument("pathological.html", SOURCE_HTML, page(paragraphs))
    threads_before = threading.active_count()
    started = time.perf_counter()
    p = beam.Pipeline("DirectRunner")
    _ = (
        p
        | beam.Create([raw])
        | Extract(ExtractOptions(timeout_s=timeout, isolation=isolation, max_elements=10**8))
    )
    result = p.run()
    result.wait_until_finish()
    wall = time.perf_counter() - started
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "extract"
    }
    outcome = ",".join(f"{k}={v}" for k, v in sorted(counters.items()))
    cpu0, t0 = time.process_time(), time.perf_counter()
    while threading.active_count() > threads_before and time.perf_counter() - t0 < WATCH_LIMIT_S:
        time.sleep(0.2)
    lingered = time.perf_counter() - t0
    burned = time.process_time() - cpu0
    children = len(multiprocessing.active_children())
    print(
        f"{isolation:11s} {wall:8.1f} {outcome:38s} {lingered:14.1f} {burned:11.1f} {children:9d}",
        flush=True,
    )


def main(paragraphs: int, timeout: float) -> None:
    print(
        f"page: {paragraphs} paragraphs, {len(page(paragraphs)) / 1e6:.1f} MB; timeout {timeout} s"
    )
    print(
        f"{'isolation':11s} {'wall s':>8s} {'extract counters':38s} {'threads live s':>14s}"
        f" {'CPU s then':>11s} {'children':>9s}",
        flush=True,
    )
    for isolation in ("thread", "subprocess"):
        subprocess.run(
            [sys.executable, __file__, "--one", isolation, str(paragraphs), str(timeout)],
            check=True,
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        one_mode(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 80_000,
            float(sys.argv[2]) if len(sys.argv) > 2 else 2.0,
        )
