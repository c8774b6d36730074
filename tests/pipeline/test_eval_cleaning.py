"""eval-cleaning on the labelled set, the seeds end to end against the goldens, and rule-pack
errors at start; all through the real CLI (in-process; the exit statuses it is about, as a
process)."""

from __future__ import annotations

import json
from pathlib import Path

from news_ingest.pipeline.eval_cleaning import DocScore, score
from news_ingest.transforms.schema import Article

from tests.conftest import ROOT, read_table, run_cli, run_main

FIXTURES = ROOT / "tests" / "fixtures" / "cleaning"
GOLDEN = ROOT / "tests" / "golden"


def test_eval_cleaning_on_labelled_set_reports_zero_left_and_lost():
    result = run_main("eval-cleaning", str(FIXTURES), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    total = next(line for line in lines if line.startswith("total"))
    # boilerplate, left, sentences, lost, fields, wrong
    numbers = [int(x) for x in total.split(")")[1].split()]
    assert numbers[1] == 0 and numbers[3] == 0 and numbers[5] == 0, result.stdout
    assert numbers[0] > 50 and numbers[2] > 90
    assert sum(1 for line in lines if line.startswith(("0", "s"))) == 8


def test_score_counts_leftovers_losses_and_wrong_fields():
    labels = {
        "boilerplate": ["Advertisement", "Leave a reply"],
        "sentences": ["Readers can leave a reply here.", "The council met."],
        "fields": {"dateline": "BRUSSELS"},
    }
    article = Article(
        article_id="a",
        source_kind="text",
        source_ref="x",
        text="Advertisement\n\nReaders can leave a reply here.",
    )
    got = score("doc", article, labels)
    assert got == DocScore(
        "doc",
        2,
        ["Advertisement"],
        2,
        ["The council met."],
        1,
        ["dateline: expected 'BRUSSELS', got None"],
    )
    rejected = score("doc", None, labels)
    assert len(rejected.lost) == 2


def test_eval_cleaning_strict_fails_on_a_weak_pack(tmp_path):
    pack = tmp_path / "weak.yaml"
    pack.write_text("rules: []\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"clean:\n  rules: {pack}\n  packs: ''\n", encoding="utf-8")
    result = run_cli("eval-cleaning", str(FIXTURES), "--config", str(config), "--strict")
    assert result.returncode == 1
    assert "boilerplate left: 'LEAVE A REPLY'" in result.stdout


def test_bad_rule_pack_fails_at_start_naming_the_rule(tmp_path):
    pack = tmp_path / "mine.yaml"
    pack.write_text("rules:\n  - {name: footer_junk, regex: '(oops', scope: line}\n", "utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"clean:\n  rules: {pack}\n", encoding="utf-8")
    result = run_cli("run", "--config", str(config), "--output", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "rule 'footer_junk': bad regex" in result.stderr
    assert not (tmp_path / "out" / "articles").exists()


def test_run_on_seeds_matches_goldens(seeds_run):
    out, result = seeds_run
    assert "top cleaning rules:" in result.stdout
    rows = read_table(out, "articles").to_pylist()
    assert len(rows) == 5
    for row in rows:
        golden = json.loads((GOLDEN / f"{Path(row['source_ref']).stem}.json").read_text("utf-8"))
        published = row["published_at"].isoformat() if row["published_at"] else None
        got = {
            "title": row["title"],
            "section": row["section"],
            "published_at": published,
            "published_offset_min": row["published_offset_min"],
            "published_precision": row["published_precision"],
            "dateline": row["dateline"],
            "publisher": row["publisher"],
            "distributor": row["distributor"],
            "credits": row["credits"],
            "language": row["language"],
            "word_count": row["word_count"],
            "content_hash": row["content_hash"],
            "rules_fired": row["rules_fired"],
            "text": row["text"].split("\n\n"),
        }
        assert got == golden, row["source_ref"]
