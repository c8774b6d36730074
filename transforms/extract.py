"""Extraction: a ``RawDocument`` becomes an ``Article`` with its raw text and page metadata.

Plain text is decoded (charset detected when it is not UTF-8). HTML goes through trafilatura
(``bare_extraction`` with metadata), then three optional generic precision rules (all off by
default: they gained on the news pages they were tuned on and lost elsewhere; README,
"Extraction quality"):

* the headline is not body text: a block whose words are exactly the title is dropped;
* a block (paragraph, heading, list item, quote) whose words are mostly link text is
  navigation ("READ MORE: ...", related-story lists), not prose, and is dropped;
* a second extractor (readability) is consulted where the two disagree: when they agree on
  the page as a whole, a block that readability does not contain at all is dropped.

and one learned rule (``block_classifier``): trafilatura's precision mode is run as well, and a
small logistic regression (weights in ``configs/block_model.json``, trained by
``benchmarks/train_block_model.py`` with cross-validation by page) scores each block of the
default output from its length, link share, punctuation, position, tag, neighbours and how much
of it the precision output also holds; blocks scored below ``block_threshold`` are dropped.
Agreement is judged per block, not over the page.

Page metadata comes first; the hints a source attached (feed entry fields) fill the gaps, and
a source's categories and tags are added to the page's. The publication date keeps the
source's offset and precision (``news_ingest.transforms.dates``).
Cleaning and metadata normalization happen in later stages.

One pathological page must not stall a worker, and two measures see to it. Beam's
``timeout=`` alone runs the DoFn in a thread that it abandons but cannot stop: measured with
benchmarks/extract_timeout.py, the thread of a timed-out 80,000-paragraph page lived on for
27 s and burned 12 s of CPU after the run had moved on. So (1) extraction runs in a child
process by default (``isolation="subprocess"``, Beam's ``use_subprocess``), which is killed
on a timeout (not possible in daemonic processes such as dask's workers: use ``thread`` there), and (2) pages with more than ``max_elements`` HTML elements are rejected before
extraction (trafilatura's time grows faster than linearly with the element count), which keeps
the cost of a page bounded and the outcome independent of the machine's speed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from lxml import etree
from news_ingest.transforms.children import tie_forked_child
from news_ingest.transforms.dates import (
    article_fields,
    choose_published,
    htmldate_day,
    labelled_published,
    parse_published,
    prefer_precise,
    structured_published,
)
from news_ingest.transforms.metadata import author_names, merge_labels, split_labels
from news_ingest.transforms.schema import (
    SOURCE_HTML,
    SOURCE_TEXT,
    Article,
    DeadLetter,
    RawDocument,
    stable_id,
)
from news_ingest.transforms.stage import ApplyStage, rejection
from news_ingest.transforms.text import link_density, words
from news_ingest.transforms.text import shingles as text_shingles
from news_ingest.transforms.web.charsets import decode
from news_ingest.transforms.web.urls import canonical_link

STAGE = "extract"

ISOLATIONS = ("auto", "subprocess", "thread")

# The shingle size of the benchmark's metric (and of the agreement rules).
SHINGLE = 4

# trafilatura's output elements that hold one block of text each.
_BLOCK_TAGS = ("p", "head", "item", "quote")

_HTML_SNIFF = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


@dataclasses.dataclass(frozen=True)
class ExtractOptions:
    """How HTML is turned into article text: the ``extract:`` section of the config itself.

    The defaults are trafilatura's own default mode with the three precision rules off and the
    learned block classifier on: that is what measured best over every labelled set and both
    halves of each (README, "Extraction quality", the classifier by cross-validation); each
    hand-made rule gained on the news pages it was tuned on and lost on the general web.

    Attributes:
        timeout_s: seconds one document may take; then it becomes a dead letter (timeout).
        isolation: ``subprocess`` runs extraction in a child process that is killed when a
            document times out; ``thread`` uses Beam's thread timeout, which abandons the
            thread but cannot stop it (cheaper per document, but a runaway page keeps a
            core busy until it finishes); ``auto`` is resolved by the driver for its runner
            (``resolved``), and means ``subprocess`` when left unresolved.
        max_elements: pages with more HTML elements are rejected (``too_complex``) before
            extraction, which bounds the time one page can take.
        favor_precision: trafilatura's own precision mode.
        include_tables: keep text from HTML tables.
        deduplicate: trafilatura's removal of repeated text blocks.
        drop_title_block: drop body blocks that repeat the title.
        max_link_density: drop blocks whose share of characters inside links is above this
            (None keeps them all).
        second_opinion: consult readability and drop blocks it does not contain.
        min_agreement: the share of trafilatura's shingles readability must also find before
            its opinion counts for single blocks (when the two disagree on the page as a whole,
            neither is trusted to prune the other).
        block_classifier: also run trafilatura's precision mode and drop the blocks of the
            output that the learned block model scores below ``block_threshold``.
        block_threshold: the least probability of being article text a block keeps.
        block_model: the model's JSON file ("" for the packaged ``configs/block_model.json``).
    """

    timeout_s: float = 30.0
    isolation: str = "auto"
    max_elements: int = 50_000
    favor_precision: bool = False
    include_tables: bool = True
    deduplicate: bool = False
    drop_title_block: bool = False
    max_link_density: float | None = None
    second_opinion: bool = False
    min_agreement: float = 0.5
    block_classifier: bool = True
    block_threshold: float = 0.3
    block_model: str = ""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {self.isolation!r}")
        if self.max_elements < 1:
            raise ValueError(f"max_elements must be at least 1, got {self.max_elements}")
        if self.max_link_density is not None and not 0 <= self.max_link_density <= 1:
            raise ValueError(f"max_link_density must be in [0, 1], got {self.max_link_density}")
        if not 0 <= self.min_agreement <= 1:
            raise ValueError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if not 0 <= self.block_threshold <= 1:
            raise ValueError(f"block_threshold must be in [0, 1], got {self.block_threshold}")
        if self.block_classifier:
            load_block_model(self.block_model)  # a missing or malformed model fails now

    def resolved(self, in_process: bool) -> ExtractOptions:
        """These options with ``auto`` isolation made concrete for a runner.

        ``auto`` is a subprocess only for the in-process local runner: Beam's multi-process
        workers hold gRPC threads, and forking a child there broke the process pool at random
        (measured: 2 of 9 documents dead-lettered with BrokenProcessPool under ``--workers
        2``); dask's daemonic workers may not start children at all. Elsewhere the thread
        timeout plus the ``max_elements`` cap bound a pathological page.
        """
        if self.isolation != "auto":
            return self
        return dataclasses.replace(self, isolation="subprocess" if in_process else "thread")


# ---------------------------------------------------------------------------------------------
# Text helpers


def article_id_for(raw: RawDocument) -> str:
    """Stable id: the URL when there is one, else the raw bytes and the file's base name."""
    if raw.url:
        return stable_id("url", raw.url)
    digest = hashlib.blake2b(raw.content, digest_size=16).hexdigest()
    return stable_id("doc", digest, os.path.basename(raw.source_ref))


