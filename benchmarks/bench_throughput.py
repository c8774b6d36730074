"""Throughput and memory of news-ingest against a bare trafilatura loop and a datatrove peer.

    python benchmarks/bench_throughput.py [DATA_DIR] [--docs N] [--rounds 2] [--variants a,x,b,c,d,e]
    python benchmarks/bench_throughput.py [DATA_DIR] --memory [--memory-docs 2000,20000]

DATA_DIR holds the dev pages (``*.html`` / ``*.html.gz``, searched recursively; default: the
article-extraction dev set in ``../shared/data`` beside the repository). They are repeated with
a small perturbation (a comment with the copy number after ``<body>``, a copy tag closing the
first paragraph, so no two documents are byte- or text-identical but every copy is a near
duplicate) into a temporary folder until there are ``--docs`` documents (default: 17 copies of
each page, 2,057 with the 121 dev pages), and every variant reads those same files:

    a  bare loop: read each file, ``trafilatura.extract`` its bytes, one process
    x  the same loop calling the extract stage's pure function with the pipeline's effective
       ``extract:`` options: its CPU per document is what extraction costs, so the pipeline's
       CPU beyond it is what everything else costs
    b  ``news-ingest run --workers 1``  (DirectRunner, in memory)
    c  ``news-ingest run --workers 2``  (DirectRunner, multi-processing)
    d  ``news-ingest run --runner dask --workers 2``  (local dask.distributed cluster)
    e  a datatrove pipeline (``benchmarks/datatrove_peer.py``: LocalPipelineExecutor, 2 tasks,
       2 processes: a reader over the same files, its Trafilatura extractor with the same
       trafilatura settings, its 4-step MinHash deduplication, its ParquetWriter), run from its
       own venv, which the benchmark creates outside the repository on first use

Variants run one at a time, each in a fresh process (wall time includes start-up), interleaved
over ``--rounds`` rounds (the order rotates each round); the table shows the median of each
variant's seconds and CPU, and the largest peak memory. Memory is sampled every 0.1 s over
every descendant of the benchmark: the peak of the summed RSS, and of the summed PSS (which
counts a page shared by several processes once, split between them). CPU is the user+system
time of the whole process tree (the benchmark is made a child subreaper, so processes whose
parent died before them are reaped here and counted too). ``--memory`` runs (c) alone at two
corpus sizes and prints the peak at both and the growth per document.

Needs the ``bench`` extra (psutil). Prints tables; this is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import gzip
import importlib.metadata
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "article-extraction"
COPIES = 17

DATATROVE = "0.10.1"
# datatrove's MinHash step tokenizes English with spaCy's blank("en") pipeline; spaCy is in
# none of the extras the pipeline needs ("processing" brings trafilatura, "io" pyarrow).
SPACY = "3.8.18"

BARE_LOOP = """
import os, sys, trafilatura
folder = sys.argv[1]
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as fh:
        trafilatura.extract(fh.read())
"""

# The extract stage's own function with the options the batch graph gives it, in the same bare
# loop: what extraction costs, without Beam. After the redesign the config section may be the
# options object itself (issue 14, item 3), hence the second route.
STAGE_LOOP = """
import os, sys
from news_ingest.pipeline import config
from news_ingest.transforms.extract import extract
from news_ingest.transforms.schema import RawDocument
folder, config_path = sys.argv[1], sys.argv[2] or None
cfg = config.load(config_path)
try:
    from news_ingest.pipeline.graph import extract_options
    options = extract_options(cfg)
except ImportError:
    options = cfg.extract
for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    with open(path, "rb") as fh:
        extract(RawDocument(source_ref=path, source_kind="html", content=fh.read()), options)
