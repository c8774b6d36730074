"""A run killed mid-way, then rerun with the same --run-id, yields exactly a clean run's rows.

``news-ingest run`` is started as a subprocess on a generated corpus and SIGKILLed at a chosen
point (while it writes shards to staging, and once it has begun to commit); a crash inside
``commit_run`` between two file moves is injected in-process. The clean run and the reruns are
in-process runs of the CLI. After each, a rerun with the same
run id must leave the same rows as an uninterrupted run: no partial files, no duplicates, no
leftovers of the killed attempt.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import cli
from news_ingest.transforms import sinks

from tests.conftest import ROOT, read_table, run_main
from tests.fixtures.bad_inputs import write_mixed_corpus
from tests.reliability.procs import children, survivors

RUN_ID = "kill-1"
SHARDS = "8"
TABLES = ("articles", "duplicates", "dead_letters")
# Columns that legitimately differ between two runs of the same inputs.
VOLATILE = ("ingested_at",)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    write_mixed_corpus(root / "in", 600, seed=7)
    clean = root / "clean"
    proc = run_main(*run_args(root / "in", clean))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((clean / "_manifest.json").read_text())
    return root / "in", rows_of(clean), undated(manifest["files"], manifest["ingest_date"])


def run_args(inputs, out) -> list[str]:
    return [
        "run",
        "--input",
        str(inputs),
        "--output",
        str(out),
        "--run-id",
        RUN_ID,
        "--shards",
        SHARDS,
    ]


def rows_of(out) -> dict[str, list[dict]]:
    """Every committed row per table, without the columns that differ between runs."""
    tables = {}
    for name in TABLES:
        rows = read_table(out, name).to_pylist()
        for row in rows:
            for column in VOLATILE:
                row.pop(column)
        tables[name] = sorted(rows, key=lambda r: r.get("article_id") or r["dead_letter_id"])
    return tables


def undated(files: dict[str, list[str]], ingest_date: str) -> dict[str, list[str]]:
    """The committed paths with the run's ingest date taken out: a rerun after midnight UTC
    commits the same files into the next day's partition (and removes the killed run's)."""
    return {
        table: [path.replace(f"ingest_date={ingest_date}", "ingest_date=*") for path in paths]
        for table, paths in files.items()
    }


def leftovers(out) -> list[str]:
    """Temporary or staged files: none may remain after a finished run."""
    found = glob.glob(os.path.join(str(out), "**", "*.tmp*"), recursive=True)
    staging = os.path.join(str(out), sinks.STAGING)
    return found + ([staging] if os.path.exists(staging) else [])


# The launcher of a run that SIGKILLs itself at its third move from staging into a table folder:
# the moves of a local commit take microseconds, too fast to catch by watching the folders.
KILL_IN_COMMIT = """
import os, signal, sys
from news_ingest.transforms import sinks
real, moves = os.replace, []
def replace(src, dst):
    if os.sep + sinks.STAGING + os.sep in str(src) and sinks.STAGING not in str(dst):
        moves.append(dst)
        if len(moves) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
from news_ingest.pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


def kill_when(inputs, out, ready) -> int:
    """Start a run, SIGKILL it as soon as ``ready(out)`` holds (``ready`` None: the run kills
    itself in its commit, ``KILL_IN_COMMIT``); return its exit status.

    The run has its own process group; no process of it (the extraction child) may outlive it.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    launcher = ["-m", "news_ingest.pipeline"] if ready else ["-c", KILL_IN_COMMIT]
    proc = subprocess.Popen(
        [sys.executable, *launcher, *run_args(inputs, out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    seen: set[int] = set()
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready is None:
                seen.update(children(proc.pid))  # the last children seen before it died
                time.sleep(0.1)
                continue
            if ready(out):
                seen.update(children(proc.pid))
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        status = proc.wait(timeout=60)
        assert survivors(proc.pid, sorted(seen)) == [], "a child outlived the killed launcher"
        return status
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def committed_paths(out) -> list[str]:
    return glob.glob(str(out / "*" / "ingest_date=*" / "*.parquet"))


def writing_shards(out) -> bool:
    return bool(glob.glob(os.path.join(str(out), sinks.STAGING, RUN_ID, "*", "*")))


@pytest.mark.parametrize(
    "ready", [writing_shards, None], ids=lambda f: f.__name__ if f else "committing"
)
def test_sigkill_then_rerun_gives_the_rows_of_a_clean_run(corpus, tmp_path, ready):
    inputs, clean, clean_files = corpus
    out = tmp_path / "out"
    status = kill_when(inputs, out, ready)
    assert status == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "_manifests" / f"{RUN_ID}.json").exists()
    if ready is None:  # killed after its second move: two files of the run are committed
        assert len(glob.glob(str(out / "*" / "ingest_date=*" / f"part-{RUN_ID}-*"))) == 2
    # Whatever the killed run committed is whole: every file reads back with its schema.
    for path in glob.glob(str(out / "*" / "ingest_date=*" / "*.parquet")):
        table = os.path.basename(os.path.dirname(os.path.dirname(path)))
        sinks.validate_table(pq.read_table(path), table)

    proc = run_main(*run_args(inputs, out))
    assert proc.returncode == 0, proc.stderr
    assert rows_of(out) == clean
    assert leftovers(out) == []
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["counts"] == {name: len(rows) for name, rows in clean.items()}
    assert undated(manifest["files"], manifest["ingest_date"]) == clean_files
    assert [p for p in committed_paths(out) if manifest["ingest_date"] not in p] == []


def test_a_crash_between_two_commit_moves_is_repaired_by_the_rerun(corpus, tmp_path, monkeypatch):
    inputs, clean, _files = corpus
    out = tmp_path / "out"
    moves = []
    real_replace = os.replace

    class Crash(BaseException):
        """Stands for the process dying: nothing after it runs."""

    def replace(src, dst):
        if os.sep + sinks.STAGING + os.sep in str(src) and sinks.STAGING not in str(dst):
            moves.append(dst)
            if len(moves) == 5:
                raise Crash
        real_replace(src, dst)

    monkeypatch.setattr(sinks.os, "replace", replace)
    with pytest.raises(Crash):
        cli.main(run_args(inputs, out))
    monkeypatch.undo()
    assert len(committed := glob.glob(str(out / "*" / "ingest_date=*" / "*.parquet"))) == 4
    assert committed and not (out / "_manifest.json").exists()

    assert cli.main(run_args(inputs, out)) == 0
    assert rows_of(out) == clean
    assert leftovers(out) == []
