"""``news-ingest eval-extraction [DATA ...]``: the pipeline beside the libraries it builds on.

Each DATA is a data root holding labelled sets, or one set folder; a set's format is told by its
label file (pages are ``html/<key>.html.gz``):

* ``ground-truth.json`` (``{key: {"articleBody", "url"}}``): **shingle F1**, the article-extraction
  benchmark's metric. Tokens are ``\\w+`` runs; per page, the multisets of 4-token shingles of
  truth and prediction give tp, fp and fn, normalised to sum 1; precision is averaged over pages
  with tp+fp > 0, recall over pages with tp+fn > 0; F1 is the harmonic mean of the two averages.
* ``snippets.json`` (``{key: {"url", "with", "without"}}``): **snippet scoring**, trafilatura's.
  Whitespace is normalised in text and snippets; a "with" snippet found is a tp, missing a fn; a
  "without" snippet found is a fp; counts are summed over pages; F1 = 2tp / (2tp + fp + fn).
* ``dates.json`` (``{key: {"url", "date"}}``): **dates**, htmldate's. Over the pages with an
  expected date: right (the same day), wrong (another day), none (no date).

Systems: the pipeline (read, extract, clean and normalize with the configured settings: the real
stage functions, no Beam), trafilatura's default and its ``favor_precision`` mode (both with
``include_comments=False``, as trafilatura's own benchmark runs them) for the text sets, and
htmldate's ``find_date(html, original_date=True)`` for dates. Every figure is given for the set
and for its two fixed halves A and B (a hash split of the keys), with a paired bootstrap 95%
interval of the pipeline's difference to the best baseline of the set (pages resampled).

Each page is extracted once per system, in a process pool, and the results are kept in memory
for all the figures of the run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from news_ingest.pipeline.config import Config

_TOKEN = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4

ARTICLE, SNIPPETS, DATES = "article", "snippets", "dates"
# The label file that tells a set's format.
LABEL_FILES = {"ground-truth.json": ARTICLE, "snippets.json": SNIPPETS, "dates.json": DATES}

PIPELINE = "pipeline"
TRAFILATURA = "trafilatura"
TRAFILATURA_PRECISION = "trafilatura-precision"
HTMLDATE = "htmldate"
BASELINES = {
    ARTICLE: (TRAFILATURA, TRAFILATURA_PRECISION),
    SNIPPETS: (TRAFILATURA, TRAFILATURA_PRECISION),
    DATES: (HTMLDATE,),
}
METRIC_NAMES = {ARTICLE: "shingle F1", SNIPPETS: "snippet F1", DATES: "right dates"}

HALVES = ("A", "B")
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 11

# Words that make an "author" a date or a role rather than a name (April, May, June and August
# are left out: they are given names too).
_AUTHOR_NOISE = re.compile(
    r"\d|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march"
    r"|july|september|october|november|december|staff|reporter|reporters|correspondent"
    r"|correspondents|editor|editors|writer|writers|contributor|contributors|columnist|desk"
    r"|newsroom|updated|published|posted)\b",
    re.IGNORECASE,
)


class DataError(ValueError):
    """A DATA argument is not a labelled set nor a folder of them."""


# ---------------------------------------------------------------------------------------------
# Metrics (pure functions)


def shingle_counts(text: str, size: int = SHINGLE) -> Counter[tuple[str, ...]]:
    """The multiset of ``size``-token shingles of ``text`` (tokens are ``\\w+`` runs).

    The benchmark's tokens keep their case, so this does too.
    """
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


@dataclasses.dataclass(frozen=True)
class PageScore:
    """tp, fp and fn of one page, normalised to sum 1 (all 0 when both texts are empty)."""

    key: str
    tp: float
    fp: float
    fn: float

    @property
    def error(self) -> float:
        return self.fp + self.fn


def page_score(key: str, truth: str, prediction: str) -> PageScore:
    """The normalised tp, fp, fn of one page."""
    t, p = shingle_counts(truth), shingle_counts(prediction)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    if total == 0:
        return PageScore(key, 0.0, 0.0, 0.0)
    return PageScore(key, tp / total, fp / total, fn / total)


@dataclasses.dataclass(frozen=True)
class Score:
    f1: float
    precision: float
    recall: float
    pages: int


def aggregate(pages: Sequence[PageScore]) -> Score:
    """Precision averaged over pages with tp+fp > 0, recall over pages with tp+fn > 0, F1 the
    harmonic mean of the two averages."""
    precisions = [p.tp / (p.tp + p.fp) for p in pages if p.tp + p.fp > 0]
    recalls = [p.tp / (p.tp + p.fn) for p in pages if p.tp + p.fn > 0]
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(f1=f1, precision=precision, recall=recall, pages=len(pages))


def score(
    truth: Mapping[str, str], predictions: Mapping[str, str]
) -> tuple[Score, list[PageScore]]:
    """Score predictions (missing ones count as empty) against the truth of every key."""
    pages = [page_score(key, truth[key], predictions.get(key, "")) for key in sorted(truth)]
    return aggregate(pages), pages


def _spaces(text: str) -> str:
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class SnippetCounts:
    """Snippet decisions of one page (or summed over pages)."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def __add__(self, other: SnippetCounts) -> SnippetCounts:
        return SnippetCounts(
            self.tp + other.tp, self.fn + other.fn, self.fp + other.fp, self.tn + other.tn
        )

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0


