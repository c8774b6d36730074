"""The one tokenizer (transforms/text.py): per script, and on real pages of the dev sets.

The page tests run the real path of a run (read -> extract -> clean -> normalize, with the
packaged configuration) on pages of ../shared/data, named by path relative to the repository
root; they skip with a message when the dev sets are absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from news_ingest.pipeline import config
from news_ingest.pipeline.graph import extract_options, rule_packs
from news_ingest.transforms.clean import (
    RuleSet,
    clean_article,
    drop_repeated_paragraphs,
    english_zipf,
    fix_unicode,
    unwrap,
)
from news_ingest.transforms.dedup import MinHasher, NearParams, estimated_jaccard, shingle_set
from news_ingest.transforms.extract import extract, prune_blocks
from news_ingest.transforms.normalize import (
    content_hash,
    load_language_identifier,
    normalize_article,
)
from news_ingest.transforms.schema import Article, DeadLetter
from news_ingest.transforms.sources import read_path
from news_ingest.transforms.stories import story_terms
from news_ingest.transforms.text import (
    joins_without_space,
    lead,
    link_density,
    shingles,
    word_count,
    words,
)

ROOT = Path(__file__).resolve().parents[2]

# Real pages of the dev sets, by script.
ZH_XINHUA = "../shared/data/snippet-eval/html/archive.org.he.xinhuanet.com.25340717.html.gz"
ZH_BANYUETAN = (
    "../shared/data/snippet-eval/html/banyuetan.org.1000200033136171577956287380194268_1.html.gz"
)
ZH_TW = "../shared/data/date-eval/html/1546021647.html.gz"
JA_NHK = "../shared/data/snippet-eval/html/nhk.or.jp.k100.html.gz"
JA_PRESS = "../shared/data/date-eval/html/1649432346.html.gz"
KO_NAVER = "../shared/data/date-eval/html/n.news.naver.com-607.html.gz"
AR_PAGE = "../shared/data/date-eval/html/1550981615.html.gz"
FA_PAGE = "../shared/data/date-eval/html/1641304459.html.gz"
RU_PAGE = "../shared/data/date-eval/html/1719330438.html.gz"
HI_PAGE = "../shared/data/date-eval/html/1579139187.html.gz"
SNIPPETS = "../shared/data/snippet-eval/snippets.json"


def _path(relative: str) -> Path:
    path = ROOT / relative
    if not path.exists():
        pytest.skip(f"{relative} is absent: the dev sets are expected at ../shared/data")
    return path


# --- the tokenizer, script by script ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World! It's 2024.", ["hello", "world", "it", "s", "2024"]),
        ("Straße GROSS", ["strasse", "gross"]),  # case-folded, not just lower-cased
        ("Привет, мир!", ["привет", "мир"]),
        ("한국어 문장입니다.", ["한국어", "문장입니다"]),  # Hangul is written with spaces
        ("中文，标点。", ["中", "文", "标", "点"]),
        ("東京タワーへ行こう", ["東", "京", "タ", "ワ", "ー", "へ", "行", "こ", "う"]),
        ("ภาษาไทย", ["ภ", "า", "ษ", "า", "ไ", "ท", "ย"]),
        ("ພາສາລາວ", ["ພ", "າ", "ສ", "າ", "ລ", "າ", "ວ"]),
        ("ភាសាខ្មែរ", ["ភា", "សា", "ខ្", "មែ", "រ"]),  # a character keeps its marks
        ("မြန်မာ", ["မြ", "န်", "မာ"]),
        ("iPhone手机2024年", ["iphone", "手", "机", "2024", "年"]),
        ("—  …  ，", []),
    ],
)
def test_words_per_script(text, expected):
    assert words(text) == expected


@pytest.mark.parametrize(
    "word",
    ["हिन्दी", "মানুষ", "مَرْحَبًا", "שָׁלוֹם", "தமிழ்"],
)
def test_a_word_with_vowel_signs_is_one_token(word):
    # A plain \w+ splits these at every combining vowel sign or diacritic.
    assert re.findall(r"\w+", word) != [word]
    assert words(f"{word}, {word}.") == [word, word]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Don't count U.S. or 28-year-old twice — nor the dash.", 9),
        ("中华人民共和国，你好。", 9),
        ("2024年的新闻", 5),
        ("東京タワー", 5),
        ("ภาษาไทย ง่าย", 10),
        ("한국어 문장입니다.", 2),
        ("وأوضح الدكتور خالد مجاهد، المتحدث", 5),
        ("", 0),
    ],
)
def test_word_count_counts_characters_only_where_there_are_no_spaces(text, count):
    assert word_count(text) == count


# Characters where the two ways of counting could disagree: spaces str.split knows and
# regex's \s may not, marks, punctuation, dashes, letters with and without accents.
_TRICKY = list("ab1 -—.!'é\u0301\u00a0\u2028\u3000\x1c\x1f\t\n\u200b\u00ad\u0640")


@given(st.text(alphabet=st.sampled_from(_TRICKY), max_size=40))
@settings(max_examples=400, deadline=None)
def test_the_fast_word_count_is_the_pattern_count(text):
    """Texts without a spaceless script are counted by splitting: the same figure as the one
    pattern that counts every script."""
    from news_ingest.transforms import text as text_module

    assert word_count(text) == len(text_module._COUNTED.findall(text))


def test_a_spaceless_character_anywhere_takes_the_pattern():
    assert word_count("nothing but words " * 1000 + "中文") == 3000 + 2


def test_shingles_are_token_tuples_in_order():
    assert shingles("a b c a b", 2) == [("a", "b"), ("b", "c"), ("c", "a"), ("a", "b")]
    assert shingles("新闻报道", 3) == [("新", "闻", "报"), ("闻", "报", "道")]
    assert shingles("short", 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        shingles("a", 0)


def test_joins_without_space_only_between_spaceless_scripts():
    assert joins_without_space("中文", "新闻")
    assert joins_without_space("ภาษา", "ไทย")
    assert not joins_without_space("中文。", "新闻")
    assert not joins_without_space("English", "新闻")
    assert not joins_without_space("한국어", "문장")


def test_lead_ends_after_the_nth_token():
    assert lead("One two, three four.", 3) == "One two, three"
    assert lead("中文新闻 English", 2) == "中文"
    assert lead("few words", 10) == "few words"


def test_link_density_is_a_share_of_characters():
    # A Chinese paragraph is one long \w+ run: counted in words, one inline link made the
    # share 1/1 (and a link that splits the run: 2 links / 3 runs) and the block went.
    block = "河北农业大学果树专业九三级毕业生十五年如一日资助贫困学生，事迹感人"
    assert link_density(block, ["河北农业大学"]) == pytest.approx(6 / len(block))
    assert link_density("all linked", ["all linked"]) == 1.0
    assert link_density("  ", []) == 0.0


def test_prune_blocks_keeps_a_chinese_paragraph_with_inline_links():
    from lxml import etree

    # In \w+ words the first paragraph is two runs and its two links two words: 2/2 > 0.5.
    body = etree.fromstring(
        "<body><p>据<ref>新华社</ref>和<ref>人民日报</ref>报道，事迹感人至深。</p>"
        "<p><ref>更多新闻</ref> <ref>返回首页</ref></p></body>"
    )
    fired = prune_blocks(body, None, 0.5)
    assert fired == ["link_dense"]
    assert [p.text for p in body.iter("p")] == ["据新华社和人民日报报道，事迹感人至深。"]


def test_repeated_block_length_counts_characters_in_chinese():
    paragraph = "河北农大毕业生资助贫困学生。"
    kept, dropped = drop_repeated_paragraphs([paragraph, paragraph], min_words=3)
    assert (kept, dropped) == ([paragraph], 1)
    # "是的。" twice is a two-character reply, like "Yes." / "Yes.": it stays.
    assert drop_repeated_paragraphs(["是的。", "是的。"], min_words=3) == (["是的。", "是的。"], 0)


def test_repeated_block_keeps_the_same_characters_in_other_sentences():
    # "。" ends a sentence as "." does: the same words broken into other sentences stay.
    a, b = "他来了。我走了。你也走吧。", "他来了，我走了，你也走吧。"
    assert drop_repeated_paragraphs([a, b], min_words=3) == ([a, b], 0)


def test_hard_wrapped_chinese_is_joined_without_spaces():
    lines = [
        "河北农业大学果树专业九三级毕业生十五年如一",
        "日资助贫困学生事迹感人至深引起强烈反响如今",
        "向河北农大果树毕业生群体学习的热潮正在全省",
        "各地深入开展。",
    ]
    paragraphs, fired = unwrap("\n".join(lines), english_zipf)
    assert paragraphs == ["".join(lines)]
    assert fired == ["repair_hard_wrap"]


def test_chinese_paragraphs_ending_in_a_full_stop_are_not_a_hard_wrap():
    # trafilatura puts one paragraph on each line; "。" ends them as "." does.
    lines = [
        "六月三日上午，话剧全省各市巡演活动来到张家口。",
        "演出结束后，观众久久不愿离去，纷纷上台合影。",
        "如今，学习的热潮正在全省各地深入开展起来。",
    ]
    assert unwrap("\n".join(lines), english_zipf) == (lines, [])


def test_story_lead_counts_characters_in_chinese():
    text = "中" * 300 + " Angela Merkel met Emmanuel Macron."
    assert story_terms(None, text, lead_words=200) == frozenset()
    assert "merkel" in story_terms(None, text, lead_words=400)


def test_content_hash_ignores_spaces_between_chinese_characters():
    assert content_hash("新华社 报道，事迹感人。") == content_hash("新华社报道 事迹感人")
    assert content_hash("新华社报道") != content_hash("新华社报导")


# --- ftfy keeps the page's own characters -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "中文，标点：你好！（括号）「引用」。",
        "ｶﾀｶﾅは半角です",
        "全角のＡＢＣと１２３",
        "می‌خواهم",  # Persian zero-width non-joiner
        "क्‍ष",  # Devanagari zero-width joiner
    ],
)
def test_fix_unicode_keeps_width_and_joiners(text):
    assert fix_unicode(text) == text


def test_fix_unicode_still_repairs_mojibake():
    assert fix_unicode("cafÃ© â€” ok") == "café — ok"


# --- real pages through the real path ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_path():
    """read -> extract -> clean -> normalize, as a run with the packaged configuration does."""
    cfg = config.load()
    options = extract_options(cfg)
    rules = RuleSet(*rule_packs(cfg), min_repeat_words=cfg.clean.min_repeat_words)
    identifier = load_language_identifier()

    def run(relative: str) -> Article | DeadLetter:
        (raw,) = read_path(str(_path(relative)), cfg.read.max_bytes)
        assert not isinstance(raw, DeadLetter), raw
        result = extract(raw, options)
        if isinstance(result, Article):
            result = clean_article(result, rules, cfg.clean.min_words)
        if isinstance(result, Article):
            result = normalize_article(result, identifier)
        return result

    return run


def _snippets(key: str) -> dict[str, list[str]]:
    with open(_path(SNIPPETS), encoding="utf-8") as fh:
        return json.load(fh)[key]


def _contains(text: str, snippet: str) -> bool:
    return " ".join(snippet.split()) in " ".join(text.split())


def test_japanese_page_with_linked_words_is_an_article_with_its_snippets(run_path):
    # NHK's easy news links most words to a dictionary: counted in \w+ words, the links were
    # "longer" than their paragraphs and the whole article became a no_article dead letter.
    article = run_path(JA_NHK)
    assert isinstance(article, Article), article
    labels = _snippets("nhk.or.jp.k100")
    assert all(_contains(article.text, s) for s in labels["with"])
    assert not any(_contains(article.text, s) for s in labels["without"])
    assert article.language == "ja"


@pytest.mark.parametrize(
    ("relative", "key"),
    [
        (ZH_XINHUA, "archive.org.he.xinhuanet.com.25340717"),
        (ZH_BANYUETAN, "banyuetan.org.1000200033136171577956287380194268_1"),
    ],
)
def test_chinese_pages_keep_their_snippets(run_path, relative, key):
    article = run_path(relative)
    assert isinstance(article, Article), article
    labels = _snippets(key)
    assert all(_contains(article.text, s) for s in labels["with"])
    assert not any(_contains(article.text, s) for s in labels["without"])


@pytest.mark.parametrize("relative", [ZH_XINHUA, ZH_BANYUETAN, ZH_TW, JA_PRESS])
def test_full_width_punctuation_survives_cleaning(run_path, relative):
    article = run_path(relative)
    assert isinstance(article, Article), article
    assert "。" in article.text and "：" in article.text
    assert "，" in article.text or "、" in article.text
    # ftfy found nothing to repair on these pages; the width fix used to fire on every one.
    assert "repair_unicode" not in article.rules_fired


@pytest.mark.parametrize(
    ("relative", "language"), [(ZH_XINHUA, "zh"), (ZH_BANYUETAN, "zh"), (JA_PRESS, "ja")]
)
def test_word_count_and_language_of_chinese_and_japanese_pages(run_path, relative, language):
    article = run_path(relative)
    assert isinstance(article, Article), article
    hanzi = len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", article.text))
    # Characters, not the handful of space-separated runs split() found (8 on the Xinhua page).
    assert article.word_count >= hanzi > 300
    # Language identification needs three words, which a Chinese text never had.
    assert article.language == language


@pytest.mark.parametrize(
    ("relative", "language"),
    [(KO_NAVER, "ko"), (AR_PAGE, "ar"), (FA_PAGE, "fa"), (RU_PAGE, "ru"), (HI_PAGE, "hi")],
)
def test_pages_in_scripts_with_spaces_count_words_as_before(run_path, relative, language):
    article = run_path(relative)
    assert isinstance(article, Article), article
    assert article.language == language
    spaced = [w for w in article.text.split() if re.search(r"\w", w)]
    assert len(spaced) > 100
    # (up to a symbol or two such as "ⓒ" that \w does not take for a letter)
    assert abs(article.word_count - len(spaced)) <= 0.01 * len(spaced)
    # Every word is one token (up to punctuation inside words), not split at vowel signs.
    assert len(words(article.text)) <= 1.1 * article.word_count


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。！？])", text) if s.strip()]


def test_chinese_near_duplicates_by_shingles(run_path):
    xinhua, banyuetan = run_path(ZH_XINHUA), run_path(ZH_BANYUETAN)
    assert isinstance(xinhua, Article) and isinstance(banyuetan, Article)
    sentences = _sentences(xinhua.text)[:4]
    assert "上午" in sentences[1]
    brief = "".join(sentences)
    # The same brief with one sentence corrected ("in the morning" -> "in the afternoon").
    corrected = "".join([sentences[0], sentences[1].replace("上午", "下午"), *sentences[2:]])
    other = "".join(_sentences(banyuetan.text)[:4])

    def jaccard(a: str, b: str) -> float:
        x, y = shingle_set(a), shingle_set(b)
        return len(x & y) / len(x | y)

    threshold = NearParams().threshold
    # In \w+ runs a Chinese clause was one token, so one changed word changed a fifth of the
    # shingles of a short brief (Jaccard 0.62 < 0.8); in characters it changes a few.
    assert jaccard(brief, corrected) >= threshold
    assert jaccard(brief, other) < 0.1
    hasher = MinHasher(NearParams())
    (a, _), (b, _), (c, _) = (hasher.signature(t) for t in (brief, corrected, other))
    assert estimated_jaccard(a, b) >= threshold - 0.1
    assert estimated_jaccard(a, c) < 0.2
