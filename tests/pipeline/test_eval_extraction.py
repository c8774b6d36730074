"""The three scoring formats on hand-computed cases, and the eval-extraction command on small
labelled sets written by the tests."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from news_ingest.pipeline import config
from news_ingest.pipeline.config import ConfigError
from news_ingest.pipeline.eval_extraction import (
    PageScore,
    SnippetCounts,
    aggregate,
    author_is_noisy,
    date_outcome,
    half_of,
    local_date,
    page_score,
    paired_bootstrap,
    score,
    shingle_counts,
    snippet_counts,
)
from news_ingest.pipeline.graph import extract_options

from tests.conftest import run_cli, run_main

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


GERMAN = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Neue Brücke</title>
<meta name="author" content="Jana Weber"></head>
<body><article>
<p>Die neue Brücke über den Fluss wurde am Montag nach drei Jahren Bauzeit eröffnet, und viele
Anwohner kamen zur feierlichen Eröffnung mit dem Bürgermeister und den Ingenieuren.</p>
<p>Der Verkehr in der Innenstadt soll dadurch deutlich abnehmen, sagte die Stadtverwaltung, die
mit mehreren tausend Fahrzeugen weniger pro Tag in den engen Straßen der Altstadt rechnet.</p>
</article></body></html>"""

EMPTY = "<!DOCTYPE html><html><head><title>x</title></head><body></body></html>"

WRONG_DATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Council</title>
<meta property="article:published_time" content="2023-05-02T10:00:00Z"></head>
<body><article><p>The council met again to discuss the budget for the coming year, and the
members agreed on most points after a long debate that lasted well into the evening.</p>
</article></body></html>"""


def _write_set(root: Path, name: str, label_file: str, labels: dict, pages: dict) -> Path:
    folder = root / name
    (folder / "html").mkdir(parents=True)
    (folder / label_file).write_text(json.dumps(labels), encoding="utf-8")
    for key, html in pages.items():
        with gzip.open(folder / "html" / f"{key}.html.gz", "wb") as fh:
            fh.write(html.encode("utf-8"))
    return folder


def _data(root: Path) -> Path:
    """A data root with one small set of each format, labels chosen so that every figure can
    be computed by hand."""
    harbour = (FIXTURES / "harbour_article.html").read_text(encoding="utf-8")
    library = (FIXTURES / "bare_article.html").read_text(encoding="utf-8")
    _write_set(
        root,
        "news",
        "ground-truth.json",
        {
            "harbour": {"articleBody": HARBOUR_TRUTH, "url": "https://courier.example/harbour"},
            # nothing of this is on the page: tp 0, so precision 0 and recall 0
            "library": {
                "articleBody": "Nothing in this sentence appears anywhere on that page at all.",
                "url": "https://gazette.example/library",
            },
            "no-html": {"articleBody": "a page whose HTML is missing", "url": ""},
        },
        {"harbour": harbour, "library": library},
    )
    _write_set(
        root,
        "web",
        "snippets.json",
        {
            # tp 2, fn 1, fp 1, tn 1
            "harbour": {
                "url": "https://courier.example/harbour",
                "with": [
                    "harbour bridge reopened to traffic",
                    "grateful to the  crews",
                    "a sentence that is not there",
                ],
                "without": ["worked through the night", "no such words on the page"],
            },
            # tp 1
            "library": {
                "url": "",
                "with": ["keep the old library open for at least another year"],
                "without": [],
            },
            # no text: fn 1
            "empty": {"url": "", "with": ["anything"], "without": []},
            "german": {"url": "", "with": [], "without": []},
        },
        {"harbour": harbour, "library": library, "empty": EMPTY, "german": GERMAN},
    )
    _write_set(
        root,
        "dated",
        "dates.json",
        {
            "harbour": {"url": "", "date": "2024-10-28"},  # right
            "wrong": {"url": "", "date": "2023-05-03"},  # the page says 2023-05-02: wrong
            "library": {"url": "", "date": "2020-01-01"},  # the page has no date: none
            "undated": {"url": "", "date": None},  # not scored
        },
        {"harbour": harbour, "wrong": WRONG_DATE, "library": library, "undated": library},
    )
    return root


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One run of the command on the three small sets: (data root, stdout, JSON, predictions)."""
    tmp = tmp_path_factory.mktemp("eval")
    data = _data(tmp / "data")
    figures, predictions = tmp / "figures.json", tmp / "predictions"
    result = run_cli(
        "eval-extraction",
        str(data),
        "--jobs",
        "2",
        "--json",
        str(figures),
        "--predictions",
        str(predictions),
    )
    assert result.returncode == 0, result.stderr
    return data, result.stdout, json.loads(figures.read_text(encoding="utf-8")), predictions