def snippet_counts(text: str, with_: Sequence[str], without: Sequence[str]) -> SnippetCounts:
    """trafilatura's snippet decisions on one page (a page with no text finds nothing)."""
    body = _spaces(text or "")
    found = [bool(body) and _spaces(s) in body for s in with_]
    leaked = [bool(body) and _spaces(s) in body for s in without]
    return SnippetCounts(
        tp=sum(found),
        fn=len(found) - sum(found),
        fp=sum(leaked),
        tn=len(leaked) - sum(leaked),
    )


def date_outcome(expected: str, found: str | None) -> str:
    """``right``, ``wrong`` or ``none`` for a page with an expected date."""
    if not found:
        return "none"
    return "right" if found == expected else "wrong"


def half_of(key: str) -> str:
    """A stable split of the pages into halves "A" and "B" (by a hash of the key)."""
    return "AB"[hashlib.blake2b(key.encode("utf-8"), digest_size=1).digest()[0] % 2]


def author_is_noisy(author: str) -> bool:
    """True when an author string carries a date or a role word rather than a name only."""
    return bool(_AUTHOR_NOISE.search(author))


def local_date(article: Any) -> str | None:
    """The page's own publication day: ``published_at`` shifted by ``published_offset_min``
    when the article has that field and it is set, else the UTC day."""
    published = getattr(article, "published_at", None)
    if published is None:
        return None
    offset = getattr(article, "published_offset_min", None)
    if offset is not None:
        published = published + dt.timedelta(minutes=int(offset))
    return str(published.date().isoformat())


# ---------------------------------------------------------------------------------------------
# Sets


@dataclasses.dataclass(frozen=True)
class LabelledSet:
    """One labelled set: its name, format and ``{key: label}`` (with ``path`` and ``url``)."""

    name: str
    kind: str
    directory: str
    labels: dict[str, dict[str, Any]]


def _set_format(directory: str) -> tuple[str, str] | None:
    for filename, kind in LABEL_FILES.items():
        if os.path.isfile(os.path.join(directory, filename)):
            return filename, kind
    return None


def load_set(directory: str) -> LabelledSet:
    """The labelled set in ``directory`` (pages without an HTML file are left out).

    Raises:
        DataError: no label file or no html/ folder.
    """
    found = _set_format(directory)
    html_dir = os.path.join(directory, "html")
    if found is None or not os.path.isdir(html_dir):
        raise DataError(
            f"{directory}: no labelled set here (expected one of {', '.join(LABEL_FILES)} "
            "beside html/)"
        )
    filename, kind = found
    with open(os.path.join(directory, filename), encoding="utf-8") as fh:
        raw = json.load(fh)
    labels = {}
    for key, entry in raw.items():
        path = os.path.join(html_dir, f"{key}.html.gz")
        if os.path.isfile(path):
            labels[key] = {**entry, "path": path, "url": entry.get("url") or ""}
    name = os.path.basename(os.path.normpath(directory))
    return LabelledSet(name, kind, directory, labels)


