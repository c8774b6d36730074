"""Runner options and the cloud configs: the graph builds (and survives the round trip through
the portable pipeline proto) under Dataflow and Flink options; the image pins match pyproject."""

from __future__ import annotations

import datetime as dt
import re
import tomllib

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)
from news_ingest.pipeline import config, graph, runners
from news_ingest.pipeline.options import NewsIngestRunnerOptions

from tests.conftest import ROOT

CONFIGS = ROOT / "configs"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s\"';]+)$")


def _build(cfg: config.Config, tmp_path) -> beam.Pipeline:  # type: ignore[no-untyped-def]
    options = runners.pipeline_options(cfg.runner.name, cfg.runner.workers, [], cfg.runner.options)
    p = beam.Pipeline(options=options)
    ctx = graph.RunContext("run-1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "test")
    graph.write(graph.build(p, cfg, ["a.txt", "b.html"]), str(tmp_path), ctx, cfg.output.shards)
    return p


def _labels(p: beam.Pipeline) -> set[str]:
    proto = p.to_runner_api()
    # The proto carries every DoFn pickled; reading it back unpickles them, as a worker would.
    beam.Pipeline.from_runner_api(proto, p.runner, p._options)
    return {t.unique_name for t in proto.components.transforms.values()}


def test_dataflow_config_builds_a_valid_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config.load(CONFIGS / "dataflow.yaml")
    p = _build(cfg, tmp_path)  # Pipeline() validates the options (GCS paths, project, ...)
    assert type(p.runner).__name__ == "DataflowRunner"
    options = p._options
    gcp = options.view_as(GoogleCloudOptions)
    assert gcp.project and gcp.region and gcp.temp_location.startswith("gs://")
    worker = options.view_as(WorkerOptions)
    assert worker.sdk_container_image and worker.num_workers == cfg.runner.workers
    setup = options.view_as(SetupOptions)
    assert setup.save_main_session is False and setup.sdk_location == "container"
    labels = _labels(p)
    expected = {"StageArticles", "WriteArticlesAndDuplicates", "WriteDeadLetters", "ListedInputs"}
    assert expected <= labels


def test_flink_config_builds_a_portable_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config.load(CONFIGS / "flink.yaml")
    p = _build(cfg, tmp_path)
    assert type(p.runner).__name__ == "FlinkRunner"
    portable = p._options.view_as(PortableOptions)
    assert portable.environment_type == "DOCKER" and portable.environment_config
    assert p._options.get_all_options()["parallelism"] == cfg.runner.workers
    assert "WriteArticlesAndDuplicates" in _labels(p)


def test_dask_config_names_our_runner(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config.load(CONFIGS / "dask.yaml")
    p = _build(cfg, tmp_path)
    assert isinstance(p.runner, runners.NewsIngestDaskRunner)
    assert p._options.view_as(NewsIngestRunnerOptions).dask_local_workers == cfg.runner.workers


def test_command_line_flags_win_over_config_options() -> None:
    options = runners.pipeline_options(
        "dataflow", 3, ["--region=us-east1", "--num_workers=7"], {"region": "europe-west1"}
    )
    assert options.view_as(GoogleCloudOptions).region == "us-east1"
    assert options.view_as(WorkerOptions).num_workers == 7


@pytest.mark.parametrize("workers, mode", [(1, "in_memory"), (2, "multi_processing")])
def test_direct_runner_is_named_explicitly(workers: int, mode: str) -> None:
    options = runners.pipeline_options("direct", workers, [])
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.view_as(DirectOptions).direct_running_mode == mode


def test_unknown_runner_is_refused() -> None:
    with pytest.raises(ValueError, match="not available"):
        runners.pipeline_options("spark", 1, [])


def test_option_flags_from_yaml_values() -> None:
    flags = runners.option_flags(
        {"a": True, "b": False, "c": None, "d": 3, "e": ["x", "y"], "save_main_session": False}
    )
    assert flags == ["--a", "--d=3", "--e=x", "--e=y", "--no_save_main_session"]


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {}
    for spec in data["project"]["dependencies"]:
        match = PIN.match(spec)
        assert match, f"pyproject dependency is not an exact pin: {spec}"
        pins[match.group(1).lower()] = match.group(3)
    return pins


def test_dockerfile_pins_match_pyproject() -> None:
    text = DOCKERFILE.read_text()
    pins = _pyproject_pins()  # every runtime dependency is an exact pin
    # The image pins nothing of its own but pip (at CI's pin): its dependencies are pyproject's
    # exact pins, installed from pyproject.toml itself (with the gcp extra, pinned to its Beam).
    ci_pip = re.search(r"pip==([\d.]+)", (ROOT / ".ci" / "run").read_text())
    assert ci_pip
    assert re.findall(r"([\w-]+)==([\d.]+)", text) == [("pip", ci_pip.group(1))]
    assert "COPY pyproject.toml" in text
    assert 'pip install ".[gcp]"' in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'gcp = ["apache-beam[gcp]=={pins["apache-beam"]}"]' in pyproject
    beam_version = pins["apache-beam"]
    python = re.search(r"requires-python = \">=(\d+\.\d+)", (ROOT / "pyproject.toml").read_text())
    assert python
    py = python.group(1)
    assert f"FROM apache/beam_python{py}_sdk:{beam_version} AS beam_sdk" in text
    assert re.search(
        rf"^FROM python:{re.escape(py)}\.\d+-slim-\w+(@sha256:[0-9a-f]{{64}})?$", text, re.M
    )
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
    assert "save_main_session" not in text.replace("no save_main_session", "")
