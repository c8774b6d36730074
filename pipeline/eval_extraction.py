"""``news-ingest eval-extraction DIR``: score the pipeline's article text on a labelled corpus.

DIR holds ``ground-truth.json`` (``{key: {"articleBody": ..., "url": ...}}``) and
``html/<key>.html.gz``, the layout of the article-extraction benchmark. Each page is read by
the real source reader, extracted and cleaned by the real stage functions with the configured
settings, and scored with the benchmark's own metric:

tokens are ``\\w+`` runs; per page, the multisets of 4-token shingles of truth and prediction
give tp, fp and fn, normalised to sum 1; precision is averaged over pages with tp+fp > 0,
recall over pages with tp+fn > 0; F1 is the harmonic mean of the two averages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Mapping

from pipeline.config import Config
from pipeline.graph import extract_options, rule_packs
from transforms.clean import RuleSet, clean_article
from transforms.extract import ExtractOptions, extract
from transforms.schema import Article
from transforms.sources import read_path

_TOKEN = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4


class BenchmarkMissing(FileNotFoundError):
    """DIR is not a benchmark directory (no ground-truth.json or no html/ folder)."""


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


def aggregate(pages: list[PageScore]) -> Score:
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


def half_of(key: str) -> str:
    """A stable split of the pages into halves "A" and "B" (by a hash of the key)."""
    return "AB"[hashlib.blake2b(key.encode("utf-8"), digest_size=1).digest()[0] % 2]


def load_benchmark(directory: str) -> dict[str, dict[str, str]]:
    """``{key: {"articleBody": ..., "url": ..., "path": ...}}`` for the pages that have HTML.

    Raises:
        BenchmarkMissing: ``directory`` has no ground-truth.json or no html/ folder.
    """
    truth_path = os.path.join(directory, "ground-truth.json")
    html_dir = os.path.join(directory, "html")
    if not os.path.isfile(truth_path) or not os.path.isdir(html_dir):
        raise BenchmarkMissing(
            f"{directory} is not an article-extraction benchmark "
            "(expected ground-truth.json and html/*.html.gz)"
        )
    with open(truth_path, encoding="utf-8") as fh:
        truth = json.load(fh)
    pages = {}
    for key, entry in truth.items():
        path = os.path.join(html_dir, f"{key}.html.gz")
        if os.path.isfile(path):
            pages[key] = {
                "articleBody": entry.get("articleBody") or "",
                "url": entry.get("url") or "",
                "path": path,
            }
    return pages


@dataclasses.dataclass(frozen=True)
class Evaluation:
    total: Score
    halves: dict[str, Score]
    pages: list[PageScore]
    predictions: dict[str, str]
    rejected: dict[str, str]
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return len(self.pages) / self.seconds if self.seconds > 0 else float("inf")


def predict(
    path: str, url: str | None, cfg: Config, options: ExtractOptions, rules: RuleSet
) -> tuple[str, str | None]:
    """(text, rejection reason) of one page through read -> extract -> clean, as in a run."""
    for item in read_path(path, cfg.read.max_bytes):
        if not hasattr(item, "content"):
            return "", getattr(item, "reason", "unreadable")
        raw = dataclasses.replace(item, url=url or None)
        article = extract(raw, options)
        if isinstance(article, Article):
            article = clean_article(article, rules, cfg.clean.min_words)
        if isinstance(article, Article):
            return article.text, None
        return "", article.reason
    return "", "no_document"


def evaluate(directory: str, cfg: Config) -> Evaluation:
    """Extract and score every page of the benchmark in ``directory``."""
    pages = load_benchmark(directory)
    options = extract_options(cfg)
    rules = RuleSet(*rule_packs(cfg), min_repeat_words=cfg.clean.min_repeat_words)
    predictions: dict[str, str] = {}
    rejected: dict[str, str] = {}
    started = time.perf_counter()
    for key, page in sorted(pages.items()):
        text, reason = predict(page["path"], page["url"], cfg, options, rules)
        predictions[key] = text
        if reason:
            rejected[key] = reason
    seconds = time.perf_counter() - started
    truth = {key: page["articleBody"] for key, page in pages.items()}
    total, page_scores = score(truth, predictions)
    halves = {}
    for half in "AB":
        part = {k: v for k, v in truth.items() if half_of(k) == half}
        halves[half] = score(part, predictions)[0]
    return Evaluation(total, halves, page_scores, predictions, rejected, seconds)


def report_lines(ev: Evaluation, urls: Mapping[str, str], worst: int = 10) -> list[str]:
    """The printed report: the scores, the halves, speed and the worst pages."""
    t = ev.total
    lines = [
        f"pages      {t.pages}",
        f"F1         {t.f1:.4f}",
        f"precision  {t.precision:.4f}",
        f"recall     {t.recall:.4f}",
    ]
    for half, s in ev.halves.items():
        lines.append(
            f"half {half}     F1 {s.f1:.4f}  precision {s.precision:.4f}  recall {s.recall:.4f}"
            f"  ({s.pages} pages)"
        )
    lines.append(f"speed      {ev.docs_per_second:.1f} docs/s (read, extract, clean; one process)")
    if ev.rejected:
        reasons = Counter(ev.rejected.values())
        lines.append("rejected   " + ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())))
    if worst > 0:
        lines.append(f"worst {min(worst, len(ev.pages))} pages (by fp + fn):")
        lines.append("    tp     fp     fn     key               url")
        for p in sorted(ev.pages, key=lambda p: (-p.error, p.key))[:worst]:
            lines.append(
                f"  {p.tp:.3f}  {p.fp:.3f}  {p.fn:.3f}  {p.key[:16]}  {urls.get(p.key, '')}"
            )
    return lines


def write_predictions(path: str, predictions: Mapping[str, str]) -> None:
    """Write ``{key: text}`` as JSON (for diffing two settings page by page)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(predictions.items())), fh, ensure_ascii=False, indent=1)
