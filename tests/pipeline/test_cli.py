"""The command line: flags it refuses, flags it passes to Beam, -v/-q anywhere, --dry-run,
--summary-json, and summary counters that add up (seeds and a feed run on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest
import yaml
from news_ingest.pipeline import cli

from tests.conftest import ROOT, read_table, run_cli
from tests.localhttp import Reply, html_reply, serving
from tests.pipeline.test_feeds_run import HARBOUR, page, rss

SEEDS = str(ROOT / "seeds")


@pytest.mark.parametrize(
    "args, suggestion",
    [
        (["run", "--ouput", "/tmp/x"], "did you mean --output?"),
        (["run", "--run_id=7"], "did you mean --run-id?"),
        (["run", "--num_worker", "3"], "did you mean --num_workers?"),
        (["stream", "--inptu", "x"], "did you mean --input?"),
        (["run", "--frobnicate"], "unrecognized argument --frobnicate"),
        (["run", "--input", "a", "b"], "unrecognized arguments: b"),
        (["load", "--duckdb", "x", "--ouput", "y"], "did you mean --output?"),
    ],
)
def test_unknown_flags_fail_with_exit_2_and_a_suggestion(capsys, tmp_path, args, suggestion):
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert suggestion in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_beam_flags_of_every_runner_pass_and_verbosity_is_accepted_anywhere(capsys, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--input", SEEDS, "--output", str(out), "--dry-run"]
    beam = ["--direct_num_workers=2", "--flink_master=localhost:8081", "--dask_local_workers=2",
            "--save_main_session", "--experiments=a"]  # fmt: skip
    assert cli.main(["-v", *args, *beam]) == 0
    assert cli.main([*args, "-q"]) == 0
    assert cli.main(["--quiet", *args, "--verbose"]) == 0
    text = capsys.readouterr().out
    assert "flink_master=localhost:8081" in text
    # a dry run lists the inputs and runs nothing
    assert text.count("seeds/000_9101e3246db773c2.txt") == 3
    assert not out.exists()


def test_dry_run_lists_feeds_and_settings(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("feeds:\n  sources:\n    - url: https://example.org/feed.xml\n")
    assert cli.main(["run", "--config", str(cfg), "--dry-run", "--workers", "3"]) == 0
    text = capsys.readouterr().out
    assert "inputs (0 files" in text
    assert "https://example.org/feed.xml" in text
    assert "runner: direct, 3 workers" in text


@pytest.mark.parametrize(
    "command", [["run", "--dry-run"], ["stream", "--input", SEEDS], ["replay", SEEDS]]
)
def test_output_config_and_run_id_set_up_run_stream_and_replay_alike(
    command, capsys, tmp_path, monkeypatch
):
    from news_ingest.pipeline.stream import launcher
    from news_ingest.pipeline.stream import manifest as stream_manifest

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("output:\n  shards: 3\n")
    out = str(tmp_path / "out")
    seen = {}

    def run_stream(cfg, source, *, mode, duration_s, run_id, beam_args):
        seen.update(output=(cfg.output.path, cfg.output.shards), run_id=run_id)
        return {}

    monkeypatch.setattr(launcher, "run_stream", run_stream)
    monkeypatch.setattr(stream_manifest, "summary_lines", lambda body: [])
    args = [*command, "--output", out, "--config", str(cfg_file), "--run-id", "r7"]
    assert cli.main(args) == 0
    if command[0] == "run":
        text = capsys.readouterr().out
        assert "(dry run, run id r7)" in text and f"output: {out} (3 shards per table)" in text
    else:
        assert seen == {"output": (out, 3), "run_id": "r7"}


def _per_document_stages_add_up(stages: dict[str, dict[str, int]], documents: int) -> None:
    """Every document leaves each stage once: passed + rejected + failed of a stage is what the
    stages before it passed on."""

    def out(name: str) -> int:
        return stages.get(name, {}).get("passed", 0)

    def seen(name: str) -> int:
        s = stages.get(name, {})
        return s.get("passed", 0) + s.get("rejected", 0) + s.get("failed", 0)

    # feed entries reach extraction through the fetch (or as documents of their own content)
    from_feeds = out("fetch") if "fetch" in stages else out("feed_entries")
    assert seen("extract") == out("read") + from_feeds
    assert seen("clean") == out("extract")
    assert seen("normalize") == out("clean")
    if "feeds" in stages:
        assert stages["feeds"]["passed"] == stages["feeds"]["entries"]
        assert seen("feed_entries") == stages["feeds"]["entries"]
        assert seen("fetch") == out("feed_entries")
    # A rule is counted by the stage that fired it, once.
    rules = [(name, key) for name, counters in stages.items() for key in counters if "rule:" in key]
    names = [key for _stage, key in rules]
    assert len(names) == len(set(names)), rules
    assert documents == seen("read") + stages.get("feeds", {}).get("entries", 0)


def test_quiet_seeds_run_writes_a_summary_json_whose_counters_add_up(capsys, tmp_path):
    summary = tmp_path / "s" / "summary.json"
    out = tmp_path / "out"
    args = ["-q", "run", "--output", str(out), "--summary-json", str(summary), "--run-id", "q1"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out == ""
    body = json.loads(summary.read_text())
    assert body == json.loads((out / "_manifest.json").read_text())
    assert body["inputs"]["specs"] == ["seeds"] and body["counts"]["articles"] == 5
    stages = body["stages"]
    _per_document_stages_add_up(stages, body["inputs"]["documents"])
    # the rule counters are documents: each as often as the articles that name it
    fired: dict[str, int] = {}
    for rules in read_table(out, "articles").column("rules_fired").to_pylist():
        for rule in rules:
            fired[rule] = fired.get(rule, 0) + 1
    for rule, n in fired.items():
        stage = "extract" if rule.startswith("extract:") else "clean"
        assert stages[stage][f"rule:{rule}"] == n


def test_a_config_with_feeds_reads_only_those_feeds_and_its_counters_add_up(capsys, tmp_path):
    with serving() as local:
        local.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private/\n")
        local.routes["/feed.xml"] = Reply(
            body=rss(local.base), headers={"Content-Type": "application/rss+xml"}
        )
        local.routes["/news/harbour.html?utm_source=rss"] = html_reply(
            page("Harbour reopens after the storm", HARBOUR)
        )
        cfg = tmp_path / "feeds.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "fetch": {"allow_networks": ["127.0.0.1/32"], "min_delay_s": 0.0, "retries": 0},
                    "feeds": {"sources": [{"url": local.url("/feed.xml"), "publisher": "P"}]},
                }
            )
        )
        summary = tmp_path / "summary.json"
        out = tmp_path / "out"
        args = ["run", "--config", str(cfg), "--output", str(out), "--summary-json", str(summary)]
        assert cli.main(args) == 0
    body = json.loads(summary.read_text())
    urls = read_table(out, "articles").column("url").to_pylist()
    assert urls == [local.url("/news/harbour.html?utm_source=rss")]  # no seeds
    assert body["inputs"]["specs"] == [] and body["inputs"]["paths"] == 0
    assert body["stages"]["feeds"] == {"entries": 3, "passed": 3}
    _per_document_stages_add_up(body["stages"], body["inputs"]["documents"])
    assert "feeds      entries 3, passed 3" in capsys.readouterr().out


def test_a_multi_process_run_keeps_stderr_free_of_beam_logging(tmp_path):
    proc = run_cli("run", "--workers", "2", "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "articles             5" in proc.stdout


def test_a_dataflow_run_without_its_options_is_a_one_line_error(capsys, tmp_path):
    args = ["run", "--runner", "dataflow", "--output", str(tmp_path / "out")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Missing required option: project" in err


def test_launch_hints_name_the_fix():
    from news_ingest.pipeline.runners import launch_hint

    assert "apache-beam[gcp]" in launch_hint(ImportError("No module named 'apitools'"))
    assert "--flink_master" in launch_hint(RuntimeError("cannot fetch flink job server jar"))
