"""URLs: the canonical form of an http(s) URL, and the canonical link a page declares."""

from __future__ import annotations

import urllib.parse
from typing import Any

import courlan

SCHEMES = ("http", "https")

# <link> elements of the head whose rel names "canonical" (rel is a space-separated list,
# compared case-insensitively).
_CANONICAL_HREF = (
    "//head//link[contains(concat(' ', translate(normalize-space(@rel),"
    " 'CANONIAL', 'canonial'), ' '), ' canonical ')]/@href"
)


def canonicalize_url(url: str | None) -> str | None:
    """The canonical form of an http(s) URL: host lower-cased, default port, tracking
    parameters (utm_*, fbclid, gclid ...) and fragment removed, query sorted (by courlan);
    None when the URL is not an absolute http(s) URL."""
    if not url:
        return None
    try:  # urlsplit raises on a malformed host ("http://["), .port on a bad port
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme.lower() not in SCHEMES or not parts.hostname:
            return None
        parts.port  # noqa: B018 - validates the port
        normalized = courlan.normalize_url(url.strip())
    except (ValueError, AttributeError):
        return None
    return urllib.parse.urldefrag(normalized).url


def canonical_link(tree: Any, base_url: str | None) -> str | None:
    """The canonical URL a parsed HTML page declares.

    Args:
        tree: the page as an lxml HTML tree (the one extraction parses anyway).
        base_url: the URL the page was fetched from (after redirects), against which a
            relative ``href`` is resolved.

    Returns:
        The first ``<link rel=canonical href>`` in the head, resolved against ``base_url`` and
        put in canonical form (``canonicalize_url``); None when there is none or it is not an
        absolute http(s) URL.
    """
    for value in tree.xpath(_CANONICAL_HREF):
        href = str(value).strip()
        if href:
            return canonicalize_url(urllib.parse.urljoin(base_url or "", href))
    return None


def host_key(url: str) -> str:
    """The politeness key of a URL: its lower-cased host ('' when it has none)."""
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