def decode_text(content: bytes) -> str | None:
    """Decode bytes to text with the one charset ladder (``news_ingest.transforms.web.charsets``); None
    when the bytes are not text (binary junk) in any charset we trust."""
    return decode(content)


# Control characters other than tab, line feed, form feed and carriage return, and U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\ufffd]")


def looks_binary(text: str) -> bool:
    """True when too much of the text is control characters to be prose."""
    if not text:
        return False
    sample = text[:20000]
    return len(_CONTROL.findall(sample)) / len(sample) > 0.05


def shingles(text: str | None, size: int = SHINGLE) -> Counter[tuple[str, ...]]:
    """The multiset of ``size``-token shingles of a text (the one tokenizer, case-folded)."""
    return Counter(text_shingles(text, size))


def is_html(raw: RawDocument) -> bool:
    """Whether a document is HTML: by its source kind, its content type, or its first bytes."""
    if raw.source_kind == SOURCE_HTML:
        return True
    if raw.content_type:
        return "html" in raw.content_type.lower()
    if raw.source_kind == SOURCE_TEXT:
        return False
    return bool(_HTML_SNIFF.match(raw.content[:4096]))


# ---------------------------------------------------------------------------------------------
# Metadata


def _first(tree: Any, xpaths: Sequence[str]) -> str | None:
    for xpath in xpaths:
        for value in tree.xpath(xpath):
            value = str(value).strip()
            if value:
                return value
    return None