def find_sets(paths: Iterable[str]) -> list[LabelledSet]:
    """The sets named by DATA arguments: a set folder, or a root whose subfolders are sets.

    Raises:
        DataError: a path that does not exist, or holds no labelled set.
    """
    sets: list[LabelledSet] = []
    for path in paths:
        if not os.path.isdir(path):
            raise DataError(f"{path}: no such directory")
        if _set_format(path) is not None:
            sets.append(load_set(path))
            continue
        subdirs = sorted(
            os.path.join(path, d)
            for d in os.listdir(path)
            if _set_format(os.path.join(path, d)) is not None
        )
        if not subdirs:
            raise DataError(
                f"{path}: no labelled set here (expected one of {', '.join(LABEL_FILES)})"
            )
        sets.extend(load_set(d) for d in subdirs)
    return sets


def select(
    sets: list[LabelledSet], names: Sequence[str] | None, limit: int | None
) -> list[LabelledSet]:
    """Only the named sets (all when None), each cut to its first ``limit`` keys in order."""
    chosen = [s for s in sets if not names or s.name in names]
    if names:
        unknown = sorted(set(names) - {s.name for s in sets})
        if unknown:
            raise DataError(f"no set named {', '.join(unknown)} (have {_names(sets)})")
    if limit is not None:
        chosen = [
            dataclasses.replace(s, labels={k: s.labels[k] for k in sorted(s.labels)[:limit]})
            for s in chosen
        ]
    return chosen


def _names(sets: Sequence[LabelledSet]) -> str:
    return ", ".join(s.name for s in sets)


# ---------------------------------------------------------------------------------------------
# Running the systems on one page (in a worker process)


@dataclasses.dataclass(frozen=True)
class PageResult:
    """What every system made of one page, and the pipeline's metadata."""

    set_name: str
    key: str
    outputs: dict[str, str | None]  # system -> text (text sets) or date (date sets)
    rejected: str | None = None
    authors: tuple[str, ...] = ()
    html_lang: str | None = None
    text_lang: str | None = None
    language: str | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: Config) -> None:
    """Build the stage settings once per worker process."""
    import logging

    from news_ingest.pipeline.graph import core

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)
    # The core a run of this config builds: the eval scores what the pipeline does.
    _WORKER.update(cfg=cfg, steps=core(cfg).steps())


def _html_lang(content: bytes) -> str | None:
    from lxml import html as lxml_html
    from news_ingest.transforms.extract import decode_text, language_code

    text = decode_text(content)
    if not text:
        return None
    try:
        tree = lxml_html.document_fromstring(text.encode("utf-8"))
    except Exception:  # lxml raises ParserError (and ValueError) on junk: no attribute then
        return None
    value = tree.get("lang") if tree.tag == "html" else None
    return language_code(value)


def _pipeline(path: str, url: str | None) -> tuple[Any, str | None]:
    """(Article or None, rejection reason) of one page read as a run reads it, then through
    the core of a run (``transforms.core.to_article``)."""
    from news_ingest.transforms.core import to_article
    from news_ingest.transforms.schema import Article
    from news_ingest.transforms.sources import read_path

    cfg: Config = _WORKER["cfg"]
    for item in read_path(path, cfg.read.max_bytes):
        if not hasattr(item, "content"):
            return None, getattr(item, "reason", "unreadable")
        article = to_article(dataclasses.replace(item, url=url or None), _WORKER["steps"])
        if isinstance(article, Article):
            return article, None
        return None, article.reason
    return None, "no_document"


