"""Hypothesis properties of the pure text functions: no exception on any input, idempotence."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.clean import normalize_whitespace, split_header
from transforms.normalize import content_hash, normalize_article, word_count
from transforms.schema import Article

FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

# Text with the characters that break text code: controls, NUL, CR, NBSP and other spaces,
# combining marks, surrogate-free astral characters, and the seed header's own vocabulary.
texts = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\r\n", "\r", "\n", "\x00", "\u00a0", "\u2028", "\ufeff", "\u0301", "-"]),
        st.sampled_from([" date ", "2024-10-28", "(MENAFN- Ukrinform)", "(", ")"]),
    ),
    max_size=200,
).map("".join)


@FUZZ
@given(texts)
def test_normalize_whitespace_never_raises_and_is_idempotent(text):
    once = normalize_whitespace(text)
    assert normalize_whitespace(once) == once
    assert "\r" not in once
    assert once == once.strip()


@FUZZ
@given(texts)
def test_split_header_keeps_the_rest_of_the_text(text):
    rest, fields = split_header(text)
    assert text.endswith(rest)
    assert bool(fields) == (rest != text) or not text


@FUZZ
@given(texts)
def test_content_hash_ignores_spacing_and_ascii_case(text):
    # Cleaning composes the text (NFC) before normalization hashes it, so compare composed text.
    text = unicodedata.normalize("NFC", text)
    assert content_hash(text) == content_hash(normalize_whitespace(text))
    assert content_hash(text) == content_hash(text.encode().upper().decode())
    assert word_count(text) == len(text.split())


@FUZZ
@given(texts)
def test_normalize_article_is_idempotent(text):
    article = Article(article_id="a", source_kind="text", source_ref="x", text=text)
    once = normalize_article(article)
    assert normalize_article(once) == once