def page_language(tree: Any) -> str | None:
    """ISO 639-1 code from ``<html lang>``, Content-Language or og:locale."""
    value = _first(
        tree,
        [
            "/html/@lang",
            "/html/@xml:lang",
            "//meta[translate(@http-equiv, 'CONTENTLAGU', 'contentlagu')"
            "='content-language']/@content",
            "//meta[@property='og:locale']/@content",
        ],
    )
    return language_code(value)


def language_code(value: str | None) -> str | None:
    """``en-US`` / ``en_GB`` / ``EN`` -> ``en``; None for anything that is not a language tag."""
    if not value:
        return None
    code = re.split(r"[-_,; ]", value.strip(), maxsplit=1)[0].lower()
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


def _names(value: Any) -> tuple[str, ...]:
    """Author names from a ``;``-separated string or a list, cleaned of what is not a name."""
    if not value:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(";")
    return author_names(str(a) for a in items)


# ---------------------------------------------------------------------------------------------
# Precision rules on trafilatura's output tree


def _block_text(element: Any) -> str:
    return "".join(element.itertext())


def _remove(element: Any) -> None:
    parent = element.getparent()
    if parent is not None:
        # keep the tail (text after the element inside its parent)
        if element.tail and element.tail.strip():
            previous = element.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + element.tail
            else:
                parent.text = (parent.text or "") + element.tail
        parent.remove(element)


def prune_blocks(body: Any, title: str | None, max_link_density: float | None) -> list[str]:
    """Drop title repeats and link-dominated blocks from trafilatura's output tree, in place.

    Args:
        body: ``Document.body`` of ``bare_extraction(..., include_links=True)``.
        title: the page title; a block with exactly its words is dropped (None: no check).
        max_link_density: drop blocks with a larger share of their non-space characters
            inside ``<ref>`` links (characters, so that it means the same in every script).

    Returns:
        The rule names that removed something (``title_block``, ``link_dense``).
    """
    fired: list[str] = []
    title_words = words(title)
    for element in list(body.iter(*_BLOCK_TAGS)):
        if element.getparent() is None:
            continue
        block = words(_block_text(element))
        if not block:
            continue
        if title_words and block == title_words:
            _remove(element)
            fired.append("title_block")
            continue
        if max_link_density is not None:
            linked = (_block_text(ref) for ref in element.iter("ref"))
            if link_density(_block_text(element), linked) > max_link_density:
                _remove(element)
                fired.append("link_dense")
    # Links were only kept to measure density; the text keeps their words.
    etree.strip_tags(body, "ref")
    return sorted(set(fired))


def agree_with(text: str, other: str, min_agreement: float) -> tuple[str, bool]:
    """Keep the lines of ``text`` that ``other`` (a second extractor's text) also contains.

    When fewer than ``min_agreement`` of the shingles of ``text`` are in ``other``, the two
    extractors disagree about the page and ``text`` is returned unchanged. Otherwise a line
    is dropped when none of its shingles are in ``other`` (or, for a line of fewer than
    ``SHINGLE`` words, none of its words are).

    Returns:
        The kept text and whether a line was dropped.
    """
    mine = shingles(text)
    theirs = shingles(other)
    if not mine or not theirs:
        return text, False
    if sum((mine & theirs).values()) / sum(mine.values()) < min_agreement:
        return text, False
    their_words = set(words(other))
    kept: list[str] = []
    for line in text.split("\n"):
        line_shingles = shingles(line)
        if line_shingles:
            keep = any(s in theirs for s in line_shingles)
        else:
            line_words = words(line)
            keep = not line_words or any(w in their_words for w in line_words)
        if keep:
            kept.append(line)
    return "\n".join(kept), len(kept) < len(text.split("\n"))


def readability_text(html: str) -> str:
    """The main text readability-lxml finds in a page ('' when it finds none)."""
    import lxml.html
    from readability import Document as Readability

    try:
        summary = Readability(html).summary(html_partial=True)
        if not summary.strip():
            return ""
        return str(lxml.html.fromstring(summary).text_content())
    except Exception:  # readability raises on pages it cannot score: no second opinion then
        return ""


# ---------------------------------------------------------------------------------------------
# The learned block classifier