"""

VARIANTS = {
    "a": ("bare trafilatura.extract loop", None),
    "x": ("bare loop of the extract stage's function", None),
    "b": ("news-ingest run --workers 1", ["--workers", "1"]),
    "c": ("news-ingest run --workers 2", ["--workers", "2"]),
    "d": ("news-ingest run --runner dask --workers 2", ["--runner", "dask", "--workers", "2"]),
    "e": ("datatrove: extract, MinHash, Parquet (2 tasks)", None),
}
# (numerator, denominator, target): the ratios of docs/s the issue asks for.
TARGETS = (("c", "a", 1.6), ("b", "a", 0.85), ("d", "c", 0.9), ("c", "e", 1.2))
MEMORY_TARGET_MB = 1024.0
# Codes of a run the benchmark stopped (a process's own exit code is never below -255).
TIMED_OUT, OVER_MEMORY = -999, -998
STOPPED = {TIMED_OUT: "timed out", OVER_MEMORY: "over the memory limit"}
GROWTH_TARGET_KB = 5.0

_FIRST_P_END = re.compile(rb"</p>", re.IGNORECASE)
_BODY = re.compile(rb"<body[^>]*>", re.IGNORECASE)
_COUNT_LINE = re.compile(r"^\s+(inputs|articles|duplicates|dead letters)\s+(\d+)\s*$")


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
    """Write ``docs`` perturbed copies of ``pages`` to ``folder``; return their total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(docs):
        data = perturb(pages[i % len(pages)], i)
        (folder / f"doc_{i:06d}.html").write_bytes(data)
        total += len(data)
    return total


# ---------------------------------------------------------------------------------------------
# Measuring one process tree


@dataclasses.dataclass
class Run:
    """One variant's run: wall seconds, CPU seconds of its whole tree, peak memory in MB."""

    key: str
    seconds: float
    cpu_s: float
    rss_mb: float
    pss_mb: float | None
    code: int
    load: float
    counts: str = ""


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux), so that their CPU
    time is counted: datatrove's forkserver and a dead parent's workers are never waited for
    by the process that started them."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    return False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_memory(me: Any) -> tuple[int, int | None]:
    """Summed RSS and PSS (None where unavailable) of every descendant of ``me``."""
    import psutil

    rss, pss = 0, 0
    have_pss = True
    try:
        tree = me.children(recursive=True)
    except psutil.Error:
        return 0, None
    for proc in tree:
        try:
            if have_pss:
                try:
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += info.pss
                    continue
                except (psutil.AccessDenied, AttributeError):
                    have_pss = False
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
    return rss, pss if have_pss else None


def _signal_tree(me: Any, sig: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        for proc in me.children(recursive=True):
            with contextlib.suppress(psutil.Error, OSError):
                proc.send_signal(sig)


def measure(
    key: str,
    cmd: list[str],
    env: dict[str, str],
    logs: Path,
    timeout_s: float,
    every_s: float = 0.1,
    grace_s: float = 30.0,
    max_rss_mb: float | None = None,
) -> Run:
    """Run ``cmd`` to its end (or ``timeout_s``, or until the tree's RSS passes ``max_rss_mb``),
    sampling the memory of the whole tree. A stopped run has code TIMED_OUT or OVER_MEMORY.

    Every process left behind is reaped here (waited for up to ``grace_s`` after the main
    one exits, then terminated), so that RUSAGE_CHILDREN holds the CPU of the whole tree.
    """
    import psutil

    me = psutil.Process()
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    peak_rss, peak_pss = 0, 0
    pss_ok = True
    out, err = open(logs / f"{key}.out", "wb"), open(logs / f"{key}.err", "wb")  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err, start_new_session=True)
    status: int | None = None
    seconds = 0.0
    stopped = 0
    stop_at = done_at = 0.0
    while True:
        # Reap whatever has ended: the main process, and orphans handed to us as subreaper.
        while True:
            try:
                pid, wstatus, _usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                pid = -1
                break
            if pid == 0:
                break
            if pid == proc.pid:
                status = os.waitstatus_to_exitcode(wstatus)
                seconds = time.perf_counter() - t0
                done_at = time.perf_counter()
        if pid == -1 and status is not None:
            break  # no process of this run is left
        now = time.perf_counter()
        if status is None:
            rss, pss = _tree_memory(me)
            peak_rss = max(peak_rss, rss)
            if pss is None:
                pss_ok = False
            else:
                peak_pss = max(peak_pss, pss)
            over = max_rss_mb is not None and rss > max_rss_mb * 2**20
            if (over or now - t0 > timeout_s) and not stopped:
                stopped = OVER_MEMORY if over else TIMED_OUT
                why = f"RSS over {max_rss_mb:.0f} MB" if over else f"{timeout_s:.0f} s"
                print(f"  {key}: stopped ({why})", file=sys.stderr)
                stop_at = now
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                _signal_tree(me, signal.SIGTERM)
            elif stopped and now - stop_at > 15:
                _signal_tree(me, signal.SIGKILL)
        elif now - done_at > grace_s:
            # Left-overs of a finished run (daemons nobody stopped): end them, by pid.
            _signal_tree(me, signal.SIGTERM if now - done_at < grace_s + 10 else signal.SIGKILL)
        time.sleep(every_s)
    proc.returncode = status  # reaped above; keeps Popen from waiting again
    out.close()
    err.close()
    cpu = _children_cpu() - cpu0
    code = stopped or status
    if code:
        tail = (logs / f"{key}.err").read_text("utf-8", "replace")[-2000:]
        what = STOPPED.get(code, f"failed ({code})")
        print(f"  {what}: {' '.join(cmd)}\n{tail}", file=sys.stderr)
    return Run(
        key=key,
        seconds=seconds,
        cpu_s=cpu,
        rss_mb=peak_rss / 2**20,
        pss_mb=peak_pss / 2**20 if pss_ok else None,
        code=code,
        load=load,
        counts=_counts(key, logs),
    )