def test_shingle_f1_of_the_pipeline_by_hand(evaluated):
    _, out, figures, _ = evaluated
    news = figures["sets"]["news"]
    assert news["kind"] == "article" and news["pages"] == 2
    pipeline = news["systems"]["pipeline"]["all"]
    # harbour: P = R = 1; library: tp 0, so P = R = 0; averages 0.5 and 0.5
    assert pipeline["precision"] == pytest.approx(0.5)
    assert pipeline["recall"] == pytest.approx(0.5)
    assert pipeline["f1"] == pytest.approx(0.5)
    assert set(news["systems"]) == {"pipeline", "trafilatura", "trafilatura-precision"}
    assert re.search(r"^news: shingle F1, 2 scored pages", out, re.M)
    assert re.search(r"^  pipeline\s+0\.5000 \(0\.5000/0\.5000\)", out, re.M)


def test_snippet_scores_by_hand_for_every_system(evaluated):
    _, out, figures, predictions = evaluated
    web = figures["sets"]["web"]
    assert web["kind"] == "snippets"
    for system in ("pipeline", "trafilatura", "trafilatura-precision"):
        f = web["systems"][system]["all"]
        assert (f["tp"], f["fn"], f["fp"], f["tn"]) == (3, 2, 1, 1), system
        assert f["precision"] == pytest.approx(3 / 4)
        assert f["recall"] == pytest.approx(3 / 5)
        assert f["f1"] == pytest.approx(6 / 9)
    saved = json.loads((predictions / "web" / "pipeline.json").read_text(encoding="utf-8"))
    assert saved["empty"] == ""
    assert "harbour bridge reopened" in saved["harbour"]
    assert web["rejected"] == {"no_article": 1}


def test_dates_right_wrong_none_by_hand(evaluated):
    _, out, figures, _ = evaluated
    dated = figures["sets"]["dated"]
    assert dated["kind"] == "dates"
    assert dated["scored_pages"] == 3  # the undated page is not scored
    for system in ("pipeline", "htmldate"):
        f = dated["systems"][system]["all"]
        assert (f["right"], f["wrong"], f["none"]) == (1, 1, 1), system
    assert dated["best_baseline"] == "htmldate"
    assert dated["difference"]["all"] == {"point": 0, "low": 0, "high": 0}
    assert re.search(r"^  htmldate\s+1/1/1", out, re.M)


def test_halves_split_the_pages_and_intervals_hold_the_difference(evaluated):
    _, _, figures, _ = evaluated
    for name, fig in figures["sets"].items():
        for system, parts in fig["systems"].items():
            assert parts["A"]["pages"] + parts["B"]["pages"] == parts["all"]["pages"], name
            if fig["kind"] == "dates":
                for outcome in ("right", "wrong", "none"):
                    assert parts["A"][outcome] + parts["B"][outcome] == parts["all"][outcome]
            if fig["kind"] == "snippets":
                assert parts["A"]["tp"] + parts["B"]["tp"] == parts["all"]["tp"], system
        best = fig["best_baseline"]
        values = {s: fig["systems"][s]["all"]["value"] for s in fig["systems"]}
        assert values[best] == max(v for s, v in values.items() if s != "pipeline")
        for part, d in fig["difference"].items():
            point = fig["systems"]["pipeline"][part]["value"] - fig["systems"][best][part]["value"]
            assert d["point"] == pytest.approx(point)
            assert d["low"] - 1e-9 <= d["point"] <= d["high"] + 1e-9, (name, part)