def trafilatura_baselines(
    content: bytes, url: str | None
) -> tuple[dict[str, str], dict[str, float]]:
    """trafilatura's default and ``favor_precision`` modes on one page's bytes, comments off
    (as its own benchmark runs them): their texts ("" where one fails) and CPU seconds."""
    import trafilatura

    texts: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name, precision in ((TRAFILATURA, False), (TRAFILATURA_PRECISION, True)):
        started = time.process_time()
        try:
            text = trafilatura.extract(
                content, url=url or None, include_comments=False, favor_precision=precision
            )
        except Exception:  # a baseline that fails on a page finds nothing there
            text = None
        texts[name] = text or ""
        seconds[name] = time.process_time() - started
    return texts, seconds


def run_page(task: tuple[str, str, str, str, str, bool]) -> PageResult:
    """Every system on one page: ``task`` is (set name, kind, key, path, url, whether to run
    the baselines too)."""
    import htmldate
    from news_ingest.transforms.normalize import identify_language

    set_name, kind, key, path, url, baselines = task
    seconds: dict[str, float] = {}
    started = time.process_time()
    article, reason = _pipeline(path, url)
    seconds[PIPELINE] = time.process_time() - started
    with gzip.open(path) as fh:
        content = fh.read()
    outputs: dict[str, str | None] = {}
    if kind == DATES:
        outputs[PIPELINE] = local_date(article) if article is not None else None
    else:
        outputs[PIPELINE] = article.text if article is not None else ""
    if kind == DATES and baselines:
        started = time.process_time()
        try:
            outputs[HTMLDATE] = htmldate.find_date(content, original_date=True)
        except Exception:  # a baseline that fails on a page finds nothing there
            outputs[HTMLDATE] = None
        seconds[HTMLDATE] = time.process_time() - started
    elif baselines:
        texts, cpu = trafilatura_baselines(content, url)
        outputs.update(texts)
        seconds.update(cpu)
    text_lang = None
    if article is not None:
        text_lang = identify_language(article.text, _WORKER["steps"].identifier)
    return PageResult(
        set_name=set_name,
        key=key,
        outputs=outputs,
        rejected=reason,
        authors=tuple(article.authors) if article is not None else (),
        html_lang=_html_lang(content),
        text_lang=text_lang,
        language=article.language if article is not None else None,
        seconds=seconds,
    )


def run_all(
    sets: Sequence[LabelledSet], cfg: Config, jobs: int, baselines: bool = True
) -> dict[tuple[str, str], PageResult]:
    """Run every system (only the pipeline when not ``baselines``) on every page, ``jobs``
    processes at a time; keyed by (set, key)."""
    tasks = [
        (s.name, s.kind, key, label["path"], label["url"], baselines)
        for s in sets
        for key, label in sorted(s.labels.items())
    ]
    if jobs <= 1:
        _init_worker(cfg)
        results = [run_page(t) for t in tasks]
    else:
        with multiprocessing.Pool(jobs, initializer=_init_worker, initargs=(cfg,)) as pool:
            results = pool.map(run_page, tasks, chunksize=4)
    return {(r.set_name, r.key): r for r in results}


# ---------------------------------------------------------------------------------------------
# Figures


def _page_values(s: LabelledSet, results: Mapping[tuple[str, str], PageResult], system: str):  # type: ignore[no-untyped-def]
    """Per-page figures of one system, in key order (the unit the bootstrap resamples)."""
    keys = sorted(s.labels)
    if s.kind == ARTICLE:
        return [
            page_score(
                k, s.labels[k].get("articleBody") or "", results[(s.name, k)].outputs[system] or ""
            )
            for k in keys
        ]
    if s.kind == SNIPPETS:
        return [
            snippet_counts(
                results[(s.name, k)].outputs[system] or "",
                s.labels[k].get("with") or [],
                s.labels[k].get("without") or [],
            )
            for k in keys
        ]
    return [
        date_outcome(s.labels[k]["date"], results[(s.name, k)].outputs[system])
        for k in keys
        if s.labels[k].get("date")
    ]


