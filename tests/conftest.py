"""Shared fixtures: the project root, the seeds, and running the real CLI into a temp dir."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
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


def read_table(output: Path | str, name: str) -> pa.Table:
    """All committed rows of one output table, read back with pyarrow."""
    files = sorted(glob.glob(os.path.join(str(output), name, "ingest_date=*", "*.parquet")))
    assert files, f"no {name} files under {output}"
    return pa.concat_tables([pq.read_table(f) for f in files])
