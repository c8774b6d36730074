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
import hashlib
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

    The defaults are trafilatura's own default mode with the three precision rules off: that
    is what measured best over every labelled set and both halves of each (README, "Extraction
    quality"); each rule gained on the news pages it was tuned on and lost on the general web.

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
