"""``news-ingest replay-dead-letters``: the dead letters' inputs again, once their cause is fixed."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest
from news_ingest.pipeline import cli
from news_ingest.transforms import sinks

from tests.conftest import SEEDS
from tests.fixtures.bad_inputs import ENGLISH, FRENCH

SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))[:3]


def manifest_of(out, run_id=None) -> dict:
    path = out / "_manifests" / f"{run_id}.json" if run_id else out / "_manifest.json"
    return json.loads(path.read_text())


def rows(out, table: str, run_id: str) -> list[dict]:
    found = []
    for path in sinks.committed_files(str(out), table, run_id):
        found += pq.read_table(path).to_pylist()
    return found


@pytest.fixture
def failed_run(tmp_path):
    """A run with three good inputs and three dead letters: a file over the size cap, an
    empty file (repaired later), and a file that will be deleted."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in SEED_NAMES:
        (inputs / name).write_bytes((SEEDS / name).read_bytes())
    (inputs / "big.txt").write_text(ENGLISH * 40, encoding="utf-8")
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "gone.txt").write_bytes(b"   ")
    cap = tmp_path / "cap.yaml"
    cap.write_text("read:\n  max_bytes: 10000\n")
    out = tmp_path / "out"
    code = cli.main(
        [
            "run",
            "--input",
            str(inputs),
            "--output",
            str(out),
            "--config",
            str(cap),
            "--run-id",
            "orig",
        ]
    )
    assert code == 0
    assert {
        os.path.basename(r["source_ref"]): r["reason"] for r in rows(out, "dead_letters", "orig")
    } == {
        "big.txt": "too_large",
        "empty.txt": "empty_text",
        "gone.txt": "empty_text",
    }
    return inputs, out


def fix(inputs, tmp_path) -> str:
    """Repair the empty file, delete another, and lift the size cap."""
    (inputs / "empty.txt").write_text(FRENCH, encoding="utf-8")
    (inputs / "gone.txt").unlink()
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("read:\n  max_bytes: 1000000\n")
    return str(fixed)


def test_replay_ingests_the_fixed_dead_letters_and_links_the_manifests(
    failed_run, tmp_path, capsys
):
    inputs, out = failed_run
    fixed = fix(inputs, tmp_path)
    code = cli.main(["replay-dead-letters", str(out), "--config", fixed, "--new-run-id", "again"])
    assert code == 0
    assert "1 dead-letter inputs are gone" in capsys.readouterr().err

    replay = manifest_of(out, "again")
    assert replay["replay_of"] == "orig"
    assert replay["replay"]["inputs"] == 2
    assert replay["replay"]["missing_inputs"] == [str(inputs / "gone.txt")]
    assert manifest_of(out, "orig")["replayed_by"] == ["again"]
    assert manifest_of(out)["run_id"] == "again"
    assert replay["config"]["read"]["max_bytes"] == 1000000

    replayed = sorted(os.path.basename(r["source_ref"]) for r in rows(out, "articles", "again"))
    assert replayed == ["big.txt", "empty.txt"]
    assert rows(out, "dead_letters", "again") == []
    # The inputs that succeeded in the original run were not read again.
    assert replay["inputs"]["paths"] == 2
    assert len(rows(out, "articles", "orig")) == len(SEED_NAMES)


def test_a_second_replay_does_not_ingest_again_what_the_first_replay_ingested(failed_run, tmp_path):
    inputs, out = failed_run
    fixed = fix(inputs, tmp_path)
    assert cli.main(["replay-dead-letters", str(out), "--config", fixed, "--new-run-id", "r1"]) == 0
    code = cli.main(
        [
            "replay-dead-letters",
            str(out),
            "--run-id",
            "orig",
            "--config",
            fixed,
            "--new-run-id",
            "r2",
        ]
    )
    assert code == 0
    assert rows(out, "articles", "r2") == []
    assert manifest_of(out, "r2")["excluded_already_ingested"] == 2
    assert manifest_of(out, "orig")["replayed_by"] == ["r1", "r2"]


def test_replay_only_the_chosen_reasons(failed_run, tmp_path):
    inputs, out = failed_run
    fixed = fix(inputs, tmp_path)
    code = cli.main(
        [
            "replay-dead-letters",
            str(out),
            "--config",
            fixed,
            "--reason",
            "too_large",
            "--new-run-id",
            "big",
        ]
    )
    assert code == 0
    assert [os.path.basename(r["source_ref"]) for r in rows(out, "articles", "big")] == ["big.txt"]


def test_a_run_without_dead_letters_has_nothing_to_replay(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(SEEDS), "--output", str(out), "--run-id", "clean"]) == 0
    assert cli.main(["replay-dead-letters", str(out)]) == 0
    assert "run clean has no dead letters to replay" in capsys.readouterr().out
    assert sorted(os.listdir(out / "_manifests")) == ["clean.json"]


def test_an_unknown_run_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["replay-dead-letters", str(tmp_path), "--run-id", "nope"]) == 2
    assert "no manifest of run nope" in capsys.readouterr().err