def _figures(kind: str, values: Sequence[Any]) -> dict[str, Any]:
    if kind == ARTICLE:
        sc = aggregate(values)
        return {
            "value": sc.f1,
            "f1": sc.f1,
            "precision": sc.precision,
            "recall": sc.recall,
            "pages": sc.pages,
        }
    if kind == SNIPPETS:
        total = sum(values, SnippetCounts())
        return {
            "value": total.f1,
            "f1": total.f1,
            "precision": total.precision,
            "recall": total.recall,
            "tp": total.tp,
            "fp": total.fp,
            "fn": total.fn,
            "tn": total.tn,
            "pages": len(values),
        }
    counts = Counter(values)
    return {
        "value": counts["right"],
        "right": counts["right"],
        "wrong": counts["wrong"],
        "none": counts["none"],
        "pages": len(values),
    }


def _weighted_metric(kind: str, values: Sequence[Any], weights: Any) -> Any:
    """The metric of every bootstrap resample at once (``weights``: resamples x pages, how
    often each page was drawn)."""
    import numpy as np

    if kind == ARTICLE:
        tp = np.array([p.tp for p in values])
        fp = np.array([p.fp for p in values])
        fn = np.array([p.fn for p in values])
        has_p, has_r = (tp + fp) > 0, (tp + fn) > 0
        prec = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=has_p)
        rec = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=has_r)
        n_p, n_r = weights @ has_p, weights @ has_r
        precision = np.divide(weights @ prec, n_p, out=np.zeros(len(weights)), where=n_p > 0)
        recall = np.divide(weights @ rec, n_r, out=np.zeros(len(weights)), where=n_r > 0)
        total = precision + recall
        return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    if kind == SNIPPETS:
        tp = weights @ np.array([c.tp for c in values])
        bad = weights @ np.array([c.fp + c.fn for c in values])
        denominator = 2 * tp + bad
        return np.divide(2 * tp, denominator, out=np.zeros(len(weights)), where=denominator > 0)
    return weights @ np.array([1.0 if v == "right" else 0.0 for v in values])


