"""The error budget: a run where too many records FAIL exits 1 and commits no articles.

Failures are injected by wrapping the real graph with one more stage that raises for chosen
inputs (the same ``ApplyStage`` every stage uses), so the test does not depend on a bug in a
stage staying unfixed.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable

import apache_beam as beam
import pytest
from news_ingest.pipeline import cli, graph
from news_ingest.transforms.schema import Article
from news_ingest.transforms.stage import ApplyStage

from tests.conftest import SEEDS, read_table

SEED_NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))


class _Explode(beam.DoFn):
    """Raises for the articles of the chosen input files; passes the others on."""

    def __init__(self, names: frozenset[str]):
        self.names = names

    def process(self, article: Article) -> Iterable[Article]:
        if os.path.basename(article.source_ref) in self.names:
            raise RuntimeError(f"injected failure for {article.source_ref}")
        yield article


@pytest.fixture
def explode(monkeypatch):
    """Make the articles of the named seed files fail in an extra stage of the real graph."""

    def install(names: list[str]) -> None:
        real_build = graph.build

        def build(p, cfg, paths, *args, **kwargs):
            out = real_build(p, cfg, paths, *args, **kwargs)
            kept, failed = out.articles | "Explode" >> ApplyStage(
                "explode", _Explode(frozenset(names))
            )
            dead = (out.dead_letters, failed) | "WithExploded" >> beam.Flatten()
            return graph.Outputs(articles=kept, duplicates=out.duplicates, dead_letters=dead)

        monkeypatch.setattr(graph, "build", build)

    return install


def run(out, *extra: str) -> tuple[int, dict]:
    code = cli.main(["run", "--input", str(SEEDS), "--output", str(out), *extra])
    return code, json.loads((out / "_manifest.json").read_text())


def run_files(out, table: str, run_id: str) -> list[str]:
    return glob.glob(os.path.join(str(out), table, "ingest_date=*", f"part-{run_id}-*.parquet"))


def test_over_budget_exits_1_commits_dead_letters_and_withholds_articles(tmp_path, explode, capsys):
    explode(SEED_NAMES[:4])
    code, manifest = run(tmp_path, "--run-id", "over")
    assert code == 1
    assert manifest["status"] == "failed_error_budget"
    assert manifest["error_budget"] == {
        "failed": 4,
        "records": 5,
        "failure_ratio": 0.8,
        "max_failure_ratio": 0.5,
        "exceeded": True,
    }
    assert manifest["withheld"] == {"articles": 1, "duplicates": 0}
    assert run_files(tmp_path, "articles", "over") == []
    assert run_files(tmp_path, "duplicates", "over") == []
    dead = read_table(tmp_path, "dead_letters").to_pylist()
    assert sorted(os.path.basename(r["source_ref"]) for r in dead) == SEED_NAMES[:4]
    assert {(r["stage"], r["reason"], r["error_type"]) for r in dead} == {
        ("explode", "exception", "RuntimeError")
    }
    assert manifest["counts"] == {"articles": 0, "duplicates": 0, "dead_letters": 4}
    assert "ERROR BUDGET EXCEEDED: 4 of 5 records failed" in capsys.readouterr().out


def test_within_budget_commits_everything(tmp_path, explode):
    explode(SEED_NAMES[:2])
    code, manifest = run(tmp_path, "--run-id", "within")
    assert code == 0
    assert manifest["status"] == "succeeded"
    assert manifest["error_budget"]["failure_ratio"] == 0.4
    assert manifest["error_budget"]["exceeded"] is False
    assert read_table(tmp_path, "articles").num_rows == 3
    assert read_table(tmp_path, "dead_letters").num_rows == 2


def test_a_ceiling_of_one_turns_the_check_off(tmp_path, explode):
    explode(SEED_NAMES)
    config = tmp_path / "budget.yaml"
    config.write_text("errors:\n  max_failure_ratio: 1.0\n")
    code, manifest = run(tmp_path / "out", "--config", str(config), "--run-id", "off")
    assert code == 0
    assert manifest["status"] == "succeeded"
    assert manifest["error_budget"]["failure_ratio"] == 1.0
    assert read_table(tmp_path / "out", "articles").num_rows == 0


def test_a_failed_rerun_removes_what_the_run_committed_before(tmp_path, explode):
    code, first = run(tmp_path, "--run-id", "same")
    assert code == 0 and first["counts"]["articles"] == 5
    explode(SEED_NAMES)
    code, second = run(tmp_path, "--run-id", "same")
    assert code == 1
    assert run_files(tmp_path, "articles", "same") == []
    assert second["withheld"]["articles"] == 0
    assert read_table(tmp_path, "dead_letters").num_rows == 5


def test_expected_rejections_do_not_spend_the_budget(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        (inputs / f"empty-{i}.txt").write_bytes(b"")
    (inputs / "real.txt").write_bytes((SEEDS / SEED_NAMES[0]).read_bytes())
    code = cli.main(["run", "--input", str(inputs), "--output", str(tmp_path / "out")])
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert code == 0
    assert manifest["counts"]["dead_letters"] == 3
    assert manifest["error_budget"]["failed"] == 0
    assert manifest["status"] == "succeeded"


def test_a_replay_after_the_fix_ingests_what_the_failed_run_withheld(
    tmp_path, explode, monkeypatch
):
    explode(SEED_NAMES)
    code, failed = run(tmp_path, "--run-id", "broken")
    assert code == 1 and failed["withheld"]["articles"] == 0
    assert failed["counts"]["dead_letters"] == 5

    monkeypatch.undo()  # the fix: the failing stage works again
    assert cli.main(["replay-dead-letters", str(tmp_path), "--new-run-id", "fixed"]) == 0
    assert len(run_files(tmp_path, "articles", "fixed")) == 1
    assert read_table(tmp_path, "articles").num_rows == 5
    original = json.loads((tmp_path / "_manifests" / "broken.json").read_text())
    assert original["replayed_by"] == ["fixed"]
    assert json.loads((tmp_path / "_manifest.json").read_text())["status"] == "succeeded"
