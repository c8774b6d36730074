"""The Dataflow Flex Template: its metadata declares exactly the `news-ingest run` flags, and the
image is set up as a template launcher (no Dataflow job can run here)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from news_ingest.pipeline import batch, cli, flex

from tests.conftest import read_table, run_main

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "docker" / "flex-template" / "metadata.json"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def run_parser() -> argparse.ArgumentParser:
    (sub,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["run"]


def test_metadata_parameters_are_the_run_flags() -> None:
    meta = json.loads(METADATA.read_text())
    names = [p["name"] for p in meta["parameters"]]
    flags = [a.dest for a in run_parser()._actions if a.option_strings and a.dest != "help"]
    # every run flag but the runner, which the template fixes to Dataflow, and the two that only
    # make sense for a launcher run by hand
    assert set(flex.FIXED) == {"runner"}
    assert set(flex.LAUNCHER_ONLY) == {"summary_json", "dry_run"}
    assert names == [f for f in flags if f not in flex.FIXED and f not in flex.LAUNCHER_ONLY]
    assert names == flex.template_parameters()
    assert len(names) == len(set(names))
    for param in meta["parameters"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", param["name"])
        assert param["label"] and param["helpText"]
        assert param["isOptional"] is True  # every run flag has a default
    regexes = {p["name"]: p.get("regexes") for p in meta["parameters"]}
    assert regexes["run_id"] == [batch.RUN_ID.pattern]
    assert meta["streaming"] is False


def test_parameters_become_run_flags_and_the_rest_goes_to_beam() -> None:
    argv = flex.run_argv(
        [
            "--input=gs://b/in/*.warc.gz,gs://b/more/",
            "--sitemap=https://news.example/sitemap.xml",
            "--output=gs://b/out",
            "--run_id=nightly-1",
            "--shards=4",
            "--runner=DataflowRunner",
            "--project=my-project",
            "--template_location=gs://b/staging/job.json",
        ]
    )
    args, beam_args = cli.parser().parse_known_args(argv)
    assert args.command == "run"
    assert args.input == ["gs://b/in/*.warc.gz", "gs://b/more/"]
    assert args.sitemap == ["https://news.example/sitemap.xml"]
    assert (args.output, args.run_id, args.shards, args.runner) == (
        "gs://b/out",
        "nightly-1",
        4,
        "dataflow",
    )
    assert beam_args == ["--project=my-project", "--template_location=gs://b/staging/job.json"]


def test_image_is_a_template_launcher_pinned_and_not_root() -> None:
    text = DOCKERFILE.read_text()
    py_file = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", text)
    assert py_file and py_file.group(1) == "/opt/news-ingest/docker/flex-template/main.py"
    assert "COPY docker/flex-template ./docker/flex-template" in text
    assert (
        "from news_ingest.pipeline.flex import main"
        in (ROOT / "docker/flex-template/main.py").read_text()
    )
    assert "COPY --from=template_launcher /opt/google/dataflow/python_template_launcher" in text
    # every base image at an exact version (a digest, or a tag that names a release)
    for image in re.findall(r"^FROM (\S+)", text, re.M):
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name and tag and tag != "latest", image
        assert re.search(r"\d", tag), image
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert text.rstrip().endswith('ENTRYPOINT ["/opt/apache/beam/boot"]')


def test_a_template_launch_commits_in_the_job(tmp_path: Path) -> None:
    """A template launch (the Flex launcher passes --template_location) only stages the job;
    the commit and the manifest are the job's last step. On the DirectRunner the "job" runs at
    once, in-process, so its commit can be checked here."""
    out = tmp_path / "out"
    done = run_main(
        "run", "--input", str(ROOT / "seeds"), "--output", str(out), "--run-id", "flex-1",
        f"--template_location={tmp_path / 'job.json'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "job staged" in done.stdout
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["run_id"] == "flex-1"
    assert manifest["status"] == "succeeded"
    assert manifest["counts"]["articles"] == 5
    assert manifest["stages"] == {}  # Beam's counters are not readable inside the job
    assert read_table(out, "articles").num_rows == 5
    assert not list((out / "_staging").glob("flex-1/**/*.parquet"))
    # the launch marker went with the staging folder: a retried commit step does nothing
    marker = out / "_staging" / "flex-1" / batch.LAUNCH_MARKER
    assert not marker.exists()


def test_a_retried_commit_step_leaves_a_committed_run_alone(tmp_path: Path) -> None:
    calls: list[tuple[object, ...]] = []

    def finish(*args: object) -> batch.RunResult:
        calls.append(args)
        return batch.RunResult(manifest={"run_id": "r"}, manifest_path="m")

    marker = tmp_path / batch.LAUNCH_MARKER
    assert batch.commit_once(str(marker), finish) is None  # already committed: no marker
    assert calls == []
    marker.write_text("r")
    done = batch.commit_once(str(marker), finish)
    assert done is not None and done.manifest == {"run_id": "r"}
    assert calls == [({}, None)]