def paired_bootstrap(
    kind: str,
    mine: Sequence[Any],
    theirs: Sequence[Any],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The 95% interval of metric(mine) - metric(theirs) over pages resampled with replacement
    (the same pages for both: the difference is paired)."""
    import numpy as np

    n = len(mine)
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    weights = np.zeros((resamples, n))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    diff = _weighted_metric(kind, mine, weights) - _weighted_metric(kind, theirs, weights)
    low, high = np.percentile(diff, [2.5, 97.5])
    return float(low), float(high)


def set_figures(
    s: LabelledSet, results: Mapping[tuple[str, str], PageResult], resamples: int
) -> dict[str, Any]:
    """All figures of one set: each system on the set and its halves, the best baseline, and
    the pipeline's difference to it with its bootstrap interval."""
    systems = (PIPELINE, *BASELINES[s.kind])
    keys = sorted(s.labels)
    if s.kind == DATES:
        keys = [k for k in keys if s.labels[k].get("date")]
    parts = {"all": keys, **{h: [k for k in keys if half_of(k) == h] for h in HALVES}}
    values = {name: _page_values(s, results, name) for name in systems}
    index = {k: i for i, k in enumerate(keys)}
    figures: dict[str, Any] = {name: {} for name in systems}
    for name in systems:
        for part, part_keys in parts.items():
            figures[name][part] = _figures(s.kind, [values[name][index[k]] for k in part_keys])
    best = max(BASELINES[s.kind], key=lambda b: figures[b]["all"]["value"])
    difference = {}
    for part, part_keys in parts.items():
        mine = [values[PIPELINE][index[k]] for k in part_keys]
        theirs = [values[best][index[k]] for k in part_keys]
        low, high = paired_bootstrap(s.kind, mine, theirs, resamples)
        point = figures[PIPELINE][part]["value"] - figures[best][part]["value"]
        difference[part] = {"point": point, "low": low, "high": high}
    rejected = Counter(
        results[(s.name, k)].rejected for k in sorted(s.labels) if results[(s.name, k)].rejected
    )
    seconds = {
        name: sum(results[(s.name, k)].seconds.get(name, 0.0) for k in s.labels) for name in systems
    }
    return {
        "kind": s.kind,
        "metric": METRIC_NAMES[s.kind],
        "pages": len(s.labels),
        "scored_pages": len(keys),
        "systems": figures,
        "best_baseline": best,
        "difference": difference,
        "rejected": dict(sorted(rejected.items())),
        "seconds": seconds,
    }


def metadata_figures(results: Mapping[tuple[str, str], PageResult]) -> dict[str, Any]:
    """Authors with a date or role word, and pages whose ``<html lang>`` disagrees with the
    language of their text, over every page of the run."""
    noisy = [
        {"set": r.set_name, "key": r.key, "author": a}
        for r in sorted(results.values(), key=lambda r: (r.set_name, r.key))
        for a in r.authors
        if author_is_noisy(a)
    ]
    authors = sum(len(r.authors) for r in results.values())
    disagree = [
        {
            "set": r.set_name,
            "key": r.key,
            "html_lang": r.html_lang,
            "text_lang": r.text_lang,
            "chosen": r.language,
        }
        for r in sorted(results.values(), key=lambda r: (r.set_name, r.key))
        if r.html_lang and r.text_lang and r.html_lang != r.text_lang
    ]
    return {
        "pages": len(results),
        "authors": authors,
        "noisy_authors": noisy,
        "lang_disagreements": disagree,
        "lang_chose_text": sum(1 for d in disagree if d["chosen"] == d["text_lang"]),
    }


@dataclasses.dataclass(frozen=True)
class Report:
    sets: dict[str, dict[str, Any]]
    metadata: dict[str, Any]
    results: dict[tuple[str, str], PageResult]
    seconds: float
    jobs: int

    def as_json(self) -> dict[str, Any]:
        return {
            "sets": self.sets,
            "metadata": self.metadata,
            "seconds": self.seconds,
            "jobs": self.jobs,
        }


def evaluate(
    sets: Sequence[LabelledSet],
    cfg: Config,
    jobs: int = 1,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Report:
    """Run every system on every page of ``sets`` and compute all the figures."""
    started = time.perf_counter()
    results = run_all(sets, cfg, jobs)
    seconds = time.perf_counter() - started
    figures = {s.name: set_figures(s, results, resamples) for s in sets}
    return Report(figures, metadata_figures(results), results, seconds, jobs)


# ---------------------------------------------------------------------------------------------
# Printing


def _value(kind: str, fig: Mapping[str, Any]) -> str:
    if kind == DATES:
        return f"{fig['right']}/{fig['wrong']}/{fig['none']}"
    return f"{fig['f1']:.4f}"


def _signed(kind: str, x: float) -> str:
    return f"{x:+.0f}" if kind == DATES else f"{x:+.4f}"


def report_lines(report: Report, sets: Sequence[LabelledSet] = (), worst: int = 0) -> list[str]:
    """The printed report: one table per set (systems x set/halves), the differences with their
    intervals, then the metadata checks."""
    lines: list[str] = []
    by_name = {s.name: s for s in sets}
    for name, fig in report.sets.items():
        kind = fig["kind"]
        unit = "right/wrong/none" if kind == DATES else "F1 (P / R)"
        lines.append(
            f"{name}: {fig['metric']}, {fig['scored_pages']} scored pages "
            f"({fig['pages']} in the set); {unit}"
        )
        header = f"  {'system':24s}" + "".join(f"{part:>30s}" for part in ("all", *HALVES))
        lines.append(header)
        for system, parts in fig["systems"].items():
            cells = []
            for part in ("all", *HALVES):
                f = parts[part]
                if kind == DATES:
                    cells.append(f"{_value(kind, f):>30s}")
                else:
                    cells.append(
                        f"{f['f1']:.4f} ({f['precision']:.4f}/{f['recall']:.4f})".rjust(30)
                    )
            lines.append(f"  {system:24s}" + "".join(cells))
        cells = []
        for part in ("all", *HALVES):
            d = fig["difference"][part]
            cell = f"{_signed(kind, d['point'])} [{_signed(kind, d['low'])}, {_signed(kind, d['high'])}]"
            cells.append(cell.rjust(30))
        lines.append(f"  {'pipeline - ' + fig['best_baseline']:24s}" + "".join(cells))
        secs = ", ".join(f"{k} {v:.1f} s" for k, v in fig["seconds"].items())
        lines.append(f"  cpu seconds per system: {secs}")
        if fig["rejected"]:
            lines.append(
                "  pipeline rejected: " + ", ".join(f"{r}: {n}" for r, n in fig["rejected"].items())
            )
        if worst > 0 and kind != DATES and name in by_name:
            lines.extend(_worst_lines(name, kind, report, by_name, worst))
        lines.append("")
    meta = report.metadata
    lines.append(
        f"metadata over {meta['pages']} pages: {len(meta['noisy_authors'])} of "
        f"{meta['authors']} authors carry a date or role word"
    )
    for item in meta["noisy_authors"][:20]:
        lines.append(f"  {item['set']}/{item['key'][:16]}  {item['author']!r}")
    if len(meta["noisy_authors"]) > 20:
        lines.append(f"  ... {len(meta['noisy_authors']) - 20} more (--json has them all)")
    dis = meta["lang_disagreements"]
    lines.append(
        f"<html lang> disagrees with the text's language on {len(dis)} pages; "
        f"the pipeline chose the text's on {meta['lang_chose_text']}"
    )
    for item in dis[:20]:
        lines.append(
            f"  {item['set']}/{item['key'][:16]}  lang={item['html_lang']} "
            f"text={item['text_lang']} chosen={item['chosen']}"
        )
    if len(dis) > 20:
        lines.append(f"  ... {len(dis) - 20} more (--json has them all)")
    lines.append(f"{len(report.results)} pages in {report.seconds:.1f} s with {report.jobs} jobs")
    return lines


def _loss(kind: str, value: Any) -> float:
    if kind == ARTICLE:
        return float(value.error)
    return float(value.fp + value.fn)


def _worst_lines(
    name: str, kind: str, report: Report, sets: Mapping[str, LabelledSet], worst: int
) -> list[str]:
    """The pages where the pipeline loses most against the set's best baseline."""
    s = sets[name]
    best = report.sets[name]["best_baseline"]
    keys = sorted(s.labels)
    mine = _page_values(s, report.results, PIPELINE)
    theirs = _page_values(s, report.results, best)
    losses = sorted(
        ((_loss(kind, m) - _loss(kind, t), k) for k, m, t in zip(keys, mine, theirs, strict=True)),
        key=lambda x: (-x[0], x[1]),
    )
    lines = [f"  pages the pipeline loses most against {best} (loss in fp + fn):"]
    for loss, key in losses[:worst]:
        if loss <= 0:
            break
        reason = report.results[(name, key)].rejected
        note = f"  rejected: {reason}" if reason else ""
        lines.append(f"    {loss:+.3f}  {key[:16]}  {s.labels[key]['url']}{note}")
    return lines


def write_predictions(directory: str, report: Report) -> None:
    """Write ``DIRECTORY/<set>/<system>.json`` (``{key: text or date}``) for every set."""
    by_set: dict[str, dict[str, dict[str, str | None]]] = {}
    for (set_name, key), result in sorted(report.results.items()):
        for system, output in result.outputs.items():
            by_set.setdefault(set_name, {}).setdefault(system, {})[key] = output
    for set_name, systems in by_set.items():
        folder = os.path.join(directory, set_name)
        os.makedirs(folder, exist_ok=True)
        for system, outputs in systems.items():
            with open(os.path.join(folder, f"{system}.json"), "w", encoding="utf-8") as fh:
                json.dump(outputs, fh, ensure_ascii=False, indent=1)


def write_json(path: str, report: Report) -> None:
    """All figures of the run as JSON."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report.as_json(), fh, ensure_ascii=False, indent=1)