def test_metadata_checks_report_authors_and_language_disagreements(evaluated):
    _, out, figures, _ = evaluated
    meta = figures["metadata"]
    assert meta["pages"] == 10
    assert meta["noisy_authors"] == []  # Marta Lindqvist and Jana Weber are names
    assert meta["authors"] >= 2
    german = [d for d in meta["lang_disagreements"] if d["key"] == "german"]
    assert len(german) == 1
    assert (german[0]["html_lang"], german[0]["text_lang"]) == ("en", "de")
    assert german[0]["chosen"] in ("en", "de")
    assert "<html lang> disagrees with the text's language on" in out


@pytest.mark.parametrize(
    ("author", "noisy"),
    [
        ("Malcolm Owen Monday", True),
        ("November", True),
        ("JERUSALEM POST STAFF NOVEMBER", True),
        ("Jane Doe, Senior Correspondent", True),
        ("Updated 12:30", True),
        ("Jan Kupitz", False),
        ("April Ryan", False),
        ("Marta Lindqvist", False),
    ],
)
def test_author_noise(author, noisy):
    assert author_is_noisy(author) is noisy


def test_local_date_uses_the_offset_when_the_article_has_one():
    at = dt.datetime(2024, 3, 6, 4, 30, tzinfo=dt.UTC)
    assert local_date(SimpleNamespace(published_at=at)) == "2024-03-06"
    assert local_date(SimpleNamespace(published_at=at, published_offset_min=None)) == "2024-03-06"
    assert local_date(SimpleNamespace(published_at=at, published_offset_min=-300)) == "2024-03-05"
    assert local_date(SimpleNamespace(published_at=None)) is None


def test_snippet_counts_and_dates_by_hand():
    c = snippet_counts("a  b\nc d", ["a b c", "x"], ["c d", "y"])
    assert (c.tp, c.fn, c.fp, c.tn) == (1, 1, 1, 1)
    assert snippet_counts("", ["a"], ["b"]) == SnippetCounts(tp=0, fn=1, fp=0, tn=1)
    assert [date_outcome("2020-01-01", d) for d in ("2020-01-01", "2020-01-02", None)] == [
        "right",
        "wrong",
        "none",
    ]


def test_paired_bootstrap_by_hand():
    assert paired_bootstrap("dates", ["right"] * 5, ["right"] * 5) == (0.0, 0.0)
    # every resample has all ten pages right for one system and wrong for the other
    assert paired_bootstrap("dates", ["right"] * 10, ["wrong"] * 10) == (10.0, 10.0)
    mine = [SnippetCounts(tp=1), SnippetCounts(fn=1)]
    low, high = paired_bootstrap("snippets", mine, [SnippetCounts(fn=1)] * 2)
    assert 0 < high <= 1 and 0 <= low <= high


def test_a_wrong_path_or_a_folder_without_labels_exits_2(tmp_path):
    result = run_cli("eval-extraction", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "no such directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "unlabelled" / "html").mkdir(parents=True)
    result = run_cli("eval-extraction", str(tmp_path / "unlabelled"))
    assert result.returncode == 2
    assert "ground-truth.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_arguments_and_without_shared_data_it_skips(tmp_path):
    (tmp_path / "repo").mkdir()
    result = run_main("eval-extraction", cwd=tmp_path / "repo")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout


def test_sets_and_limit_select_a_subset(tmp_path):
    data = _data(tmp_path / "data")
    figures = tmp_path / "f.json"
    result = run_main(
        "eval-extraction", str(data / "web"), "--limit", "2", "--jobs", "1", "--json", str(figures)
    )
    assert result.returncode == 0, result.stderr
    web = json.loads(figures.read_text(encoding="utf-8"))["sets"]
    assert list(web) == ["web"] and web["web"]["pages"] == 2  # empty, german (sorted keys)
    result = run_cli("eval-extraction", str(data), "--sets", "nosuchset")
    assert result.returncode == 2
    assert "nosuchset" in result.stderr


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
    assert extract_options(config.load()).max_link_density is None  # off by default


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
