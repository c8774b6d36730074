"""Hypothesis properties over cleaning, date parsing, hashing and normalization on adversarial
input: no exception on any input, idempotence where the function promises a normal form.

The owners' own tests check these functions on well-formed input; these feed them anything:
controls, NUL, lone combining marks, odd spaces and line ends.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from news_ingest.transforms.clean import (
    RuleSet,
    clean_text,
    fix_unicode,
    normalize_lines,
    split_title,
)
from news_ingest.transforms.dates import parse_published
from news_ingest.transforms.normalize import content_hash, normalize_article, tidy, word_count
from news_ingest.transforms.rulepack import load_pack, load_packs
from news_ingest.transforms.schema import UTC, Article
from news_ingest.transforms.text import words

ROOT = Path(__file__).resolve().parents[2]
# No per-example deadline: the first example of a property pays for lazy loads (ftfy's tables,
# the word-frequency list; measured 3.8 s once, then 0.45 ms), as in the other property modules.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that break text code, mixed with arbitrary characters.
ODD = ["\r\n", "\r", "\n", "\n\n", "\x00", "\u00a0", "\u2028", "\ufeff", "\u0301", "\t", "-", "|"]
WORDS = [" date ", "2024-10-28", "(MENAFN- Ukrinform)", "BRUSSELS: ", "Photo: ", "Advertisement"]
texts = st.lists(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD), st.sampled_from(WORDS)),
    max_size=120,
).map("".join)

DATE_PIECES = ["2024", "-", "10", "28", "T", ":", "Z", "+05:30", " ", "Mon", "Oct", "GMT", "/"]
dates = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.one_of(st.sampled_from(DATE_PIECES), st.integers(0, 99999).map(str)), max_size=12
    ).map("".join),
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    default = load_pack(str(ROOT / "configs" / "boilerplate.yaml"))
    rules = RuleSet(default, load_packs(str(ROOT / "configs" / "packs")))
    # The first call loads the word-frequency list (seconds): not the per-example deadline's.
    clean_text("Warm up the cleaner.", rules)
    return rules


@FUZZ
@given(texts)
def test_fix_unicode_removes_nul_and_cr(text):
    fixed = fix_unicode(text)
    assert "\x00" not in fixed and "\r" not in fixed


@FUZZ
@given(texts)
def test_normalize_lines_is_idempotent(text):
    once = normalize_lines(text)
    assert normalize_lines(once) == once


@FUZZ
@given(texts, st.one_of(st.none(), texts))
def test_split_title_never_raises_and_keeps_a_title(title, site_name):
    main, section = split_title(title, site_name)
    assert main.strip() or not title.strip()
    assert section is None or section.strip()


@FUZZ
@given(dates)
def test_parse_published_gives_none_or_a_plausible_utc_time(value):
    parsed = parse_published(value)
    assert parsed is None or (parsed.at.tzinfo == UTC and 1900 <= parsed.at.year <= 2200)


@FUZZ
@given(st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(2199, 12, 30), timezones=st.just(UTC)))
def test_parse_published_reads_back_an_iso_timestamp(moment):
    moment = moment.replace(microsecond=0)
    parsed = parse_published(moment.isoformat())
    assert parsed is not None and parsed.at == moment and parsed.offset_min == 0


@FUZZ
@given(texts)
def test_clean_text_never_raises(rules, text):
    once = clean_text(text, rules)
    assert "\x00" not in once.text and "\r" not in once.text


@FUZZ
@given(texts)
def test_content_hash_ignores_spacing_and_ascii_case(text):
    assert content_hash(text) == content_hash(normalize_lines(text.replace("\n", "  \n ")))
    assert content_hash(text) == content_hash(text.encode().upper().decode())
    # A word never spans a space, and every word counted holds at least one token.
    assert word_count(text) == sum(word_count(chunk) for chunk in text.split())
    assert word_count(text) <= len(words(text))


@FUZZ
@given(texts, st.one_of(st.none(), texts))
def test_normalize_article_is_idempotent(text, title):
    article = Article(article_id="a", source_kind="text", source_ref="x", text=text, title=title)
    once = normalize_article(article)
    assert normalize_article(once) == once
    assert once.title == tidy(title)
