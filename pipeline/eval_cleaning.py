"""``news-ingest eval-cleaning DIR``: cleaning quality on a labelled set.

A labelled set is a directory of documents (``NAME.txt``, or ``NAME.html``) each with a
``NAME.labels.json`` beside it::

    {"boilerplate": ["lines that must not survive", ...],
     "sentences": ["article sentences that must survive", ...],
     "fields": {"dateline": "BRUSSELS", "published_at": "2024-10-28", "title": null, ...}}

Each document goes through the same extraction, cleaning and normalization as a run (with the
rule packs of the effective config). Reported per document and in total: boilerplate lines left
in any text column (text, title, section, dateline), article sentences lost from the text, and
labelled fields that differ. Matching folds case, quotes and whitespace. A boilerplate line
counts as left when it occurs, at word boundaries, in a text column once the labelled article
sentences are taken out of the text (a sentence that mentions "leave a reply" is not leftover
chrome, but the same words anywhere else are).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import unicodedata
from typing import Any

from news_ingest.transforms.clean import RuleSet, clean_article
from news_ingest.transforms.extract import extract
from news_ingest.transforms.normalize import LanguageIdentifier, normalize_article
from news_ingest.transforms.rulepack import RulePack
from news_ingest.transforms.schema import SOURCE_HTML, SOURCE_TEXT, Article, RawDocument

LABELS_SUFFIX = ".labels.json"
TEXT_COLUMNS = ("text", "title", "section", "dateline")


@dataclasses.dataclass
class DocScore:
    """Cleaning quality of one labelled document."""

    name: str
    boilerplate: int
    left: list[str]
    sentences: int
    lost: list[str]
    fields: int
    wrong: list[str]


def fold(text: str) -> str:
    """Casefolded NFKC text with quotes unified and whitespace runs as one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[“”„″]", '"', re.sub(r"[‘’‚′]", "'", text))
    return re.sub(r"\s+", " ", text).strip()


def _occurs(needle: str, haystack: str) -> bool:
    needle = fold(needle)
    if not needle:
        return False
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def _field_value(article: Article, name: str) -> Any:
    value = getattr(article, name)
    if isinstance(value, dt.datetime):
        # A label gives a date ("2024-10-28") or a full ISO time.
        return value.isoformat().replace("T00:00:00+00:00", "")
    if isinstance(value, tuple):
        return list(value)
    return value


def score(name: str, article: Article | None, labels: dict[str, Any]) -> DocScore:
    """Compare a cleaned article with its labels; a rejected article loses every sentence."""
    boilerplate = [str(b) for b in labels.get("boilerplate", [])]
    sentences = [str(s) for s in labels.get("sentences", [])]
    fields = dict(labels.get("fields", {}))
    if article is None:
        return DocScore(
            name, len(boilerplate), [], len(sentences), sentences, len(fields), sorted(fields)
        )
    columns = [fold(getattr(article, c) or "") for c in TEXT_COLUMNS]
    text = columns[0]
    lost = [s for s in sentences if not _occurs(s, text)]
    # Boilerplate is looked for in what is not an article sentence, so that a sentence which
    # merely mentions a phrase ("readers can leave a reply ...") does not count as leftover.
    rest = text
    for sentence in sentences:
        rest = rest.replace(fold(sentence), "\n")
    columns[0] = rest
    left = [b for b in boilerplate if any(_occurs(b, col) for col in columns)]
    wrong = [
        f"{k}: expected {v!r}, got {_field_value(article, k)!r}"
        for k, v in sorted(fields.items())
        if _field_value(article, k) != v
    ]
    return DocScore(name, len(boilerplate), left, len(sentences), lost, len(fields), wrong)


def labelled_documents(directory: str) -> list[tuple[str, str, str]]:
    """(name, document path, labels path) of every labelled document in ``directory``."""
    found = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(LABELS_SUFFIX):
            continue
        name = entry[: -len(LABELS_SUFFIX)]
        for ext in (".txt", ".html"):
            doc = os.path.join(directory, name + ext)
            if os.path.exists(doc):
                found.append((name, doc, os.path.join(directory, entry)))
                break
        else:
            raise FileNotFoundError(f"{entry}: no {name}.txt or {name}.html beside it")
    return found


def clean_document(
    path: str, rules: RuleSet, identifier: LanguageIdentifier | None, min_words: int = 1
) -> Article | None:
    """Extract, clean and normalize one file as a run would; None when it is rejected."""
    with open(path, "rb") as fh:
        content = fh.read()
    kind = SOURCE_HTML if path.endswith(".html") else SOURCE_TEXT
    extracted = extract(RawDocument(source_ref=path, source_kind=kind, content=content))
    if not isinstance(extracted, Article):
        return None
    cleaned = clean_article(extracted, rules, min_words)
    if not isinstance(cleaned, Article):
        return None
    return normalize_article(cleaned, identifier)


def evaluate(
    directory: str,
    default: RulePack,
    sources: tuple[RulePack, ...] = (),
    identifier: LanguageIdentifier | None = None,
) -> list[DocScore]:
    """Score every labelled document of ``directory``."""
    rules = RuleSet(default, sources)
    scores = []
    for name, doc, labels_path in labelled_documents(directory):
        with open(labels_path, encoding="utf-8") as fh:
            labels = json.load(fh)
        scores.append(score(name, clean_document(doc, rules, identifier), labels))
    return scores


def report_lines(scores: list[DocScore], details: bool = True) -> list[str]:
    """The table printed by ``eval-cleaning`` (and the leftovers, losses and wrong fields)."""
    head = f"{'document':<32} {'boilerplate':>11} {'left':>5} {'sentences':>9} {'lost':>5} "
    head += f"{'fields':>6} {'wrong':>5}"
    lines = [head, "-" * len(head)]
    for s in scores:
        lines.append(
            f"{s.name:<32} {s.boilerplate:>11} {len(s.left):>5} {s.sentences:>9} "
            f"{len(s.lost):>5} {s.fields:>6} {len(s.wrong):>5}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"{'total (' + str(len(scores)) + ' documents)':<32} "
        f"{sum(s.boilerplate for s in scores):>11} {sum(len(s.left) for s in scores):>5} "
        f"{sum(s.sentences for s in scores):>9} {sum(len(s.lost) for s in scores):>5} "
        f"{sum(s.fields for s in scores):>6} {sum(len(s.wrong) for s in scores):>5}"
    )
    if details:
        for s in scores:
            lines += [f"  {s.name}: boilerplate left: {b!r}" for b in s.left]
            lines += [f"  {s.name}: sentence lost: {t!r}" for t in s.lost]
            lines += [f"  {s.name}: field {w}" for w in s.wrong]
    return lines
