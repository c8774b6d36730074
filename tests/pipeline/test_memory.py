"""The allocator settings a run gives itself and the processes it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# A process that applies the settings, then reports its own pyarrow pool and what a child it
# starts (as the launcher starts Beam's workers) gets.
PROBE = """
import json, subprocess, sys
from news_ingest.pipeline.memory import lean_allocators
lean_allocators()
import pyarrow as pa
child = subprocess.run([sys.executable, "-c",
    "import json, os, pyarrow as pa; print(json.dumps([pa.default_memory_pool().backend_name,"
    " os.environ.get('MALLOC_ARENA_MAX')]))"], capture_output=True, text=True, check=True)
print(json.dumps({"own": pa.default_memory_pool().backend_name,
                  "child": json.loads(child.stdout)}))
"""


def probe(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MALLOC_ARENA_MAX", "ARROW_DEFAULT_MEMORY_POOL")
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_launcher_and_the_processes_it_starts_use_the_system_pool_and_two_arenas():
    assert probe() == {"own": "system", "child": ["system", "2"]}


def test_settings_already_in_the_environment_are_kept():
    found = probe(MALLOC_ARENA_MAX="4", ARROW_DEFAULT_MEMORY_POOL="mimalloc")
    assert found["own"] != "system" and found["child"][0] != "system"
    assert found["child"][1] == "4"