def _counts(key: str, logs: Path) -> str:
    """What the run produced, from its printed summary (news-ingest or the datatrove peer)."""
    path = logs / f"{key}.out"
    if not path.exists():
        return ""
    text = path.read_text("utf-8", "replace")
    found = [m.groups() for line in text.splitlines() if (m := _COUNT_LINE.match(line))]
    if found:
        return ", ".join(f"{name} {n}" for name, n in found)
    for line in reversed(text.splitlines()):
        with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
            figures = json.loads(line)
            return f"kept {figures['kept']}, removed {figures['removed']}"
    return ""


# ---------------------------------------------------------------------------------------------
# Settings and the datatrove venv


def extract_settings(config_path: str | None) -> dict[str, Any]:
    """The effective ``extract:`` section of the pipeline's config (defaults + ``--config``)."""
    sys.path.insert(0, str(ROOT))
    from news_ingest.pipeline import config

    section = config.load(config_path).extract
    if dataclasses.is_dataclass(section) and not isinstance(section, type):
        return dataclasses.asdict(section)
    return dict(vars(section))


def default_venv(trafilatura: str | None) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    suffix = f"-trafilatura-{trafilatura}" if trafilatura else ""
    return cache / "news-ingest-bench" / f"datatrove-{DATATROVE}{suffix}"


def datatrove_python(venv: Path, trafilatura: str | None) -> Path:
    """The python of a venv holding datatrove (created on first use; never the project's)."""
    python = venv / "bin" / "python"
    steps = [[f"datatrove[processing,io]=={DATATROVE}", f"spacy=={SPACY}"]]
    if trafilatura:
        # A second install: datatrove's extra pins trafilatura<1.12 (pip warns about the pin;
        # datatrove's call works with both). trafilatura 2 imports justext, which needs lxml's
        # HTML cleaner, a separate package since lxml 5.2 (as in the project's pins).
        clean = importlib.metadata.version("lxml-html-clean")
        steps.append([f"trafilatura=={trafilatura}", f"lxml-html-clean=={clean}"])
    marker = venv / "news-ingest-bench.json"
    shown = " then ".join(" ".join(step) for step in steps)
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == steps:
        print(f"datatrove venv: {venv} (reused; pip install {shown})")
    else:
        print(f"datatrove venv: creating {venv}")
        commands = [[sys.executable, "-m", "venv", "--clear", str(venv)]]
        commands += [[str(python), "-m", "pip", "install", "-q", *step] for step in steps]
        for command in commands:
            print("  $ " + " ".join(command), flush=True)
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"failed ({done.returncode}):\n{done.stderr[-3000:]}")
        marker.write_text(json.dumps(steps))
    # A broken extractor makes datatrove's pool wait forever: check the imports first.
    check = "import datatrove.executor, spacy, trafilatura; trafilatura.extract('<p>ok</p>')"
    done = subprocess.run([str(python), "-c", check], capture_output=True, text=True)
    if done.returncode:
        marker.unlink(missing_ok=True)
        raise SystemExit(f"the datatrove venv {venv} does not work:\n{done.stderr[-2000:]}")
    return python


