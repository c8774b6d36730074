"""The landing-zone rule: a watched folder takes a file only once it is complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from news_ingest.pipeline.stream.sources import scan_files
from news_ingest.transforms.landing import (
    LandingRule,
    has_marker,
    is_ready,
    is_settled,
    is_temp_name,
)

from tests.conftest import ROOT, read_table


@pytest.mark.parametrize(
    "name",
    [".hidden.txt", "a.txt.tmp", "a.html.part", "a.html.crdownload", "a.txt._COPYING_",
     "a.txt.tmp-1234", "A.HTML.PART"],
)  # fmt: skip
def test_temporary_names_are_not_inputs(name):
    assert is_temp_name(os.path.join("in", name))


@pytest.mark.parametrize("name", ["a.txt", "part.html", "tmp.txt", "a.partial.html"])
def test_final_names_are_inputs(name):
    assert not is_temp_name(os.path.join("in", name))


def test_a_file_is_settled_once_its_mtime_is_settle_s_old(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x")
    st = os.stat(path)
    assert not is_settled(st, st.st_mtime + 9.9, 10.0)
    assert is_settled(st, st.st_mtime + 10.0, 10.0)


def test_marker_conventions(tmp_path):
    path = str(tmp_path / "a.txt")
    assert has_marker(path, None)
    assert not has_marker(path, "_SUCCESS")
    assert not has_marker(path, ".done")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "a.txt.done").write_text("")
    assert has_marker(path, "_SUCCESS") and has_marker(path, ".done")


def test_a_bad_rule_fails_at_construction():
    with pytest.raises(ValueError, match="marker"):
        LandingRule(settle_s=1, marker="READY")
    with pytest.raises(ValueError, match="settle_s"):
        LandingRule(settle_s=-1, marker=None)


def test_scan_lists_a_file_only_when_it_is_ready(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    for name in ("a.txt", "b.txt.part", ".c.txt", "d.txt._COPYING_"):
        (inbox / name).write_text("words")
    mtime = os.stat(inbox / "a.txt").st_mtime
    rule = LandingRule(settle_s=5, marker=None)
    assert scan_files([str(inbox)], rule, mtime + 1) == []
    found = scan_files([str(inbox)], rule, mtime + 5)
    assert [os.path.basename(f.path) for f in found] == ["a.txt"]
    marked = LandingRule(settle_s=0, marker=".done")
    assert scan_files([str(inbox)], marked, mtime) == []
    (inbox / "a.txt.done").write_text("")
    assert len(scan_files([str(inbox)], marked, mtime)) == 1
    assert is_ready(str(inbox / "a.txt"), os.stat(inbox / "a.txt"), mtime, marked)


def _wait(predicate, proc, limit=120.0) -> None:
    """Wait (bounded, without asserting on time) until ``predicate()`` or the process ends."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None and not predicate():
        time.sleep(0.2)


def test_a_file_written_in_two_parts_gives_one_article_with_the_whole_text(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = (ROOT / "seeds" / "003_cacfdc32ae52a058.txt").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    first, second = "".join(lines[:3]), "".join(lines[3:])
    golden = json.loads((ROOT / "tests" / "golden" / "003_cacfdc32ae52a058.json").read_text())
    cfg = tmp_path / "watch.yaml"
    cfg.write_text("stream:\n  poll_every: 0.3s\n  settle_s: 4\n")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "news_ingest.pipeline", "stream", "--config", str(cfg), "--input", str(inbox),
         "--output", str(out), "--run-id", "landing-1", "--duration", "300s"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        state = out / "_stream" / "state.json"
        _wait(state.exists, proc)  # the stream has completed a polling round
        target = inbox / "article.txt"
        written = lambda: bool(list(out.glob("articles/*/*.parquet")))  # noqa: E731
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(first)
            fh.flush()
            # The stream polls many times meanwhile: without the rule it ingests the first part.
            _wait(written, proc, limit=3)  # less than settle_s
            fh.write(second)
        _wait(written, proc)
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    articles = read_table(out, "articles").to_pylist()
    assert len(articles) == 1
    # The whole text: the same article as the batch run of the complete file.
    assert articles[0]["content_hash"] == golden["content_hash"]
    assert articles[0]["word_count"] == golden["word_count"]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["counts"]["duplicates"] == 0
    assert manifest["counts"]["dead_letters"] == 0


def _landing_folder(tmp_path):
    inbox = tmp_path / "landing"
    inbox.mkdir()
    seed = (ROOT / "seeds" / "000_9101e3246db773c2.txt").read_bytes()
    for name in ("old.txt", "new.txt", "half.txt.part", ".hidden.txt", "x.txt._COPYING_"):
        (inbox / name).write_bytes(seed)
    past = time.time() - 3600
    os.utime(inbox / "old.txt", (past, past))
    return inbox


def test_a_batch_glob_never_takes_temporary_names(tmp_path, capsys):
    from news_ingest.pipeline import cli

    inbox = _landing_folder(tmp_path)
    assert cli.main(["run", "--input", f"{inbox}/*", "--dry-run"]) == 0
    listed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert sorted(os.path.basename(p) for p in listed if p.startswith(str(inbox))) == [
        "new.txt",
        "old.txt",
    ]


def test_a_batch_run_over_a_landing_folder_takes_only_complete_files(tmp_path):
    from news_ingest.pipeline import cli

    inbox = _landing_folder(tmp_path)
    cfg = tmp_path / "landing.yaml"
    cfg.write_text("read:\n  landing: true\nstream:\n  settle_s: 60\n")
    out = tmp_path / "out"
    args = ["run", "--input", str(inbox), "--config", str(cfg), "--output", str(out)]
    assert cli.main(args) == 0
    refs = read_table(out, "articles").column("source_ref").to_pylist()
    assert [os.path.basename(r) for r in refs] == ["old.txt"]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["inputs"]["not_ready"] == 1
