"""Train the block classifier of ``extract.block_classifier`` and measure it by cross-validation.

    python benchmarks/train_block_model.py [DATA ...] --cache DIR [--jobs N] [--folds K]
        [--threshold T ...] [--write configs/block_model.json]

DATA as for ``news-ingest eval-extraction`` (default ../shared/data); the text sets are used
(article-extraction: hand-labelled bodies; snippet-eval: snippets a text must and must not
contain). Per page, once, into the cache DIR (outside the repository; reruns reuse it): the
pipeline's extraction with the defaults, trafilatura's default and precision output trees, and
the two baselines of ``eval-extraction`` (trafilatura default and ``favor_precision``, comments
off), with the CPU seconds of each.

Labels, per block of the default output (``extract.outer_blocks``): on article-extraction a
block is article text when at least half of its 4-token shingles are in the labelled body; on
snippet-eval a block holding (or held by) a "with" snippet is article text, one holding a
"without" snippet is not, and the rest are unlabelled. Each set weighs the same in training.

Cross-validation is by page (K folds by a hash of the key): every page is scored by a model
that did not see it; the blocks it drops are dropped from the default output, which is then
cleaned like the pipeline's and scored beside the baselines per set and half, with the paired
bootstrap interval of ``eval-extraction``. ``--write`` saves the model trained on all pages.
The model is a plain L2-regularised logistic regression fitted by Newton's method (numpy).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import re
import sys
import time
from typing import Any

import numpy as np
from lxml import etree
from news_ingest.pipeline import config
from news_ingest.pipeline.eval_extraction import (
    ARTICLE,
    DATES,
    HALVES,
    PIPELINE,
    PageResult,
    _spaces,
    find_sets,
    select,
    set_figures,
    shingle_counts,
    trafilatura_baselines,
)
from news_ingest.transforms import extract as ex

L2 = 1.0


def _init() -> None:
    for name in ("trafilatura", "htmldate", "readability"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _xml(body: Any) -> str | None:
    return etree.tostring(body, encoding="unicode") if body is not None else None


def cache_page(task: tuple[str, str, str, str, str]) -> str:
    """Extract one page every way the training needs, into the cache (skipped when there)."""
    cache, set_name, key, path, url = task
    out = os.path.join(cache, set_name, key + ".pkl")
    if os.path.exists(out):
        return key
    import trafilatura
    from news_ingest.transforms.sources import read_path

    raw = next(iter(read_path(path, 20 * 1024 * 1024)))
    raw = dataclasses.replace(raw, url=url or None)
    result: dict[str, Any] = {"cpu": {}, "bodies": {}, "base": {}}
    captured: dict[str, Any] = {}
    original = trafilatura.bare_extraction

    def spy(*args: Any, **kwargs: Any) -> Any:
        captured["doc"] = original(*args, **kwargs)
        return captured["doc"]

    started = time.process_time()
    trafilatura.bare_extraction = spy  # the default output tree of the pipeline's own call
    try:
        result["article"] = ex.extract(raw, ex.ExtractOptions(isolation="thread"))
    finally:
        trafilatura.bare_extraction = original
    result["cpu"]["pipeline_extract"] = time.process_time() - started
    result["bodies"]["default"] = _xml(getattr(captured.get("doc"), "body", None))
    html = ex.decode_text(raw.content) or ""
    started = time.process_time()
    result["bodies"]["precision"] = _xml(ex.precision_body(html, raw.url, ex.ExtractOptions()))
    result["cpu"]["precision"] = time.process_time() - started
    with gzip.open(path) as fh:
        content = fh.read()
    result["base"], cpu = trafilatura_baselines(content, url)
    result["cpu"].update(cpu)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "wb") as fh:
        pickle.dump(result, fh)
    os.replace(out + ".tmp", out)
    return key


def _labels_article(texts: list[str], truth: str) -> list[float | None]:
    truth_shingles = shingle_counts(truth)
    truth_tokens = set(re.findall(r"\w+", truth))
    labels: list[float | None] = []
    for text in texts:
        own = shingle_counts(text)
        if own:
            share = sum((own & truth_shingles).values()) / sum(own.values())
            labels.append(1.0 if share >= 0.5 else 0.0)
        else:
            tokens = re.findall(r"\w+", text)
            labels.append(float(all(t in truth_tokens for t in tokens)) if tokens else None)
    return labels


def _labels_snippets(texts: list[str], with_: list[str], without: list[str]) -> list[float | None]:
    def hit(snippets: list[str], block: str) -> bool:
        return any(s and (s in block or (len(block) >= 30 and block in s)) for s in snippets)

    good, bad = [_spaces(s) for s in with_], [_spaces(s) for s in without]
    labels: list[float | None] = []
    for text in texts:
        block = _spaces(text)
        pos, neg = bool(block) and hit(good, block), bool(block) and hit(bad, block)
        labels.append(1.0 if pos and not neg else 0.0 if neg and not pos else None)
    return labels


def fold_of(key: str, folds: int) -> int:
    return hashlib.blake2b(("fold" + key).encode(), digest_size=2).digest()[0] % folds


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> ex.BlockModel:
    """L2-regularised logistic regression on standardised features (Newton's method)."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.diag(np.r_[np.ones(len(beta) - 1), 0.0]) * L2
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ beta))
        gradient = z.T @ (w * (p - y)) + penalty @ beta
        hessian = (z * (w * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return ex.BlockModel(
        features=ex.BLOCK_FEATURES,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in beta[:-1]),
        bias=float(beta[-1]),
    )


def _parse(xml: str | None) -> Any:
    return etree.fromstring(xml) if xml else None


def _text(body: Any) -> str:
    from trafilatura.xml import xmltotxt

    etree.strip_tags(body, "ref")
    return xmltotxt(body, False) or ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="*", default=[os.path.join("..", "shared", "data")])
    ap.add_argument("--cache", required=True, help="directory for per-page extractions")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threshold", type=float, action="append")
    ap.add_argument("--write", help="save the model trained on all pages to this JSON file")
    args = ap.parse_args(argv)
    thresholds = args.threshold or [ex.ExtractOptions().block_threshold]
    sets = [s for s in select(find_sets(args.data), None, None) if s.kind != DATES]
    tasks = [
        (args.cache, s.name, k, label["path"], label["url"])
        for s in sets
        for k, label in sorted(s.labels.items())
    ]
    with multiprocessing.Pool(max(args.jobs, 1), initializer=_init) as pool:
        pool.map(cache_page, tasks, chunksize=2)
    _init()

    pages = []  # (set, key, cached result, features, labels)
    for s in sets:
        for key, label in sorted(s.labels.items()):
            with open(os.path.join(args.cache, s.name, key + ".pkl"), "rb") as fh:
                cached = pickle.load(fh)
            body = _parse(cached["bodies"]["default"])
            if body is None:
                pages.append((s.name, key, cached, [], []))
                continue
            rows = ex.block_features(body, _parse(cached["bodies"]["precision"]))
            texts = [ex._block_text(b) for b in ex.outer_blocks(body)]
            if s.kind == ARTICLE:
                labels = _labels_article(texts, label.get("articleBody") or "")
            else:
                labels = _labels_snippets(
                    texts, label.get("with") or [], label.get("without") or []
                )
            pages.append((s.name, key, cached, rows, labels))
    labelled = {
        s.name: sum(1 for p in pages if p[0] == s.name for v in p[4] if v is not None) for s in sets
    }

    def training(exclude: int | None) -> ex.BlockModel:
        x, y, w = [], [], []
        for set_name, key, _, rows, labels in pages:
            if exclude is not None and fold_of(key, args.folds) == exclude:
                continue
            for row, value in zip(rows, labels, strict=True):
                if value is not None:
                    x.append(row)
                    y.append(value)
                    w.append(1.0 / labelled[set_name])
        weights = np.array(w)
        return fit(np.array(x), np.array(y), weights / weights.mean())

    models = {fold: training(fold) for fold in range(args.folds)}
    rules_cfg = config.load()
    from news_ingest.pipeline.graph import rule_packs
    from news_ingest.transforms.clean import RuleSet, clean_article
    from news_ingest.transforms.schema import Article

    rules = RuleSet(*rule_packs(rules_cfg), min_repeat_words=rules_cfg.clean.min_repeat_words)

    def cleaned(article: Any, text: str) -> str:
        if not isinstance(article, Article) or not text.strip():
            return ""
        out = clean_article(
            dataclasses.replace(article, text=text), rules, rules_cfg.clean.min_words
        )
        return out.text if isinstance(out, Article) else ""

    print(f"{sum(labelled.values())} labelled blocks ({labelled}); {args.folds}-fold CV by page")
    for threshold in [None, *thresholds]:
        results = {}
        for set_name, key, cached, _, _ in pages:
            body = _parse(cached["bodies"]["default"])
            text = ""
            if body is not None:
                if threshold is not None:
                    ex.classify_blocks(
                        body,
                        _parse(cached["bodies"]["precision"]),
                        models[fold_of(key, args.folds)],
                        threshold,
                    )
                text = cleaned(cached["article"], _text(body))
            results[(set_name, key)] = PageResult(set_name, key, {PIPELINE: text, **cached["base"]})
        name = (
            "defaults (classifier off)"
            if threshold is None
            else f"classifier, threshold {threshold}"
        )
        for s in sets:
            fig = set_figures(s, results, 1000)
            cells = []
            for part in ("all", *HALVES):
                d = fig["difference"][part]
                value = fig["systems"][PIPELINE][part]["value"]
                cells.append(f"{value:.4f} ({d['point']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}])")
            print(f"{name:30s} {s.name:20s} vs {fig['best_baseline']:22s} " + " | ".join(cells))
    for s in sets:
        fig = set_figures(
            s,
            {(p[0], p[1]): PageResult(p[0], p[1], {PIPELINE: "", **p[2]["base"]}) for p in pages},
            1,
        )
        base = "  ".join(
            f"{b} "
            + "/".join(f"{fig['systems'][b][part]['value']:.4f}" for part in ("all", *HALVES))
            for b in fig["systems"]
            if b != PIPELINE
        )
        print(f"baselines {s.name:20s} (all/A/B): {base}")
    cpu: dict[str, float] = {}
    for _, _, cached, _, _ in pages:
        for k, v in cached["cpu"].items():
            cpu[k] = cpu.get(k, 0.0) + v
    print(
        "cpu per page relative to trafilatura.extract default: "
        + ", ".join(f"{k} {v / cpu['trafilatura']:.2f}" for k, v in cpu.items())
    )
    if args.write:
        model = training(None)
        with open(args.write, "w", encoding="utf-8") as fh:
            json.dump(model.as_json(), fh, indent=1)
            fh.write("\n")
        print(f"wrote the model trained on all {len(pages)} pages to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
