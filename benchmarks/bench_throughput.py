"""Throughput of news-ingest against a bare trafilatura loop, side by side in one run.

    python benchmarks/bench_throughput.py DATA_DIR [--docs 2000] [--variants a,b,c,d]

DATA_DIR holds the dev pages (``*.html`` / ``*.html.gz``, searched recursively). They are
repeated with small perturbations (a comment with the copy number, a copy tag in the first
paragraph, so no two documents are byte- or text-identical) into a temporary folder until there
are ``--docs`` documents, and every variant reads those same files:

    a  bare loop: read each file, ``trafilatura.extract`` its bytes, one process
    x  the same loop calling the extract stage's pure function (``transforms.extract.extract``:
       charset detection, trafilatura with metadata), to tell extraction from pipeline cost
    b  ``news-ingest run --workers 1``  (DirectRunner, in memory)
    c  ``news-ingest run --workers 2``  (DirectRunner, multi-processing)
    d  ``news-ingest run --runner dask --workers 2``  (local dask.distributed cluster)

Each variant runs in a fresh process; the wall time includes start-up. Peak RSS is the largest
sum of resident memory over the process and all its children, sampled every 0.1 s. Needs the
``bench`` extra (psutil). Prints a table; this is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BARE_LOOP = """
import os, sys, trafilatura
folder = sys.argv[1]
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as fh:
        trafilatura.extract(fh.read())
"""

# The pipeline's own extraction call (trafilatura with metadata, charset detection) in the same
# bare loop: separates what the extract stage does from what running it in Beam costs.
STAGE_LOOP = """
import os, sys
from transforms.extract import extract
from transforms.schema import RawDocument
folder = sys.argv[1]
for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    with open(path, "rb") as fh:
        extract(RawDocument(source_ref=path, source_kind="html", content=fh.read()))
"""

VARIANTS = {
    "a": ("bare trafilatura.extract loop", None),
    "x": ("bare loop of the extract stage's function", None),
    "b": ("news-ingest run --workers 1", ["--workers", "1"]),
    "c": ("news-ingest run --workers 2", ["--workers", "2"]),
    "d": ("news-ingest run --runner dask --workers 2", ["--runner", "dask", "--workers", "2"]),
}

_FIRST_P_END = re.compile(rb"</p>", re.IGNORECASE)
_BODY = re.compile(rb"<body[^>]*>", re.IGNORECASE)


def source_pages(data_dir: Path) -> list[bytes]:
    """The HTML of every page under ``data_dir`` (gunzipped), in name order."""
    pages = []
    for path in sorted(data_dir.rglob("*")):
        name = path.name.lower()
        if name.endswith(".html.gz") or name.endswith(".htm.gz"):
            pages.append(gzip.decompress(path.read_bytes()))
        elif name.endswith((".html", ".htm")):
            pages.append(path.read_bytes())
    return pages


def perturb(page: bytes, copy: int) -> bytes:
    """A near copy of ``page``: a comment after <body> and a copy tag closing the first
    paragraph (so extraction does the same work but text and hashes differ)."""
    page = _FIRST_P_END.sub(f" [copy {copy}]</p>".encode(), page, count=1)
    comment = f"<!-- news-ingest benchmark copy {copy} -->".encode()
    match = _BODY.search(page)
    if match:
        return page[: match.end()] + comment + page[match.end() :]
    return comment + page


def write_corpus(pages: list[bytes], docs: int, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(docs):
        data = perturb(pages[i % len(pages)], i)
        (folder / f"doc_{i:06d}.html").write_bytes(data)
        total += len(data)
    return total


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``cmd``; return (seconds, peak RSS of the process tree in MB, exit code)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        rss = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                rss += p.memory_info().rss
        peak = max(peak, rss)
        time.sleep(0.1)
    seconds = time.perf_counter() - t0
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode:
        print(f"  failed ({proc.returncode}): {' '.join(cmd)}\n{stderr[-2000:]}", file=sys.stderr)
    return seconds, peak / 2**20, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("data_dir", type=Path, help="folder of the dev pages (*.html, *.html.gz)")
    ap.add_argument("--docs", type=int, default=2000, help="documents in the corpus (default 2000)")
    ap.add_argument("--variants", default="a,x,b,c,d", help="which variants (default a,x,b,c,d)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds over all variants (interleaved); the best time of each is reported, which "
        "is the fairest figure on a shared machine (default 1)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary corpus and outputs")
    args = ap.parse_args(argv)

    if not args.data_dir.is_dir():
        print(f"skipped: data folder {args.data_dir} not found")
        return 0
    pages = source_pages(args.data_dir)
    if not pages:
        print(f"skipped: no *.html or *.html.gz pages under {args.data_dir}")
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")

    tmp = Path(tempfile.mkdtemp(prefix="news-ingest-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        corpus = tmp / "corpus"
        size = write_corpus(pages, args.docs, corpus)
        print(f"corpus: {args.docs} documents ({size / 2**20:.1f} MB) from {len(pages)} pages")
        print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
        best: dict[str, tuple[float, float, int]] = {}
        for _round in range(max(1, args.repeat)):
            for key in variants:
                _label, flags = VARIANTS[key]
                if flags is None:
                    loop = BARE_LOOP if key == "a" else STAGE_LOOP
                    cmd = [sys.executable, "-c", loop, str(corpus)]
                else:
                    out = tmp / f"out-{key}"
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = [sys.executable, "-m", "pipeline", "run", "--input", str(corpus),
                           "--output", str(out), *flags]  # fmt: skip
                seconds, rss, code = measure(cmd, env)
                old = best.get(key)
                if old is None or (code == 0 and seconds < old[0]):
                    best[key] = (seconds, max(rss, old[1] if old else 0.0), code)
                elif old:
                    best[key] = (old[0], max(rss, old[1]), old[2])
        base = args.docs / best["a"][0] if "a" in best else None
        stage = args.docs / best["x"][0] if "x" in best else None
        rows = []
        for key in variants:
            seconds, rss, code = best[key]
            rows.append((key, VARIANTS[key][0], seconds, args.docs / seconds, rss, code))
        print(f"load average at end: {os.getloadavg()[0]:.2f}; best of {max(1, args.repeat)}")
        print()
        head = f"{'':2}{'variant':<44}{'seconds':>9}{'docs/s':>9}{'vs (a)':>8}{'vs (x)':>8}"
        print(head + f"{'peak RSS':>11}")
        for key, label, seconds, rate, rss, code in rows:
            vs_a = f"{rate / base:.2f}" if base else "-"
            vs_x = f"{rate / stage:.2f}" if stage else "-"
            status = "" if code == 0 else "  FAILED"
            print(
                f"{key:<2}{label:<44}{seconds:>9.1f}{rate:>9.1f}{vs_a:>8}{vs_x:>8}"
                f"{rss:>8.0f} MB{status}"
            )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