def _version(python: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


# ---------------------------------------------------------------------------------------------
# The variants


def command(
    key: str,
    corpus: Path,
    out: Path,
    config_path: str | None,
    settings: dict[str, Any],
    peer_python: Path | None,
) -> list[str]:
    """The command line of one variant over ``corpus`` (writing into ``out`` if it writes)."""
    if key == "a":
        return [sys.executable, "-c", BARE_LOOP, str(corpus)]
    if key == "x":
        return [sys.executable, "-c", STAGE_LOOP, str(corpus), config_path or ""]
    if key == "e":
        assert peer_python is not None
        cmd = [
            str(peer_python),
            str(ROOT / "benchmarks" / "datatrove_peer.py"),
            str(corpus),
            str(out),
            "--tasks",
            "2",
            "--workers",
            "2",
            "--timeout",
            str(settings.get("timeout_s", 30.0)),
        ]
        if settings.get("favor_precision"):
            cmd.append("--favour-precision")
        if not settings.get("include_tables", True):
            cmd.append("--no-tables")
        return cmd
    flags = VARIANTS[key][1] or []
    cmd = [
        sys.executable,
        "-m",
        "news_ingest.pipeline",
        "run",
        "--input",
        str(corpus),
        "--output",
        str(out),
    ]
    if config_path:
        cmd += ["--config", config_path]
    return cmd + flags


def _environments() -> tuple[dict[str, str], dict[str, str]]:
    """The project's environment (repo on the path) and a clean one for the datatrove venv."""
    project = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    peer = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return project, peer


def _line(run: Run, docs: int) -> str:
    pss = f"{run.pss_mb:6.0f}" if run.pss_mb is not None else "     -"
    status = "" if run.code == 0 else "  " + STOPPED.get(run.code, "failed").upper()
    counts = f"  [{run.counts}]" if run.counts else ""
    # A run stopped or failed before the end processed fewer documents: its rate is a bound.
    rate = docs / run.seconds if run.seconds else 0.0
    return (
        f"{run.seconds:8.1f} s {'<' if run.code else ' '}{rate:6.2f} docs/s  "
        f"RSS {run.rss_mb:6.0f} MB  PSS {pss} MB  CPU {run.cpu_s:7.1f} s  "
        f"load {run.load:5.2f}{status}{counts}"
    )


def run_variants(
    args: argparse.Namespace,
    variants: list[str],
    docs_list: list[int],
    pages: list[bytes],
    settings: dict[str, Any],
    peer_python: Path | None,
    tmp: Path,
) -> dict[tuple[int, str], list[Run]]:
    """Every (corpus size, variant), interleaved over the rounds; runs in order of execution."""
    project_env, peer_env = _environments()
    corpora = {}
    for docs in docs_list:
        corpus = tmp / f"corpus-{docs}"
        size = write_corpus(pages, docs, corpus)
        corpora[docs] = corpus
        print(f"corpus: {docs} documents ({size / 2**20:.1f} MB of HTML) from {len(pages)} pages")
    logs = tmp / "logs"
    logs.mkdir()
    runs: dict[tuple[int, str], list[Run]] = {}
    rounds = max(1, args.rounds)
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for docs in docs_list:
            for key in order:
                out = tmp / f"out-{key}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = command(key, corpora[docs], out, args.config, settings, peer_python)
                env = peer_env if key == "e" else project_env
                run = measure(key, cmd, env, logs, args.timeout)
                runs.setdefault((docs, key), []).append(run)
                print(
                    f"  round {r + 1}/{rounds}  {docs:>6} docs  {key}  {_line(run, docs)}",
                    flush=True,
                )
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
    return runs


@dataclasses.dataclass
class Summary:
    seconds: float
    cpu_s: float
    rss_mb: float
    pss_mb: float | None
    ok: int
    total: int


def summarise(runs: list[Run]) -> Summary | None:
    """Median seconds and CPU of the successful runs, largest peak memory; None if none ran."""
    ok = [r for r in runs if r.code == 0]
    if not ok:
        return None
    pss = [r.pss_mb for r in ok if r.pss_mb is not None]
    return Summary(
        seconds=statistics.median(r.seconds for r in ok),
        cpu_s=statistics.median(r.cpu_s for r in ok),
        rss_mb=max(r.rss_mb for r in ok),
        pss_mb=max(pss) if pss else None,
        ok=len(ok),
        total=len(runs),
    )


def print_table(docs: int, variants: list[str], runs: dict[tuple[int, str], list[Run]]) -> None:
    summaries = {key: summarise(runs.get((docs, key), [])) for key in variants}
    base = summaries.get("a")
    stage = summaries.get("x")
    stage_cpu = stage.cpu_s / docs if stage else None
    print()
    print(f"{docs} documents; medians of the successful runs, memory the largest peak")
    print(
        f"{'':2}{'variant':<48}{'seconds':>8}{'docs/s':>8}{'vs (a)':>7}{'CPU s/doc':>10}"
        f"{'beyond x':>9}{'peak RSS':>10}{'peak PSS':>10}{'runs':>6}"
    )
    for key in variants:
        s = summaries[key]
        label = VARIANTS[key][0]
        if s is None:
            print(f"{key:<2}{label:<48}{'no successful run':>24}")
            continue
        rate = docs / s.seconds
        vs_a = f"{rate / (docs / base.seconds):.2f}" if base else "-"
        cpu_doc = s.cpu_s / docs
        beyond = f"{cpu_doc - stage_cpu:.3f}" if stage_cpu is not None and key not in "ax" else "-"
        pss = f"{s.pss_mb:.0f} MB" if s.pss_mb is not None else "-"
        print(
            f"{key:<2}{label:<48}{s.seconds:>8.1f}{rate:>8.2f}{vs_a:>7}{cpu_doc:>10.3f}"
            f"{beyond:>9}{s.rss_mb:>7.0f} MB{pss:>10}{f'{s.ok}/{s.total}':>6}"
        )
    print("  (CPU s/doc: user+sys of the whole tree per document; beyond x: minus the extract")
    print("   stage's CPU per document in the bare loop (x), i.e. what is not extraction)")
    print()
    print("ratios of docs/s (target):")
    for num, den, target in TARGETS:
        a, b = summaries.get(num), summaries.get(den)
        if a is None or b is None:
            shown = "not measured" if num not in variants or den not in variants else "no run"
            print(f"  ({num})/({den})  {shown:>6}   (>= {target})")
            continue
        ratio = b.seconds / a.seconds
        verdict = "met" if ratio >= target else "NOT met"
        print(f"  ({num})/({den})  {ratio:6.2f}   (>= {target}: {verdict})")


def print_memory(
    docs_list: list[int], variants: list[str], runs: dict[tuple[int, str], list[Run]]
) -> None:
    small, large = min(docs_list), max(docs_list)
    print()
    print("memory (peak of the whole process tree):")
    for key in variants:
        s1, s2 = summarise(runs.get((small, key), [])), summarise(runs.get((large, key), []))
        print(f"  ({key}) {VARIANTS[key][0]}")
        for docs, s in ((small, s1), (large, s2)):
            if s is None:
                print(f"    {docs:>6} docs: no successful run")
                continue
            pss = f"{s.pss_mb:.0f} MB" if s.pss_mb is not None else "-"
            print(
                f"    {docs:>6} docs: RSS {s.rss_mb:7.0f} MB, PSS {pss:>8}, "
                f"{docs / s.seconds:.2f} docs/s"
            )
        if s1 is None or s2 is None or large == small:
            continue
        grow_rss = (s2.rss_mb - s1.rss_mb) * 1024 / (large - small)
        peak = s2.pss_mb if s2.pss_mb is not None else s2.rss_mb
        which = "PSS" if s2.pss_mb is not None else "RSS"
        line = f"    growth: RSS {grow_rss:.1f} KB/doc"
        if s1.pss_mb is not None and s2.pss_mb is not None:
            grow_pss = (s2.pss_mb - s1.pss_mb) * 1024 / (large - small)
            line += f", PSS {grow_pss:.1f} KB/doc"
        else:
            grow_pss = grow_rss
        print(line)
        met = "met" if peak <= MEMORY_TARGET_MB else "NOT met"
        print(
            f"    at {large} docs: {which} {peak:.0f} MB (target <= {MEMORY_TARGET_MB:.0f}: {met})"
        )
        met = "met" if min(grow_rss, grow_pss) <= GROWTH_TARGET_KB else "NOT met"
        print(f"    growth (target <= {GROWTH_TARGET_KB:.0f} KB/doc: {met})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "data_dir",
        type=Path,
        nargs="?",
        default=DEFAULT_DATA,
        help="folder of the dev pages (*.html, *.html.gz; default: %(default)s)",
    )
    ap.add_argument("--docs", type=int, help=f"documents in the corpus (default {COPIES} x pages)")
    ap.add_argument("--variants", help="which variants (default a,x,b,c,d,e; --memory: c)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--config", help="YAML overlaying configs/default.yaml, for (b)-(d) and (x)")
    ap.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds one variant may run before it is stopped (default 3600)",
    )
    ap.add_argument(
        "--memory",
        action="store_true",
        help="(c) alone at the --memory-docs sizes, once each: peak and growth",
    )
    ap.add_argument(
        "--memory-docs",
        default="2000,20000",
        help="the two corpus sizes of --memory (default 2000,20000)",
    )
    ap.add_argument("--datatrove-venv", type=Path, help="venv for (e) (default: a cache folder)")
    ap.add_argument(
        "--datatrove-trafilatura",
        choices=("project", "pinned"),
        default="project",
        help="trafilatura in the datatrove venv: the project's version (default, so "
        "(c)/(e) compares pipelines, not extractor versions) or datatrove's own pin",
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
    default_variants = "c" if args.memory else ",".join(VARIANTS)
    variants = [v.strip() for v in (args.variants or default_variants).split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    if args.memory:
        docs_list = sorted({int(n) for n in args.memory_docs.split(",")})
        if len(docs_list) != 2:
            ap.error("--memory-docs takes two different sizes, e.g. 2000,20000")
        args.rounds = 1
    else:
        docs_list = [args.docs or COPIES * len(pages)]

    settings = extract_settings(args.config)
    print(
        f"cpus: {os.cpu_count()}; load average at start: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(
        f"python {sys.version.split()[0]}; trafilatura {importlib.metadata.version('trafilatura')}"
        f"; apache-beam {importlib.metadata.version('apache-beam')}"
    )
    print(f"effective extract: config{' (with ' + args.config + ')' if args.config else ''}:")
    for name, value in settings.items():
        print(f"  {name}: {value}")
    if not become_subreaper():
        print("note: could not become a child subreaper; CPU may miss orphaned processes")

    peer_python = None
    if "e" in variants:
        pin = None
        if args.datatrove_trafilatura == "project":
            pin = importlib.metadata.version("trafilatura")
        peer_python = datatrove_python(args.datatrove_venv or default_venv(pin), pin)
        print(
            f"datatrove {_version(peer_python, 'datatrove')}, trafilatura "
            f"{_version(peer_python, 'trafilatura')}, spacy {_version(peer_python, 'spacy')}; "
            f"its extractor: favour_precision={bool(settings.get('favor_precision'))}, "
            f"include_tables={settings.get('include_tables', True)}, deduplicate=False, "
            f"timeout={settings.get('timeout_s', 30.0)}"
        )

    tmp = Path(tempfile.mkdtemp(prefix="news-ingest-bench-"))
    try:
        runs = run_variants(args, variants, docs_list, pages, settings, peer_python, tmp)
        print("load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        if args.memory:
            print_memory(docs_list, variants, runs)
        else:
            print_table(docs_list[0], variants, runs)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
