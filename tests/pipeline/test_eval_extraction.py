"""The extraction benchmark's metric on hand-computed cases, and the eval-extraction command."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from pipeline import config
from pipeline.config import ConfigError
from pipeline.eval_extraction import (
    PageScore,
    aggregate,
    evaluate,
    half_of,
    page_score,
    score,
    shingle_counts,
)
from pipeline.graph import extract_options
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extract"

HARBOUR_TRUTH = """The harbour bridge reopened to traffic on Monday morning, three weeks after a winter \
storm tore away part of its eastern railing and damaged two of the supporting cables.
Engineers from the regional roads authority worked through the night to finish the final load \
tests, which the bridge passed shortly before dawn, according to the authority's chief inspector.
Commuters had faced detours of up to an hour while the crossing was closed, and local shops on \
the northern shore reported a sharp fall in customers during the repairs.
"We are relieved to have the bridge back, and grateful to the crews who worked in freezing \
conditions," the mayor told reporters at the reopening ceremony.
The authority said a permanent replacement for the damaged cables would be installed next \
spring, when the bridge will close again for two weekends."""


def test_shingles_are_four_token_multisets_of_word_runs():
    counts = shingle_counts("a-b c, d e a b c d")
    assert counts[("a", "b", "c", "d")] == 2
    assert counts[("b", "c", "d", "e")] == 1
    assert sum(counts.values()) == 6  # nine tokens, six windows
    assert shingle_counts("only three words") == {}


def test_page_score_by_hand():
    # truth shingles {abcd, bcde}; prediction {abcd, bcdx}: tp 1, fp 1, fn 1 -> 1/3 each
    s = page_score("k", "a b c d e", "a b c d x")
    assert (s.tp, s.fp, s.fn) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # a multiset: the prediction's second abcd (and bcda, cdab, dabc) are false positives
    s = page_score("k", "a b c d", "a b c d. a b c d")
    assert (s.tp, s.fp, s.fn) == pytest.approx((1 / 5, 4 / 5, 0))
    assert page_score("k", "", "") == PageScore("k", 0.0, 0.0, 0.0)


def test_aggregate_averages_precision_and_recall_over_their_own_pages():
    pages = [
        PageScore("perfect", 1.0, 0.0, 0.0),
        PageScore("half", 0.5, 0.25, 0.25),  # precision 2/3, recall 2/3
        PageScore("missed", 0.0, 0.0, 1.0),  # no prediction: counts for recall only
    ]
    result = aggregate(pages)
    assert result.precision == pytest.approx((1 + 2 / 3) / 2)
    assert result.recall == pytest.approx((1 + 2 / 3 + 0) / 3)
    p, r = (1 + 2 / 3) / 2, (1 + 2 / 3) / 3
    assert result.f1 == pytest.approx(2 * p * r / (p + r))


def test_score_counts_missing_predictions_as_empty():
    total, pages = score({"a": "w x y z", "b": "p q r s"}, {"a": "w x y z"})
    assert [p.key for p in pages] == ["a", "b"]
    assert total.precision == 1.0
    assert total.recall == 0.5


def test_halves_are_stable_and_both_used():
    keys = [f"page{i}" for i in range(40)]
    assert {half_of(k) for k in keys} == {"A", "B"}
    assert [half_of(k) for k in keys] == [half_of(k) for k in keys]


def _benchmark(tmp_path: Path) -> Path:
    bench = tmp_path / "bench"
    (bench / "html").mkdir(parents=True)
    truth = {
        "harbour": {"articleBody": HARBOUR_TRUTH, "url": "https://courier.example/harbour"},
        "library": {
            "articleBody": "The village council voted on Tuesday evening to keep the old library "
            "open for at least another year.",
            "url": "https://gazette.example/library",
        },
        "no-html": {"articleBody": "a page whose HTML is missing", "url": "https://x.example/"},
    }
    (bench / "ground-truth.json").write_text(json.dumps(truth), encoding="utf-8")
    for key, name in (("harbour", "harbour_article.html"), ("library", "bare_article.html")):
        with gzip.open(bench / "html" / f"{key}.html.gz", "wb") as fh:
            fh.write((FIXTURES / name).read_bytes())
    return bench


def test_evaluate_scores_the_pipeline_text(tmp_path):
    ev = evaluate(str(_benchmark(tmp_path)), config.load())
    by_key = {p.key: p for p in ev.pages}
    assert sorted(by_key) == ["harbour", "library"]
    assert by_key["harbour"].tp == pytest.approx(1.0)
    # the library truth is the first sentence only: every other shingle is a false positive
    assert by_key["library"].fn == 0.0
    assert by_key["library"].fp > 0.5
    assert ev.predictions["harbour"].startswith("The harbour bridge reopened")
    # the cleaning stage ran: paragraphs are separated by a blank line
    assert "\n\n" in ev.predictions["harbour"]
    assert ev.rejected == {}


def test_eval_extraction_command_prints_scores_speed_and_worst_pages(tmp_path):
    predictions = tmp_path / "predictions.json"
    result = run_cli(
        "eval-extraction",
        str(_benchmark(tmp_path)),
        "--worst",
        "1",
        "--predictions",
        str(predictions),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^pages\s+2$", out, re.M)
    f1 = float(re.search(r"^F1\s+([0-9.]+)$", out, re.M).group(1))
    precision = float(re.search(r"^precision\s+([0-9.]+)$", out, re.M).group(1))
    recall = float(re.search(r"^recall\s+([0-9.]+)$", out, re.M).group(1))
    assert recall == pytest.approx(1.0)
    assert 0 < precision < 1
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-3)
    assert re.search(r"^speed\s+[0-9.]+ docs/s", out, re.M)
    worst = out.split("worst 1 pages")[1]
    assert "library" in worst and "https://gazette.example/library" in worst
    assert "harbour" not in worst
    saved = json.loads(predictions.read_text(encoding="utf-8"))
    assert sorted(saved) == ["harbour", "library"]


def test_eval_extraction_skips_cleanly_when_the_directory_is_absent(tmp_path):
    result = run_cli("eval-extraction", str(tmp_path / "nowhere"))
    assert result.returncode == 0
    assert "skipped" in result.stdout
    assert "ground-truth.json" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_extract_config_section_reaches_the_extractor():
    cfg = config.load(
        overrides={
            "extract": {"max_link_density": None, "second_opinion": False, "max_elements": 9}
        }
    )
    options = extract_options(cfg)
    assert options.max_link_density is None
    assert options.second_opinion is False
    assert options.max_elements == 9
    assert extract_options(config.load()).max_link_density == 0.5


@pytest.mark.parametrize(
    ("runner", "workers", "isolation", "expected"),
    [
        ("direct", 1, "auto", "subprocess"),
        ("direct", 2, "auto", "thread"),  # fork inside multi-process workers broke the pool
        ("dask", 1, "auto", "thread"),
        ("direct", 1, "thread", "thread"),
        ("dataflow", 1, "subprocess", "subprocess"),
    ],
)
def test_isolation_auto_forks_only_in_the_in_process_runner(runner, workers, isolation, expected):
    cfg = config.load(
        overrides={
            "runner": {"name": runner, "workers": workers},
            "extract": {"isolation": isolation},
        }
    )
    assert extract_options(cfg).isolation == expected


@pytest.mark.parametrize(
    ("extract", "message"),
    [
        ({"max_link_density": 1.5}, "extract.max_link_density"),
        ({"min_agreement": -0.1}, "extract.min_agreement"),
        ({"max_elements": 0}, "extract.max_elements"),
        ({"isolation": "fork"}, "extract.isolation"),
        ({"second_opinion": "yes"}, "extract.second_opinion"),
        ({"link_density": 0.5}, "extract.link_density"),
    ],
)
def test_bad_extract_settings_fail_at_load_with_the_key(extract, message):
    with pytest.raises(ConfigError, match=message):
        config.load(overrides={"extract": extract})


def test_subprocess_isolation_on_dask_is_refused():
    with pytest.raises(ConfigError, match="not possible on dask"):
        config.load(overrides={"runner": {"name": "dask"}, "extract": {"isolation": "subprocess"}})