# trafilatura's output elements that hold one block each; only the outermost is scored.
CLASSIFIED_TAGS = ("p", "head", "item", "quote", "code", "row")
# The share of a block's shingles found in the precision output is a feature; this much makes
# a block "in" it for the features of its neighbours.
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026:;\"'\u201d\u2019\u00bb)]\s*$")
_PUNCTUATION = re.compile(r"[,.;:!?\uff0c\u3002\uff1b\uff1a\uff01\uff1f\u3001]")
BLOCK_FEATURES = (
    "log_chars",
    "link_share",
    "sentence_end",
    "punctuation_per_char",
    "digits_per_char",
    "position",
    "distance_to_edge",
    "log_words",
    "upper_share",
    "log_blocks",
    "page_share",
    "link_share_before",
    "link_share_after",
    "log_chars_before",
    "log_chars_after",
    "bars_per_char",
    *(f"tag_{tag}" for tag in CLASSIFIED_TAGS),
    "in_precision",
)


def outer_blocks(body: Any) -> list[Any]:
    """The block elements of a trafilatura output tree that are not inside another block."""
    blocks = []
    for element in body.iter(*CLASSIFIED_TAGS):
        parent = element.getparent()
        while parent is not None and parent.tag not in CLASSIFIED_TAGS:
            parent = parent.getparent()
        if parent is None:
            blocks.append(element)
    return blocks


def _chars(text: str) -> int:
    return len("".join(text.split()))


def _link_share(element: Any) -> float:
    """Share of the block's non-space characters inside ``<ref>`` links."""
    total = _chars(_block_text(element))
    linked = sum(_chars(_block_text(ref)) for ref in element.iter("ref"))
    return linked / total if total else 0.0


