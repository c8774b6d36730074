"""Extraction: a ``RawDocument`` becomes an ``Article`` with its raw text and page metadata.

Plain text is decoded (charset detected when it is not UTF-8); HTML goes through trafilatura.
Cleaning and metadata normalization happen in later stages.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import apache_beam as beam
import charset_normalizer

from transforms.schema import SOURCE_HTML, Article, DeadLetter, RawDocument, stable_id
from transforms.stage import ApplyStage, rejection

STAGE = "extract"

DEFAULT_TIMEOUT_S = 30.0


def article_id_for(raw: RawDocument) -> str:
    """Stable id: the URL when there is one, else the raw bytes and the file's base name."""
    if raw.url:
        return stable_id("url", raw.url)
    digest = hashlib.blake2b(raw.content, digest_size=16).hexdigest()
    return stable_id("doc", digest, os.path.basename(raw.source_ref))


def decode_text(content: bytes) -> str | None:
    """Decode bytes to text: UTF-8 (with or without BOM), else the detected charset.

    Returns None when the bytes are not text (binary junk) in any charset we trust.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(content).best()
        if best is None:
            return None
        text = str(best)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def looks_binary(text: str) -> bool:
    """True when too much of the text is control characters to be prose."""
    if not text:
        return False
    sample = text[:20000]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad / len(sample) > 0.05


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
    )


def extract_html(raw: RawDocument) -> Article | DeadLetter:
    """An HTML document to an Article with trafilatura's text and metadata."""
    import trafilatura

    html = decode_text(raw.content)
    if html is None or looks_binary(html):
        return rejection(raw, STAGE, "not_html", "the bytes do not decode to text")
    doc = trafilatura.bare_extraction(
        html, url=raw.url, with_metadata=True, include_comments=False, favor_precision=False
    )
    text = (doc.text if doc is not None else None) or ""
    if not text.strip():
        return rejection(raw, STAGE, "no_article", "no article text found in the page")
    return Article(
        article_id=article_id_for(raw),
        source_kind=raw.source_kind,
        source_ref=raw.source_ref,
        url=raw.url or (doc.url if doc else None),
        title=(doc.title if doc else None) or raw.hint("title"),
        text=text,
        site_name=doc.sitename if doc else None,
        authors=tuple(a.strip() for a in (doc.author or "").split(";") if a.strip()) if doc else (),
    )


def extract(raw: RawDocument) -> Article | DeadLetter:
    """Dispatch on the source kind."""
    if raw.source_kind == SOURCE_HTML:
        return extract_html(raw)
    return extract_text(raw)


class _Extract(beam.DoFn):
    def process(self, raw: RawDocument) -> Iterable[Article | DeadLetter]:
        yield extract(raw)


class Extract(beam.PTransform):
    """RawDocument -> (Article, DeadLetter), with a per-document timeout."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S):
        super().__init__()
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = timeout_s

    def expand(self, docs):  # type: ignore[no-untyped-def]
        return docs | "ExtractArticles" >> ApplyStage(STAGE, _Extract(), timeout=self.timeout_s)
