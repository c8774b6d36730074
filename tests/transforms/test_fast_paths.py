"""The fast paths of the per-document stages give exactly what the slow definitions give.

Each fast path (one regex for word counts, ASCII lines kept out of ftfy, one pass over the
``<meta>`` tags, a regex for control characters) is checked against the plain definition it
replaces, written out here as the oracle, on generated text mixing the cases that matter:
spaceless scripts with combining marks, punctuation-only runs, entities, mojibake, control
characters and line separators.
"""

from __future__ import annotations

import ftfy
import lxml.html
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.transforms import clean, dates, text
from news_ingest.transforms.extract import looks_binary

_SPACELESS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc"
_PIECE = regex.compile(rf"[{_SPACELESS}]\p{{M}}*|[^\s\x1c-\x1f{_SPACELESS}]+")
_SPACELESS_CHAR = regex.compile(rf"[{_SPACELESS}]")
_WORD_CHAR = regex.compile(r"[\w\p{M}]")


def counted_words(value: str) -> int:
    """``word_count`` as its docstring defines it: pieces (a spaceless character with its
    marks, or a run of other non-space characters) that hold a letter, digit or mark."""
    return sum(
        1
        for m in _PIECE.finditer(value)
        if _SPACELESS_CHAR.match(m.group(0)) or _WORD_CHAR.search(m.group(0))
    )


def tokens(value: str) -> list[str]:
    """``words`` as defined: spaceless characters with their marks, or runs of other word
    characters and marks, case-folded."""
    pattern = regex.compile(rf"[{_SPACELESS}]\p{{M}}*|(?:(?![{_SPACELESS}])[\w\p{{M}}])+")
    return pattern.findall(value.casefold())


MIXED = st.text(
    alphabet=st.sampled_from(
        list(
            " \t\n\u3000\x1c-—.,'\"!?()中文新闻かなカナーไทยabcXYZ019éü\u0301\u0903\u093fक한국ـ_$€…·"
        )
    ),
    max_size=40,
)
UNICODE_TROUBLE = st.lists(
    st.sampled_from(
        list("ab &amp;;#x27<>\n\r\t\x00\x1b\x85\u2028ﬁÃ©â€™’“”é中文\ufffd\xa0\x92\x0b\x7f")
        + ["&amp;", "&#x2019;", "Ã©", "â€™", "ï¿½", "\r\n"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(MIXED)
def test_word_count_and_words_match_their_definitions(value):
    assert text.word_count(value) == counted_words(value)
    assert text.words(value) == tokens(value)


def test_word_count_examples():
    assert text.word_count("2024年的新闻") == 5
    assert text.word_count("— don't U.S. 28-year-old —") == 3
    assert text.word_count("中\u0301abc") == 2  # a run right after a spaceless character's mark
    assert text.word_count("-" * 10_000 + " a") == 1


@settings(max_examples=3000, deadline=None)
@given(UNICODE_TROUBLE)
def test_fix_unicode_is_ftfy_line_by_line(value):
    assert clean.fix_unicode(value) == ftfy.fix_text(value.replace("\x00", ""), clean._FTFY)


def test_fix_unicode_keeps_the_entity_state_across_kept_lines():
    # ftfy stops unescaping entities once a line holds "<": a kept ASCII line with "<" counts.
    value = "a < b\nit&#x2019;s\n"
    assert clean.fix_unicode(value) == ftfy.fix_text(value, clean._FTFY) == value
    assert clean.fix_unicode("it&#x2019;s\n") == "it\u2019s\n"


def _slow_meta(tree, name):
    return [
        str(v)
        for v in tree.xpath(
            "//meta[@content][translate(@property, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',"
            " 'abcdefghijklmnopqrstuvwxyz')=$name or translate(@name,"
            " 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')=$name]/@content",
            name=name,
        )
    ]


def test_meta_contents_match_one_xpath_per_name():
    page = lxml.html.fromstring(
        "<html><head>"
        '<meta property="Article:Published_Time" content="2024-03-05T10:00:00+01:00">'
        '<meta name="pubdate" property="pubdate" content="2024-03-04">'
        '<meta name="PUBLISH-DATE" content="">'
        '<meta name="dc.date.issued">'
        '<meta property="og:published_time" name="x" content="2024-03-03">'
        '<meta name="ARTİCLE:published_time" content="not ASCII-folded">'
        "</head><body><p>text</p></body></html>"
    )
    found = dates._meta_contents(page)
    for name in dates._META_PUBLISHED:
        assert found.get(name, []) == _slow_meta(page, name), name
    assert dates.structured_published(page) == dates.parse_published("2024-03-05T10:00:00+01:00")


@settings(max_examples=2000, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab \t\n\r\f\x00\x01\x0b\x0c\x0e\x1f\ufffd")), min_size=1)
)
def test_looks_binary_counts_control_characters(value):
    sample = value[:20000]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    assert looks_binary(value) == (bad / len(sample) > 0.05)
