"""Shared fixtures: the project root, the seeds, and running the CLI into a temp dir.

Two ways to run the CLI: ``run_main`` calls ``news_ingest.pipeline.cli.main`` in this process
(the same argument parsing, graph, DirectRunner and commit, without paying Python's and Beam's
start-up per run), and ``run_cli`` starts ``python -m news_ingest.pipeline`` as a user does, for
what only a process shows: its exit status, its whole stderr, signals, child processes.
"""

from __future__ import annotations

import contextlib
import glob
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def seeds_dir() -> Path:
    return SEEDS


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m news_ingest.pipeline ARGS`` as a user would, in a fresh process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "news_ingest.pipeline", *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _process_state_restored(cwd: Path) -> Iterator[None]:
    """What ``cli.main`` changes for the rest of a process, put back after it: the current
    directory, the environment, the root logger's level and filters and the libraries' logger
    levels (``configure_logging``), and ``sys.executable`` (the DirectRunner's worker command)."""
    from news_ingest.pipeline.cli import NOISY

    old_cwd = os.getcwd()
    environ = dict(os.environ)
    root = logging.getLogger()
    root_level, root_filters = root.level, list(root.filters)
    levels = {name: logging.getLogger(name).level for name in NOISY}
    executable = sys.executable
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(environ)
        root.setLevel(root_level)
        root.filters = root_filters
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        sys.executable = executable


def run_main(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``news_ingest.pipeline.cli.main(ARGS)`` in this process, from ``cwd`` (default: the
    checkout, as ``run_cli``), with what it prints on stdout and stderr captured.

    The result has ``run_cli``'s shape: ``returncode`` is what ``main`` returns (the process's
    exit status through ``sys.exit(main())``), or the code of a ``SystemExit`` (argparse).
    ``stderr`` holds what the CLI prints there, not library logging (pytest captures that).
    """
    from news_ingest.pipeline import cli

    out, err = io.StringIO(), io.StringIO()
    with (
        _process_state_restored(cwd or ROOT),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(
        ["news-ingest", *args], code, stdout=out.getvalue(), stderr=err.getvalue()
    )


def read_table(output: Path | str, name: str) -> pa.Table:
    """All committed rows of one output table, read back with pyarrow."""
    files = sorted(glob.glob(os.path.join(str(output), name, "ingest_date=*", "*.parquet")))
    assert files, f"no {name} files under {output}"
    return pa.concat_tables([pq.read_table(f) for f in files])


@pytest.fixture(scope="session")
def seeds_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One default run of the seeds (``news-ingest run --run-id seeds-1``), read by the tests of
    several modules that only read its output: (output root, the finished command)."""
    out = tmp_path_factory.mktemp("seeds") / "out"
    done = run_main("run", "--output", str(out), "--run-id", "seeds-1")
    assert done.returncode == 0, done.stderr
    return out, done


# Modules that run whole pipelines, longest first (measured with --durations on 2 cores). xdist
# hands tests out in this order (``--dist worksteal``, pyproject): starting the long ones first
# keeps one of them from being the last to finish. Modules not named here follow in collection
# order.
SLOW_FIRST = (
    "tests/pipeline/test_output_on_object_storage.py",
    "tests/pipeline/test_dask.py",
    "tests/pipeline/test_one_index.py",
    "tests/pipeline/test_one_poller.py",
    "tests/pipeline/test_ids_not_text.py",
    "tests/reliability/test_kill_rerun.py",
    "tests/reliability/test_signals.py",
    "tests/pipeline/test_stream_e2e.py",
    "tests/pipeline/test_load.py",
    "tests/pipeline/test_replay_dead_letters.py",
    "tests/pipeline/test_object_storage.py",
    "tests/reliability/test_bad_inputs.py",
    "tests/pipeline/test_dedup_e2e.py",
    "tests/pipeline/test_run_e2e.py",
    "tests/pipeline/test_cli.py",
    "tests/pipeline/test_progress.py",
    "tests/reliability/test_bundle_retry.py",
    "tests/reliability/test_landing.py",
    "tests/pipeline/test_feeds_run.py",
    "tests/pipeline/test_sitemaps_run.py",
    "tests/reliability/test_faults.py",
    "tests/reliability/test_error_budget.py",
    "tests/pipeline/test_flex_template.py",
    "tests/pipeline/test_one_core.py",
    "tests/pipeline/test_eval_extraction.py",
    "tests/pipeline/test_eval_cleaning.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(SLOW_FIRST)}
    # A stable sort: the tests of a module keep their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
