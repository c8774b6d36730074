"""Charsets: the one ladder that decides how the bytes of a page, a text file or a feed are read.

Used by the fetch stage and the WARC reader (which transcode page bodies to UTF-8), by
extraction (which decodes documents to text) and by the feed reader (which must see the prolog
of a UTF-16 feed to refuse its entity declarations).
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

# Byte-order marks, then the first bytes of an XML/HTML document in UTF-16 without one
# (XML 1.0, appendix F: "<" is 3C 00 or 00 3C).
_SNIFFS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"<\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
)
_UNICODE = ("utf-8", "utf-8-sig", "utf-16", "utf-32", "utf-16-le", "utf-16-be")

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
    re.IGNORECASE,
)
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xef][\x80-\xbf]{2}"
    rb"|[\xf0-\xf4][\x80-\xbf]{3}"
)
# How much of a document the statistical detector reads (its cost grows with the size).
DETECT_BYTES = 200_000


# Codecs Python knows that no web page is written in: bytes-to-bytes transforms (base64, zlib
# ...) raise on decode, the escape codecs would read backslashes as escapes, and UTF-7 is a
# known way to smuggle markup past filters (the WHATWG Encoding Standard has none of them).
_NOT_PAGE_CODECS = frozenset(
    ("undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7", "mbcs")
)


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except LookupError:
        return None
    name = info.name
    if not getattr(info, "_is_text_encoding", True) or name in _NOT_PAGE_CODECS:
        return None
    # WHATWG: a page labelled latin-1 or ascii is decoded as windows-1252.
    return "cp1252" if name in ("latin-1", "iso8859-1", "ascii") else name


def charset_of(content_type: str | None) -> str | None:
    """The codec named by a Content-Type header's charset parameter, if Python knows it."""
    if not content_type:
        return None
    match = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.IGNORECASE)
    return _codec(match.group(1)) if match else None


def sniff_unicode(content: bytes) -> str | None:
    """The Unicode codec a byte-order mark (or a UTF-16 ``<``) announces, else None."""
    for prefix, name in _SNIFFS:
        if content.startswith(prefix):
            return name
    return None


def _mostly_utf8(content: bytes) -> bool:
    """True for UTF-8 with a few broken bytes: valid multi-byte sequences outnumber the
    invalid bytes four to one (a legacy 8-bit text has almost no valid sequences)."""
    valid = len(_UTF8_MULTIBYTE.findall(content))
    if not valid:
        return False
    invalid = content.decode("utf-8", "replace").count("\ufffd")
    return invalid * 4 <= valid


def detect_charset(content: bytes, content_type: str | None = None) -> str | None:
    """The codec to decode ``content`` with; None when the bytes are text in no charset the
    detector trusts (binary junk).

    Order: a byte-order mark (or UTF-16 without one); UTF-8 with non-ASCII bytes, valid or with
    a few broken bytes (a far stronger signal than a header, which servers often get wrong);
    the header's charset; the document's own ``<meta charset>`` or XML declaration, when the
    bytes decode in it; plain ASCII as UTF-8; charset-normalizer's guess, where windows-1252
    wins among equally good guesses (the web's default for unlabelled Western text; the
    detector otherwise picks cp1250 for short French or German text: "après" -> "aprčs").
    """
    sniffed = sniff_unicode(content)
    if sniffed:
        return sniffed
    if not content.isascii():
        try:
            content.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            if _mostly_utf8(content[:DETECT_BYTES]):
                return "utf-8"
    match = _META_CHARSET.search(content[:8192])
    declared = [charset_of(content_type)]
    if match:
        declared.append(_codec((match.group(1) or match.group(2)).decode("ascii", "replace")))
    for label in declared:
        if label and label not in _UNICODE:
            try:
                content.decode(label)
                return label
            except UnicodeError:
                continue
    if content.isascii():
        return "utf-8"
    matches = charset_normalizer.from_bytes(content[:DETECT_BYTES])
    best = matches.best()
    if best is None:
        return None
    for candidate in matches:
        as_good = candidate.chaos <= best.chaos and candidate.coherence >= best.coherence
        if as_good and (
            candidate.encoding == "cp1252" or "cp1252" in candidate.could_be_from_charset
        ):
            return "cp1252"
    return _codec(best.encoding) or best.encoding


def decode(content: bytes, content_type: str | None = None) -> str | None:
    """``content`` as text (a leading BOM dropped, broken bytes replaced), decoded with the
    codec of ``detect_charset``; None when it is not text."""
    name = detect_charset(content, content_type)
    if name is None:
        return None
    return content.decode(name, "replace").lstrip("\ufeff")


def to_utf8(content: bytes, content_type: str | None = None) -> tuple[bytes, str]:
    """``content`` re-encoded as UTF-8 (without BOM), and the charset it was decoded from
    (windows-1252 for bytes that are not text: extraction rejects those)."""
    name = detect_charset(content, content_type) or "cp1252"
    text = content.decode(name, "replace").lstrip("\ufeff")
    return text.encode("utf-8"), name
