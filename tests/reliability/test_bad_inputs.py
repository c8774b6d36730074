"""Bad input never crashes, hangs or vanishes: inputs = articles + duplicates + dead letters.

The corpus (tests/fixtures/bad_inputs) is generated into a temp folder and run through the real
CLI in a subprocess with a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import collections
import json
import os

import pytest

from tests.conftest import read_table, run_cli
from tests.fixtures.bad_inputs import (
    ARTICLES,
    DEAD_LETTERS,
    EITHER,
    MOJIBAKE,
    cases,
    write_corpus,
)

FAILURES = {"exception", "timeout"}
CASES = cases()
NAMES = {case.name for case in CASES}
BY_URL = {url: case.name for case in CASES for url in case.urls}


def case_of(row: dict) -> str:
    """The case a row came from: its file (``path`` or ``path#entry``), else its link."""
    name = os.path.basename(row["source_ref"].split("#", 1)[0])
    if name in NAMES:
        return name
    return BY_URL.get(row["source_ref"]) or BY_URL.get(row["url"]) or row["source_ref"]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    written = write_corpus(root / "in")
    out = root / "out"
    proc = run_cli(
        "run", "--input", str(root / "in"), "--output", str(out), "--run-id", "bad-1", timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    rows: dict[str, list[tuple[str, dict]]] = collections.defaultdict(list)
    for table in ("articles", "duplicates", "dead_letters"):
        for row in read_table(out, table).to_pylist():
            rows[case_of(row)].append((table, row))
    manifest = json.loads((out / "_manifest.json").read_text())
    return written, rows, manifest, proc.stdout


def test_inputs_equal_articles_plus_duplicates_plus_dead_letters(bad_run):
    written, rows, manifest, _ = bad_run
    counts = manifest["counts"]
    assert manifest["status"] == "succeeded"
    assert manifest["inputs"]["paths"] == len(written)
    documents = sum(c.documents for c in written)
    assert counts["articles"] + counts["duplicates"] + counts["dead_letters"] == documents
    assert manifest["inputs"]["documents"] == documents
    # Each document of each input appears exactly once across the three tables.
    assert {name: len(found) for name, found in rows.items()} == {
        c.name: c.documents for c in written
    }


def test_every_dead_letter_has_a_stage_a_reason_and_a_message(bad_run):
    _, rows, _, _ = bad_run
    dead = [row for found in rows.values() for table, row in found if table == "dead_letters"]
    assert dead
    for row in dead:
        assert row["stage"] and row["reason"] and row["error_message"], row
        # Bad input is an expected rejection; an exception here is a bug in a stage.
        assert row["reason"] not in FAILURES, (row["source_ref"], row["error_message"])


def test_the_summary_lists_every_dead_letter_reason(bad_run):
    _, rows, manifest, stdout = bad_run
    reasons = collections.Counter(
        f"{row['stage']}/{row['reason']}"
        for found in rows.values()
        for table, row in found
        if table == "dead_letters"
    )
    assert manifest["dead_letter_reasons"] == dict(reasons)
    for reason in reasons:
        assert reason in stdout


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_input_lands_where_it_belongs(bad_run, case):
    _, rows, _, _ = bad_run
    for table, row in rows[case.name]:
        check_outcome(case, table, row)


def check_outcome(case, table: str, row: dict) -> None:
    if case.table == DEAD_LETTERS or (case.table == EITHER and table == "dead_letters"):
        assert table == "dead_letters", f"{case.name} ({case.note}) became an article"
        assert row["reason"] in case.reasons, (row["stage"], row["reason"], row["error_message"])
        return
    kept = ("articles", "duplicates") if case.duplicate_group else ("articles",)
    assert table in kept, (case.note, row.get("reason"), row.get("error_message"))
    assert case.table in (ARTICLES, EITHER)
    for words in case.must_contain:
        assert words in row["text"], f"{case.name}: {words!r} not in {row['text'][:200]!r}"
    if case.decodes_cleanly:
        assert not [m for m in MOJIBAKE if m in row["text"]], row["text"][:200]
    assert "\r" not in row["text"]


def test_copies_in_different_encodings_are_one_article_and_duplicates(bad_run):
    _, rows, _, _ = bad_run
    groups = collections.defaultdict(list)
    for case in CASES:
        if case.duplicate_group:
            groups[case.duplicate_group].append(rows[case.name][0])
    assert groups
    for group, found in groups.items():
        tables = sorted(table for table, _ in found)
        assert tables == ["articles"] + ["duplicates"] * (len(found) - 1), group
        kept = next(row["article_id"] for table, row in found if table == "articles")
        assert all(row["duplicate_of"] == kept for table, row in found if table == "duplicates")


def test_no_unsafe_link_was_fetched(bad_run):
    _, rows, _, _ = bad_run
    found = {row["url"] or row["source_ref"]: row["reason"] for _, row in rows["unsafe_links.rss"]}
    for link, reason in found.items():
        expected = "blocked_address" if link.startswith("http://") else "no_link"
        assert reason in {expected, "blocked_scheme"}, (link, reason)


def test_the_huge_single_line_document_is_kept_whole(bad_run):
    _, rows, _, _ = bad_run
    ((table, row),) = rows["huge_single_line.txt"]
    assert table == "articles"
    assert row["word_count"] > 1_000_000
