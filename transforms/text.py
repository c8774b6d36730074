"""The one tokenizer: words, word counts, shingles and link density for every script.

Words are runs of word characters (``\\w``, with combining marks kept inside the word, so a
Hindi or vocalised Arabic word is one token, not one per vowel sign), case-folded. Scripts
written without spaces between words (Chinese, Japanese kana and kanji, Thai, Lao, Khmer,
Myanmar) have no such runs to find: there each character (with its combining marks) is a
token, as character n-grams are the usual unit for near-duplicate detection in those
languages and need no dictionary. Korean separates words with spaces, so Hangul runs are
words. Every stage that counts words, shingles text or measures links uses these functions,
so a Chinese article has as many "words" in cleaning as in normalization and deduplication.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

# Scripts without spaces between words; U+30FC (the katakana-hiragana prolonged sound mark) is
# a "Common" character that only occurs inside kana words.
_SPACELESS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc"
# (VERSION1 syntax for set difference, ``[[a]--[b]]``: one class test per character, 1.6x
# faster than a negative lookahead before each one.)
_TOKEN = regex.compile(
    rf"(?V1)[{_SPACELESS}]\p{{M}}*"  # one character of a spaceless script, with its marks
    rf"|[[\w\p{{M}}]--[{_SPACELESS}]]+"  # a word of any other script
)
# Spaces as ``str.split`` sees them: Unicode White_Space and the C0 separators U+001C-U+001F.
_SPACE_CLASS = r"\s\x1c-\x1f"
_SPACE = regex.compile(rf"[{_SPACE_CLASS}]+")
_SPACELESS_CHAR = regex.compile(rf"[{_SPACELESS}]")
_SPACELESS_END = regex.compile(rf"[{_SPACELESS}]\p{{M}}*$")
# What ``word_count`` counts: a character of a spaceless script, or a run of other non-space
# characters (kept whole, so that punctuation inside a word does not split it) that holds a
# letter, digit or mark. One pattern, so that counting is one ``findall`` with no Python work
# per word: the second branch starts only where a run starts (after a space, a spaceless
# character or its marks, or at the start), skips the run's leading punctuation possessively,
# needs a word character and takes the rest of the run; a run without one never matches, and
# no position is scanned twice.
_RUN = rf"[^{_SPACE_CLASS}{_SPACELESS}]"
_COUNTED = regex.compile(
    rf"(?V1)[{_SPACELESS}]\p{{M}}*"
    rf"|(?<![^{_SPACE_CLASS}{_SPACELESS}\p{{M}}])"
    rf"[{_RUN}--[\w\p{{M}}]]*+[[\w\p{{M}}]--[{_SPACELESS}]]{_RUN}*"
)

# Where ``word_count`` needs no spaceless-script test: below the first spaceless character (Thai).
_FIRST_SPACELESS = "\u0e00"
# A run of non-space characters with no letter, digit or mark (e.g. a lone "—").
_WORDLESS_RUN = regex.compile(
    rf"(?<![^{_SPACE_CLASS}])[^{_SPACE_CLASS}\w\p{{M}}]++(?![^{_SPACE_CLASS}])"
)


def words(text: str | None) -> list[str]:
    """The case-folded tokens of a text: words, and single characters of spaceless scripts.

    Punctuation (full-width or not), spacing and line breaks are not tokens.
    """
    return _TOKEN.findall((text or "").casefold())


def word_count(text: str | None) -> int:
    """Number of words as a reader counts them.

    A word is a run of non-space characters holding at least one letter or digit ("don't",
    "U.S." and "28-year-old" are one word each, a lone "—" is none), so that text in scripts
    with spaces counts as it always has; in scripts without spaces each character is a word,
    as in ``words`` ("2024年的新闻" is five words: "2024" and four characters).
    """
    if not text:
        return 0
    if text.isascii() or max(text) < _FIRST_SPACELESS:
        # No spaceless script (all of them are at U+0E00 or above): the runs are what
        # ``str.split`` gives, less those without a letter, digit or mark; 4x faster.
        return len(text.split()) - len(_WORDLESS_RUN.findall(text))
    return len(_COUNTED.findall(text))


def shingles(text: str | None, size: int) -> list[tuple[str, ...]]:
    """The ``size``-token shingles of a text, in order and with repeats (none when shorter).

    Raises:
        ValueError: ``size`` is below 1.
    """
    if size < 1:
        raise ValueError(f"shingle size must be at least 1, got {size}")
    tokens = words(text)
    return [tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]


def joins_without_space(left: str, right: str) -> bool:
    """Whether ``left`` ends and ``right`` starts in a script written without spaces, so that
    a line break between them joins the two without one ("中文" + "新闻" -> "中文新闻")."""
    return bool(_SPACELESS_END.search(left) and _SPACELESS_CHAR.match(right))


def lead(text: str, count: int) -> str:
    """The start of ``text`` up to the end of its ``count``-th token (all of it when shorter)."""
    for i, match in enumerate(_TOKEN.finditer(text), start=1):
        if i == count:
            return text[: match.end()]
    return text


def visible_length(text: str | None) -> int:
    """Number of non-space characters of a text."""
    return len(_SPACE.sub("", text or ""))


def link_density(text: str, linked: Iterable[str]) -> float:
    """Share of the non-space characters of a block that sit inside its links.

    Measured by characters rather than words so that it means the same in every script: in
    Chinese a paragraph is a few long runs of characters, and counting each inline link as one
    "word" of them gives shares above 1.

    Args:
        text: The whole text of the block (links included).
        linked: The texts of the links inside the block.

    Returns:
        The share in [0, 1]; 0 for a block without visible characters.
    """
    total = visible_length(text)
    if not total:
        return 0.0
    return min(1.0, sum(visible_length(t) for t in linked) / total)