def _shingle_set(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


class _Reference:
    """What another extraction holds: its blocks' word sequences, its shingles and words."""

    def __init__(self, body: Any):
        from trafilatura.xml import xmltotxt

        self.blocks = {tuple(words(_block_text(b))) for b in outer_blocks(body)}
        tokens = words(xmltotxt(copy.deepcopy(body), False))
        self.shingles = _shingle_set(tokens)
        self.words = set(tokens)

    def share(self, text: str) -> float:
        """How much of ``text`` this extraction holds: 1 for a block it has as is, else the
        share of the text's shingles (of its words, below ``SHINGLE`` words) it holds."""
        tokens = words(text)
        if not tokens or tuple(tokens) in self.blocks:
            return 1.0
        own = _shingle_set(tokens)
        if own:
            return sum(1 for s in own if s in self.shingles) / len(own)
        return sum(1 for w in tokens if w in self.words) / len(tokens)


def block_features(body: Any, precision_body: Any | None) -> list[list[float]]:
    """One row of ``BLOCK_FEATURES`` per block of ``outer_blocks(body)``, in order.

    Args:
        body: trafilatura's default output tree, with ``<ref>`` links kept.
        precision_body: the output tree of its precision mode (None: it found nothing).
    """
    blocks = outer_blocks(body)
    reference = _Reference(precision_body) if precision_body is not None else None
    texts = [_block_text(b) for b in blocks]
    lengths = [_chars(t) for t in texts]
    links = [_link_share(b) for b in blocks]
    count, total = len(blocks), sum(lengths) or 1
    rows = []
    for i, (block, text) in enumerate(zip(blocks, texts, strict=True)):
        chars = lengths[i]
        letters = [ch for ch in text if ch.isalpha()]
        rows.append(
            [
                math.log1p(chars),
                links[i],
                1.0 if _SENTENCE_END.search(text) else 0.0,
                len(_PUNCTUATION.findall(text)) / (chars + 1),
                sum(ch.isdigit() for ch in text) / (chars + 1),
                i / max(count - 1, 1),
                min(i, count - 1 - i) / max(count, 1),
                math.log1p(len(words(text))),
                sum(ch.isupper() for ch in letters) / len(letters) if letters else 0.0,
                math.log1p(count),
                chars / total,
                links[i - 1] if i > 0 else 1.0,
                links[i + 1] if i < count - 1 else 1.0,
                math.log1p(lengths[i - 1]) if i > 0 else 0.0,
                math.log1p(lengths[i + 1]) if i < count - 1 else 0.0,
                text.count("|") / (chars + 1),
                *(1.0 if block.tag == tag else 0.0 for tag in CLASSIFIED_TAGS),
                reference.share(text) if reference is not None else 0.0,
            ]
        )
    return rows


@dataclasses.dataclass(frozen=True)
class BlockModel:
    """A logistic regression over standardised ``BLOCK_FEATURES``: P(block is article text)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if self.features != BLOCK_FEATURES:
            raise ValueError("the block model was trained on other features than BLOCK_FEATURES")
        if not len(self.mean) == len(self.scale) == len(self.weights) == len(self.features):
            raise ValueError("the block model's vectors differ in length")

    def probability(self, row: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, row, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 500.0), -500.0)))

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=4)
def load_block_model(path: str = "") -> BlockModel:
    """The block model in a JSON file ("" for the packaged one).

    Cached per process: the file is read-only package data, the same on every worker, so the
    cache cannot make results depend on how work was split.

    Raises:
        ValueError: a file that is not a block model for these features.
    """
    if not path:
        import importlib.util

        spec = importlib.util.find_spec("news_ingest.configs")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("news_ingest.configs is not installed with the package")
        path = os.path.join(next(iter(spec.submodule_search_locations)), "block_model.json")
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    try:
        return BlockModel(
            features=tuple(data["features"]),
            mean=tuple(float(x) for x in data["mean"]),
            scale=tuple(float(x) for x in data["scale"]),
            weights=tuple(float(x) for x in data["weights"]),
            bias=float(data["bias"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a block model: {exc!r}") from exc


def classify_blocks(
    body: Any, precision_body: Any | None, model: BlockModel, threshold: float
) -> int:
    """Drop, in place, the blocks of ``body`` the model scores below ``threshold``.

    Nothing is dropped when every block would be (the page keeps what trafilatura found).

    Returns:
        The number of blocks dropped.
    """
    blocks = outer_blocks(body)
    rows = block_features(body, precision_body)
    doomed = [b for b, row in zip(blocks, rows, strict=True) if model.probability(row) < threshold]
    if len(doomed) == len(blocks):
        return 0
    for block in doomed:
        _remove(block)
    return len(doomed)


def precision_body(page: Any, url: str | None, opts: ExtractOptions) -> Any | None:
    """The body of trafilatura's precision mode on a page, given as HTML text or as its parsed
    tree (trafilatura works on a copy of a tree, so the caller's stays whole); None when it
    finds nothing."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        page,
        url=url,
        with_metadata=False,
        include_comments=False,
        include_links=True,
        include_tables=opts.include_tables,
        deduplicate=opts.deduplicate,
        favor_precision=True,
    )
    return getattr(doc, "body", None)


# ---------------------------------------------------------------------------------------------
# Extraction


def extract_text(raw: RawDocument) -> Article | DeadLetter:
    """A plain-text document to an Article (text as decoded; cleaning comes later)."""
    text = decode_text(raw.content)
    if text is None or looks_binary(text):
        return rejection(raw, STAGE, "not_text", "the bytes do not decode to text")
    return Article(
        article_id=article_id_for(raw),
        source_kind=raw.source_kind,
        source_ref=raw.source_ref,
        url=raw.url,
        title=raw.hint("title"),
        text=text,
        **_hint_fields(raw),
    )


def _hint_fields(raw: RawDocument) -> dict[str, Any]:
    """The Article fields a source's hints give, on their own."""
    return {
        **article_fields(parse_published(raw.hint("published"))),
        "publisher": raw.hint("publisher") or None,
        "authors": _names(raw.hint("author")),
        "language": language_code(raw.hint("language")),
        "categories": split_labels(raw.hint("categories")),
        "tags": split_labels(raw.hint("tags")),
    }


def extract_html(raw: RawDocument, options: ExtractOptions | None = None) -> Article | DeadLetter:
    """An HTML document to an Article with trafilatura's text and the page's metadata.

    Expected rejections (returned, not raised): ``not_html`` (bytes that are not text),
    ``too_complex`` (more than ``options.max_elements`` elements), ``no_article`` (no article
    text found).
    """
    import trafilatura
    from trafilatura.settings import Document
    from trafilatura.utils import load_html
    from trafilatura.xml import xmltotxt

    opts = options or ExtractOptions()
    html = decode_text(raw.content)
    if html is None or looks_binary(html):
        return rejection(raw, STAGE, "not_html", "the bytes do not decode to text")
    tree = load_html(html)
    if tree is None:
        return rejection(raw, STAGE, "no_article", "the document does not parse as HTML")
    elements = sum(1 for _ in tree.iter())
    if elements > opts.max_elements:
        return rejection(
            raw,
            STAGE,
            "too_complex",
            f"{elements} HTML elements exceed the limit of {opts.max_elements}",
        )
    canonical = canonical_link(tree, raw.url)
    language = page_language(tree)
    # read before trafilatura, which may prune the tree
    labelled, structured = labelled_published(tree), structured_published(tree)
    doc = trafilatura.bare_extraction(
        tree,
        url=raw.url,
        with_metadata=True,
        include_comments=False,
        include_links=True,
        include_tables=opts.include_tables,
        deduplicate=opts.deduplicate,
        favor_precision=opts.favor_precision,
    )
    if not isinstance(doc, Document):  # None: trafilatura found no main content
        return rejection(raw, STAGE, "no_article", "no article text found in the page")
    fired: list[str] = []
    text = ""
    if doc.body is not None:
        body = copy.deepcopy(doc.body)
        if opts.block_classifier:
            model = load_block_model(opts.block_model)
            if classify_blocks(
                body, precision_body(tree, raw.url, opts), model, opts.block_threshold
            ):
                fired.append("block_classifier")
        fired += prune_blocks(
            body, doc.title if opts.drop_title_block else None, opts.max_link_density
        )
        text = xmltotxt(body, False) or ""
        if opts.second_opinion and text.strip():
            text, dropped = agree_with(text, readability_text(html), opts.min_agreement)
            if dropped:
                fired.append("second_opinion")
    if not text.strip():
        return rejection(raw, STAGE, "no_article", "no article text found in the page")
    hints = _hint_fields(raw)
    page_date = choose_published(labelled, structured, htmldate_day(html, raw.url))
    return Article(
        article_id=article_id_for(raw),
        source_kind=raw.source_kind,
        source_ref=raw.source_ref,
        url=raw.url or canonical or doc.url,
        canonical_url=canonical,
        title=doc.title or raw.hint("title"),
        text=text,
        # a feed's timestamp refines a date-only page value of the same day
        **article_fields(prefer_precise(page_date, parse_published(raw.hint("published")))),
        publisher=hints["publisher"],
        authors=_names(doc.author) or hints["authors"],
        language=language or hints["language"],
        site_name=doc.sitename or None,
        image_url=doc.image or None,
        # a source's labels (a feeds list's tags) are added to the page's own
        categories=merge_labels(split_labels(doc.categories), hints["categories"]),
        tags=merge_labels(split_labels(doc.tags), hints["tags"]),
        rules_fired=tuple(f"extract:{name}" for name in fired),
    )


def extract(raw: RawDocument, options: ExtractOptions | None = None) -> Article | DeadLetter:
    """Dispatch on what the document is: HTML through trafilatura, anything else as text."""
    if is_html(raw):
        return extract_html(raw, options)
    return extract_text(raw)


class _Extract(beam.DoFn):
    def __init__(self, options: ExtractOptions):
        self.options = options

    def setup(self) -> None:
        # With isolation "subprocess" this runs in the child: it must die with its launcher.
        tie_forked_child()

    def process(self, raw: RawDocument) -> Iterable[Article | DeadLetter]:
        yield extract(raw, self.options)


def _count_rules(article: Article) -> Article:
    # Counted in the calling process: counters incremented inside a subprocess are lost.
    for rule in article.rules_fired:
        Metrics.counter(STAGE, f"rule:{rule}").inc()
    return article


class Extract(beam.PTransform):
    """RawDocument -> (Article, DeadLetter), with a per-document timeout.

    Args:
        options: the ``extract:`` section (timeout, isolation and how HTML is extracted).
    """

    def __init__(self, options: ExtractOptions | None = None):
        super().__init__()
        self.options = options or ExtractOptions()

    def expand(self, docs):  # type: ignore[no-untyped-def]
        articles, dead = docs | "ExtractArticles" >> ApplyStage(
            STAGE,
            _Extract(self.options),
            timeout=self.options.timeout_s,
            use_subprocess=self.options.isolation != "thread",
        )
        return articles | "CountRules" >> beam.Map(_count_rules), dead
