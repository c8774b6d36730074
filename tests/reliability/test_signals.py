"""SIGINT, SIGTERM and SIGKILL of ``news-ingest run`` mid-run: one line, the signal's exit code,
nothing committed, nothing staged, and no child process left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest
from news_ingest.transforms import sinks

from tests.conftest import ROOT
from tests.fixtures.bad_inputs import write_mixed_corpus
from tests.reliability.procs import children, survivors, wait_for

RUN_ID = "sig-1"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    write_mixed_corpus(root / "in", 300, seed=3)
    return root / "in"


@pytest.fixture
def launch(tmp_path):
    """Start ``news-ingest run`` in its own process group (its pgid is its pid), stderr to a
    file (a surviving child holding a pipe would block reading it); kill the group after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(inputs, out, *extra: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "news_ingest.pipeline", "run", "--input", str(inputs),
                 "--output", str(out), "--run-id", RUN_ID, *extra],
                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def signal_mid_run(proc: subprocess.Popen[bytes], sig: int, group: bool = False) -> list[int]:
    """Send ``sig`` (to the whole process group, as a terminal's Ctrl-C, when ``group``) once
    the run extracts (a child process is up); wait (bounded) for the launcher to exit; return
    the children seen when the signal was sent."""
    assert wait_for(lambda: bool(children(proc.pid)), proc=proc), "no child process started"
    seen = children(proc.pid)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    proc.wait(timeout=120)
    return seen


@pytest.mark.parametrize(
    "sig, code, workers, group",
    [
        (signal.SIGINT, 130, "1", False),
        (signal.SIGTERM, 143, "1", False),
        (signal.SIGINT, 130, "2", True),  # Ctrl-C in a terminal: the whole group gets it
    ],
)
def test_an_interrupted_run_says_so_in_one_line_and_commits_nothing(
    corpus, tmp_path, launch, sig, code, workers, group
):
    out = tmp_path / "out"
    proc = launch(corpus, out, "--workers", workers)
    seen = signal_mid_run(proc, sig, group)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [
        f"news-ingest: interrupted; nothing committed for run {RUN_ID}"
    ]
    assert not (out / sinks.STAGING / RUN_ID).exists()
    assert not (out / "_index" / sinks.STAGING / RUN_ID).exists()
    assert not (out / "_manifests" / f"{RUN_ID}.json").exists()
    assert not list(out.glob(f"*/ingest_date=*/part-{RUN_ID}-*"))
    assert survivors(proc.pid, seen) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_child_outlives_a_sigkilled_launcher(corpus, tmp_path, launch, workers):
    proc = launch(corpus, tmp_path / "out", "--workers", workers)
    seen = signal_mid_run(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    # A child tied to the launcher (PR_SET_PDEATHSIG) is killed by the kernel with it.
    assert survivors(proc.pid, seen) == []


def test_a_forked_child_is_tied_to_its_parent_at_the_fork():
    """After ``tie_forks_to_parent`` (which the CLI calls first), a process forked by a run
    asks for SIGKILL on its parent's death before running anything else: read back with
    ``PR_GET_PDEATHSIG`` in the child."""
    import ctypes
    import multiprocessing

    from news_ingest.transforms.children import tie_forks_to_parent

    def report(conn):
        libc = ctypes.CDLL(None, use_errno=True)
        value = ctypes.c_int(-1)
        libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        conn.send(value.value)
        conn.close()

    assert tie_forks_to_parent()
    ctx = multiprocessing.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=report, args=(child_end,))
    child.start()
    try:
        assert parent_end.poll(30), "the forked child did not report"
        assert parent_end.recv() == signal.SIGKILL
    finally:
        child.join(30)
    assert child.exitcode == 0
