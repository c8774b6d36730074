"""Does a timed-out extraction stop? Thread timeout versus subprocess isolation.

    python benchmarks/extract_timeout.py [PARAGRAPHS] [TIMEOUT_S]

Builds one pathological page (PARAGRAPHS paragraphs, default 80,000: trafilatura needs
far longer than the timeout on it), lifts the element cap so the page reaches the extractor,
and runs the real Extract transform on the DirectRunner with each isolation mode. Prints the
wall time of the run, the CPU this process burned in the 5 s after the run returned (a thread
that was abandoned but not stopped shows up here) and the child processes still alive.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.extract import Extract, ExtractOptions
from transforms.schema import SOURCE_HTML, RawDocument


def page(paragraphs: int) -> bytes:
    body = "".join(f"<p>Paragraph {i} with a few words in it.</p>" for i in range(paragraphs))
    return f"<html><body>{body}</body></html>".encode()


def run(raw: RawDocument, timeout: float, isolation: str) -> list[str]:
    results: list[str] = []
    options = ExtractOptions(max_elements=10**8)
    with beam.Pipeline("DirectRunner", options=PipelineOptions()) as p:
        articles, dead = p | beam.Create([raw]) | Extract(timeout, options, isolation)
        _ = dead | beam.Map(lambda d: results.append(f"dead letter: {d.reason}"))
        _ = articles | beam.Map(lambda a: results.append("article"))
    return results


def main(paragraphs: int, timeout: float) -> None:
    raw = RawDocument(
        source_ref="pathological.html", source_kind=SOURCE_HTML, content=page(paragraphs)
    )
    print(f"page: {paragraphs} paragraphs, {len(raw.content) / 1e6:.1f} MB; timeout {timeout} s")
    print(
        f"{'isolation':11s} {'run wall s':>10s} {'result':>22s} {'CPU s in next 5 s':>18s} {'threads':>8s} {'children':>9s}"
    )
    for isolation in ("thread", "subprocess"):
        threads_before = threading.active_count()
        started = time.perf_counter()
        results = run(raw, timeout, isolation)
        wall = time.perf_counter() - started
        cpu0 = time.process_time()
        time.sleep(5)
        burned = time.process_time() - cpu0
        extra_threads = threading.active_count() - threads_before
        children = len(multiprocessing.active_children())
        print(
            f"{isolation:11s} {wall:10.1f} {', '.join(results):>22s} {burned:18.1f} {extra_threads:8d} {children:9d}",
            flush=True,
        )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 80_000,
        float(sys.argv[2]) if len(sys.argv) > 2 else 2.0,
    )
