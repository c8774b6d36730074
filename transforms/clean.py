"""Cleaning: extracted text -> article text, with boilerplate moved out or dropped.

The rules come from YAML rule packs (``news_ingest.transforms.rulepack``): a default pack for every source
and per-source packs chosen by host or by publisher/distributor. Besides the rules, cleaning
repairs the text (mojibake and NFC with ftfy, words broken across lines, hard-wrapped
paragraphs, whitespace), drops blocks repeated back to back within the document and a title
repeated at the top of the body, and moves what it learns into fields (date, dateline, publisher,
distributor, credits, title, section). Every rule that fires is recorded in ``rules_fired``.

Pure functions and the ``Cleaner`` (compiled rules) come first; the Beam wrapper is at the end.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import apache_beam as beam
import ftfy
from apache_beam.metrics import Metrics
from news_ingest.transforms.dates import Published, article_fields, parse_published
from news_ingest.transforms.rulepack import LIST_FIELDS, CompiledRule, RulePack, compile_pack
from news_ingest.transforms.schema import Article, DeadLetter
from news_ingest.transforms.stage import ApplyStage, rejection
from news_ingest.transforms.text import joins_without_space, word_count, words

STAGE = "clean"

# Names of the built-in steps, as they appear in ``rules_fired`` and in the counters.
RULE_MOJIBAKE = "repair_unicode"
RULE_BROKEN_WORD = "repair_broken_word"
RULE_HYPHENATED = "repair_hyphenated_word"
RULE_UNWRAP = "repair_hard_wrap"
RULE_REPEATED_PARAGRAPH = "repeated_paragraph"
RULE_REPEATED_TITLE = "repeated_title"
RULE_TITLE_FROM_BODY = "title_from_body"

DEFAULT_MIN_REPEAT_WORDS = 3
# Glue two line pieces into one word only when the joined word is this much more frequent
# (in Zipf units, i.e. log10 per billion words) than the rarer piece read as a word.
GLUE_MARGIN = 1.0
MIN_WORD_ZIPF = 3.0
_MAX_ROUNDS = 200
_MAX_PASSES = 4

# Full-width punctuation ("，", "：", "！", "（") and half-width katakana are how CJK text is
# written: ftfy's width fix would turn them into ASCII and full-width letters, so it is off
# (its NFC normalization is kept; NFKC would do the same as the width fix).
_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, fix_character_width=False, explain=False)
_TERMINAL = '.!?…:;"”’»)]。！？；：」』）】؟۔।'
_LEFT_WORD = re.compile(r"([^\W\d_]+)$")
_RIGHT_WORD = re.compile(r"^([^\W\d_]+)")
_SPACES = re.compile(r"[^\S\n]+")
_TITLE_SEP = re.compile(r"\s+\|\s+")

ZipfFn = Callable[[str], float]


def english_zipf(word: str) -> float:
    """Zipf frequency of ``word`` in English (wordfreq's large list)."""
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))


@dataclasses.dataclass(frozen=True)
class Cleaned:
    """Cleaned text and what cleaning learned on the way."""

    text: str
    rules_fired: tuple[str, ...] = ()
    published: Published | None = None
    dateline: str | None = None
    publisher: str | None = None
    distributor: str | None = None
    credits: tuple[str, ...] = ()
    title: str | None = None
    section: str | None = None


# --- small pure helpers ---------------------------------------------------------------------


# A line of printable ASCII (tabs allowed; no "&", "\r" or other control character) is a
# fixed point of every ftfy fix configured above: no entity to unescape, nothing a single-byte
# decoding could have garbled, no C1 control, ligature, surrogate, terminal escape, line
# separator or control character, and NFC leaves ASCII alone.
_FIXED_POINT_LINE = re.compile(r"[\t\x20-\x25\x27-\x7e]*\n?")


def fix_unicode(text: str) -> str:
    """Mojibake repair and NFC (ftfy; curly quotes and character widths are kept), unified line
    ends, no NUL.

    Exactly ``ftfy.fix_text(text, config)``, which fixes a text line by line: lines that are
    fixed points of ftfy's fixes (``_FIXED_POINT_LINE``) are kept as they are instead of being
    handed to ftfy one by one, which is most of the lines of an English article and half the
    time cleaning took. ftfy's one state across lines is kept too: once a line holds "<", HTML
    entities are left alone in the lines after it.
    """
    text = text.replace("\x00", "")
    config = _FTFY
    out: list[str] = []
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos) + 1 or len(text)
        end = min(end, pos + config.max_decode_length)
        segment = text[pos:end]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if _FIXED_POINT_LINE.fullmatch(segment):
            out.append(segment)
        else:
            out.append(ftfy.fix_and_explain(segment, config).text)
        pos = end
    return "".join(out)


def normalize_lines(text: str) -> str:
    """Each line trimmed with inner runs of spaces collapsed; runs of blank lines become one."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


# Sentence ends (after NFKC, which maps "！" and "？" to ASCII): Latin, CJK, Arabic, Devanagari.
_SENTENCE_ENDS = re.compile(r"[.!?。؟।]+")


def paragraph_key(paragraph: str) -> str:
    """Comparison key of a paragraph: its words, casefolded (punctuation and spacing ignored)."""
    return " ".join(words(unicodedata.normalize("NFKC", paragraph)))


def repeat_key(paragraph: str) -> str:
    """Comparison key for repeated blocks: casefolded words and where the sentences end.

    Unlike ``paragraph_key`` the sentence breaks count (which terminator does not: "here." and
    "here!" match): two paragraphs with the same words broken into different sentences are
    different text, and dropping one would lose sentences. Empty for a paragraph without words.
    """
    if not word_count(paragraph):
        return ""
    sentences = _SENTENCE_ENDS.split(unicodedata.normalize("NFKC", paragraph))
    tokens: list[str] = []
    for i, sentence in enumerate(sentences):
        tokens += words(sentence)
        if i < len(sentences) - 1:
            tokens.append(".")
    return " ".join(tokens)


def drop_repeated_paragraphs(
    paragraphs: Sequence[str], min_words: int = DEFAULT_MIN_REPEAT_WORDS
) -> tuple[list[str], int]:
    """Drop blocks repeated back to back within a document, keeping the first copy.

    A run of paragraphs is dropped when it equals the run just before it (once earlier copies
    are dropped): seed 004's five-paragraph block, three times over with a credit line between
    the copies that the rules have already moved out, reduces to one copy; a paragraph doubled
    in place ("A", "A") loses its second copy. Copies apart from each other are kept: an
    interview asks each guest the same question, a meal plan repeats a dish under another
    heading, a spec list repeats features under another product. A run counts only when one of
    its paragraphs has ``min_words`` words ("Yes." / "Yes." stays), counted by
    ``news_ingest.transforms.text.word_count`` (characters in Chinese, Japanese, Thai ...).

    Args:
        paragraphs: The paragraphs of one document, in order.
        min_words: Fewest words a paragraph of a dropped run must have (at least one of them).

    Returns:
        The kept paragraphs in order, and how many were dropped.
    """
    keys = [repeat_key(p) for p in paragraphs]
    counts = [word_count(p) for p in paragraphs]
    kept: list[str] = []
    kept_keys: list[str] = []
    dropped = 0
    i = 0
    while i < len(paragraphs):
        size = 0
        if keys[i]:
            # Longest run starting here that equals the run that ends the kept text.
            for length in range(min(len(kept_keys), len(keys) - i), 0, -1):
                if kept_keys[-length] != keys[i] or keys[i : i + length] != kept_keys[-length:]:
                    continue
                if max(counts[i : i + length]) >= min_words:
                    size = length
                    break
        if size:
            dropped += size
            i += size
            continue
        kept.append(paragraphs[i])
        kept_keys.append(keys[i])
        i += 1
    return kept, dropped


def _same_site(part: str, site_name: str) -> bool:
    a, b = paragraph_key(part), paragraph_key(site_name)
    # A part may be the site name or a piece of it ("Inexhibit" of "Inexhibit magazine"); a
    # part that merely contains it is a title ("The Guardian view on Hong Kong").
    return bool(a) and (a == b or (len(a) >= 4 and f" {a} " in f" {b} "))


def split_title(title: str, site_name: str | None = None) -> tuple[str, str | None]:
    """Split a page title into the title and a section.

    ``"Title | International"`` and ``"Opinion | Title"`` give a section; the site name is
    dropped wherever it stands (``"Title - SpaceNews.com"``, ``"Title | Section | Site"``).
    The title is the longest part; a section is another part of at most four words.
    """
    text = title.strip()
    if site_name:
        # Only a part that names the site is cut at "-", ":" and the like: a dash is common
        # inside titles, a site name is not.
        pieces = re.split(r"\s+[-–—|:·]\s+", text)
        while len(pieces) > 1 and _same_site(pieces[-1], site_name):
            text = text[: text.rindex(pieces.pop())].rstrip(" -–—|:·")
        while len(pieces) > 1 and _same_site(pieces[0], site_name):
            text = text[len(pieces.pop(0)) :].lstrip(" -–—|:·")
    parts = [p.strip() for p in _TITLE_SEP.split(text) if p.strip()]
    if site_name:
        parts = [p for p in parts if not _same_site(p, site_name)] or parts[:1]
    if not parts:
        return title.strip(), None
    main = max(parts, key=word_count)
    others = [p for p in parts if p is not main]
    section = others[0] if others and word_count(others[0]) <= 4 else None
    return main, section


def _clean_value(value: str) -> str:
    value = _SPACES.sub(" ", value.replace("\n", " ")).strip()
    return value.strip(" ,;:—–-\"'“”‘’").strip()


def _looks_like_title(line: str, repeated: bool) -> bool:
    if not 2 <= word_count(line) <= 30 or len(line) > 250:
        return False
    if not (line[0].isupper() or line[0].isdigit() or line[0] in "\"“‘'"):
        return False
    if not any(ch.islower() for ch in line):
        return False
    # A repeated line may be a question or an exclamation; a lone one must not end a sentence.
    endings = ".:;," if repeated else ".:;,!?"
    return line[-1] not in endings


# --- repair: broken words and hard-wrapped paragraphs ---------------------------------------


def _piece_zipf(piece: str, zipf: ZipfFn) -> float:
    # A lone letter is a word only for "a" and "I"; wordfreq rates letters high as symbols.
    if len(piece) == 1 and piece.lower() not in ("a", "i"):
        return 0.0
    return zipf(piece)


def join_decision(left: str, right: str, zipf: ZipfFn) -> str:
    """How to join a line ending in ``left`` to the next line starting with ``right``.

    Returns ``"glue"`` (one word broken across lines: "wit" + "h" -> "with"), ``"dehyphen"``
    ("build-" + "ing" -> "building"), ``"hyphen"`` ("well-" + "known" -> "well-known") or
    ``"space"``. Gluing needs the joined word to be clearly more frequent than the rarer piece:
    "in"/"to" stays "in to", "a"/"round" stays "a round".
    """
    lw = _LEFT_WORD.search(left.rstrip("-"))
    rw = _RIGHT_WORD.search(right)
    if lw is None or rw is None:
        return "hyphen" if left.endswith("-") and not left.endswith("--") else "space"
    a, b = lw.group(1), rw.group(1)
    joined = zipf(a + b)
    if left.endswith("-"):
        if left.endswith("--"):
            return "space"
        # "build-" + "ing": "building" is far more common than "build-ing"; "well-" + "known":
        # "well-known" is more common than "wellknown". wordfreq rates the hyphenated form as
        # the combination of its pieces.
        return "dehyphen" if joined > 0 and joined >= zipf(f"{a}-{b}") else "hyphen"
    if not left[-1].isalpha() or not right[0].isalpha():
        return "space"
    rarer = min(_piece_zipf(a, zipf), _piece_zipf(b, zipf))
    return "glue" if joined >= MIN_WORD_ZIPF and joined - rarer >= GLUE_MARGIN else "space"


def _is_continuation(prev: str, nxt: str) -> bool:
    return bool(prev) and prev[-1] not in _TERMINAL and (nxt[:1].islower() or prev.endswith("-"))


def _is_hard_wrapped(lines: Sequence[str]) -> bool:
    # Hard-wrapped prose: several lines of about the same width, most of them ending
    # mid-sentence. One-paragraph-per-line text has lines of very different, long widths.
    if len(lines) < 3:
        return False
    width = max(len(line) for line in lines)
    body = lines[:-1]
    if width > 100:
        return False
    full = sum(1 for line in body if len(line) >= 0.6 * width)
    open_ended = sum(1 for line in body if line[-1] not in _TERMINAL)
    return full >= 0.7 * len(body) and open_ended >= 0.5 * len(body)


def unwrap(text: str, zipf: ZipfFn) -> tuple[list[str], list[str]]:
    """Paragraphs of ``text`` with line-broken words and hard-wrapped lines joined.

    Blank lines always separate paragraphs. Inside a block, a line that ends mid-sentence and is
    followed by a lowercase continuation is joined to it (gluing a broken word when
    ``join_decision`` says so); a hard-wrapped block is joined whole; any other line break
    starts a new paragraph.

    Returns:
        The paragraphs, and the names of the repairs made.
    """
    fired: list[str] = []
    paragraphs: list[str] = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        wrapped = _is_hard_wrapped(lines)
        if wrapped:
            fired.append(RULE_UNWRAP)
        current = lines[0]
        for line in lines[1:]:
            if not (wrapped or _is_continuation(current, line)):
                paragraphs.append(current)
                current = line
                continue
            how = join_decision(current, line, zipf)
            if how == "glue":
                fired.append(RULE_BROKEN_WORD)
                current = current + line
            elif how == "dehyphen":
                fired.append(RULE_HYPHENATED)
                current = current[:-1] + line
            elif how == "hyphen" or joins_without_space(current, line):
                current = current + line
            else:
                current = current + " " + line
        paragraphs.append(current)
    return paragraphs, fired


# --- the rule engine ------------------------------------------------------------------------


class _State:
    """What one cleaning run has learned: fired rules (in order) and field values."""

    def __init__(self) -> None:
        self.fired: dict[str, None] = {}
        self.values: dict[str, list[str]] = {}

    def fire(self, name: str) -> None:
        self.fired.setdefault(name, None)

    def store(self, field: str, value: str | None) -> None:
        if value is None:
            return
        value = _clean_value(value)
        if value:
            self.values.setdefault(field, []).append(value)

    def first(self, field: str) -> str | None:
        values = self.values.get(field)
        return values[0] if values else None


class Cleaner:
    """Compiled rule packs and the cleaning procedure (build once per worker, in setup)."""

    def __init__(
        self,
        packs: Sequence[RulePack],
        zipf: ZipfFn = english_zipf,
        min_repeat_words: int = DEFAULT_MIN_REPEAT_WORDS,
    ):
        rules: list[CompiledRule] = []
        aliases: dict[str, str] = {}
        for pack in packs:
            rules.extend(compile_pack(pack))
            aliases.update(dict(pack.aliases))
        self.names = tuple(p.name for p in packs)
        self.aliases = aliases
        self.zipf = zipf
        self.min_repeat_words = min_repeat_words
        self._by_scope: dict[str, list[CompiledRule]] = {
            s: [r for r in rules if r.rule.scope == s]
            for s in ("line", "leading", "trailing", "anywhere")
        }

    def _apply(self, rule: CompiledRule, match: re.Match[str], state: _State) -> None:
        state.fire(rule.rule.name)
        for group, field in rule.targets:
            state.store(field, match.group(group))

    def _lines(self, text: str, state: _State) -> str:
        rules = self._by_scope["line"]
        if not rules:
            return text
        kept: list[str] = []
        for line in text.split("\n"):
            stripped = line.strip()
            for rule in rules if stripped else ():
                match = rule.regex.fullmatch(stripped)
                if match:
                    self._apply(rule, match, state)
                    if rule.rule.action != "extract":
                        break
            else:
                kept.append(line)
        return "\n".join(kept)

    def _leading(self, text: str, state: _State) -> str:
        for rule in self._by_scope["leading"]:
            match = rule.regex.match(text)
            if match and match.group(0).strip():
                self._apply(rule, match, state)
                if rule.rule.action != "extract":
                    return text[match.end() :].lstrip()
        return text

    def _trailing(self, text: str, state: _State) -> str:
        for rule in self._by_scope["trailing"]:
            match = rule.regex.search(text)
            if match and match.group(0).strip():
                self._apply(rule, match, state)
                if rule.rule.action != "extract":
                    return text[: match.start()].rstrip()
        return text

    def _anywhere(self, text: str, state: _State) -> str:
        for rule in self._by_scope["anywhere"]:

            def replace(match: re.Match[str], rule: CompiledRule = rule) -> str:
                self._apply(rule, match, state)
                return match.group(0) if rule.rule.action == "extract" else ""

            text = rule.regex.sub(replace, text)
        return text

    def _title(self, text: str, state: _State, known: str | None, site: str | None) -> str:
        first, _, rest = text.partition("\n")
        first = first.strip()
        if not first:
            return text
        rest_lines = [line for line in rest.split("\n") if line.strip()]
        title = state.first("title") or known
        if title:
            if paragraph_key(split_title(first, site)[0]) == paragraph_key(
                split_title(title, site)[0]
            ):
                state.fire(RULE_REPEATED_TITLE)
                return rest.lstrip()
            return text
        repeated = bool(rest_lines) and rest_lines[0].strip() == first
        lone = rest.startswith("\n") and bool(rest_lines)
        if (repeated or lone) and _looks_like_title(first, repeated):
            new_title, section = split_title(first, site)
            state.fire(RULE_TITLE_FROM_BODY)
            state.store("title", new_title)
            state.store("section", section)
            return rest.lstrip()
        return text

    def _rules_round(self, text: str, state: _State, known: str | None, site: str | None) -> str:
        # One rule application per round, in priority order; the caller repeats to a fixed point
        # so that, e.g., a caption line exposed by removing a header is seen by the line rules.
        # Leading and trailing blocks go first: a header line must be read as a header before a
        # line rule could take the whole line (the seed header carries a caption after the date).
        steps: tuple[Callable[[str], str], ...] = (
            lambda t: self._leading(t, state),
            lambda t: self._trailing(t, state),
            lambda t: self._lines(t, state),
            lambda t: self._title(t, state, known, site),
            lambda t: self._anywhere(t, state),
        )
        for step in steps:
            new = step(text)
            if new != text:
                return normalize_lines(new)
        return text

    def _pass(self, text: str, state: _State, known: str | None, site: str | None) -> str:
        # ftfy judges mojibake in context, so text that cleaning changed is fixed again.
        fixed = fix_unicode(text)
        if fixed != text.replace("\r\n", "\n").replace("\r", "\n"):
            state.fire(RULE_MOJIBAKE)
        text = normalize_lines(fixed)
        for _ in range(_MAX_ROUNDS):
            new = self._rules_round(text, state, known, site)
            if new == text:
                break
            text = new
        paragraphs, repairs = unwrap(text, self.zipf)
        for name in repairs:
            state.fire(name)
        paragraphs, dropped = drop_repeated_paragraphs(paragraphs, self.min_repeat_words)
        if dropped:
            state.fire(RULE_REPEATED_PARAGRAPH)
        return "\n\n".join(paragraphs)

    def clean(self, text: str, title: str | None = None, site_name: str | None = None) -> Cleaned:
        """Clean one text.

        Args:
            text: The extracted text.
            title: The title already known (from page metadata), if any: a copy of it at the
                top of the body is dropped.
            site_name: The site name, if known: dropped from a ``"Title | Site"`` title.

        Returns:
            The cleaned text, the rules that fired and the field values found.
        """
        state = _State()
        current = text
        # Repeat until nothing changes: the output of cleaning is its own fixed point.
        for _ in range(_MAX_PASSES):
            new = self._pass(current, state, title, site_name)
            if new == current:
                break
            current = new
        return self._result(current, state)

    def _canonical(self, name: str | None) -> str | None:
        return None if name is None else self.aliases.get(name.casefold(), name)

    def _result(self, text: str, state: _State) -> Cleaned:
        published = None
        for value in state.values.get("published_at", []):
            published = parse_published(value)  # a date header has day precision
            if published is not None:
                break
        credits: dict[str, str] = {}
        for field in LIST_FIELDS:
            for value in state.values.get(field, []):
                credits.setdefault(value.casefold(), value)
        return Cleaned(
            text=text,
            rules_fired=tuple(state.fired),
            published=published,
            dateline=state.first("dateline"),
            publisher=self._canonical(state.first("publisher")),
            distributor=self._canonical(state.first("distributor")),
            credits=tuple(credits.values()),
            title=state.first("title"),
            section=state.first("section"),
        )


class RuleSet:
    """The default pack plus the per-source packs, compiled; picks the packs for an article."""

    def __init__(
        self,
        default: RulePack,
        sources: Sequence[RulePack] = (),
        zipf: ZipfFn = english_zipf,
        min_repeat_words: int = DEFAULT_MIN_REPEAT_WORDS,
    ):
        self.default = default
        self.sources = tuple(sources)
        self.zipf = zipf
        self.min_repeat_words = min_repeat_words
        # Per-instance (per-worker) cache of compiled pack combinations: results never depend
        # on it, it only avoids recompiling the same combination for every article.
        self._cleaners: dict[tuple[str, ...], Cleaner] = {}
        self.cleaner_for(())

    def cleaner_for(self, selected: tuple[str, ...]) -> Cleaner:
        if selected not in self._cleaners:
            packs = [self.default] + [p for p in self.sources if p.name in selected]
            self._cleaners[selected] = Cleaner(packs, self.zipf, self.min_repeat_words)
        return self._cleaners[selected]

    def select(self, url: str | None, names: Iterable[str | None]) -> tuple[str, ...]:
        """Names of the source packs for an article from ``url`` attributed to ``names``."""
        host = urlsplit(url).hostname if url else None
        names = tuple(names)
        return tuple(p.name for p in self.sources if p.selects(host, names))


def clean_text(text: str, rules: RuleSet, title: str | None = None) -> Cleaned:
    """Clean one text with the default pack only (source packs need an article)."""
    return rules.cleaner_for(()).clean(text, title=title)


def _merge_credits(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for value in old + new:
        merged.setdefault(value.casefold(), value)
    return tuple(merged.values())


def clean_article(article: Article, rules: RuleSet, min_words: int = 1) -> Article | DeadLetter:
    """Clean an article and fill the fields cleaning found; reject it when too little text is
    left. Fields already set (by extraction from page metadata) are kept.

    The source packs are chosen by URL host and by the publisher/distributor known before
    cleaning; when cleaning itself finds an attribution that selects more packs, the article is
    cleaned again from its original text with those packs added.
    """
    known = (article.publisher, article.distributor, article.site_name)
    selected = rules.select(article.url, known)
    title = article.title
    cleaned = rules.cleaner_for(selected).clean(article.text, title, article.site_name)
    more = rules.select(article.url, known + (cleaned.publisher, cleaned.distributor))
    if set(more) - set(selected):
        cleaned = rules.cleaner_for(more).clean(article.text, title, article.site_name)
    if word_count(cleaned.text) < min_words:
        return rejection(article, STAGE, "empty_text", "no article text left after cleaning")
    section = article.section
    if title:
        title, title_section = split_title(title, article.site_name)
        section = section or title_section
    fired = dict.fromkeys(article.rules_fired + cleaned.rules_fired)
    published = {} if article.published_at else article_fields(cleaned.published)
    return dataclasses.replace(
        article,
        **published,
        text=cleaned.text,
        title=title or cleaned.title,
        section=section or cleaned.section,
        dateline=article.dateline or cleaned.dateline,
        publisher=article.publisher or cleaned.publisher,
        distributor=article.distributor or cleaned.distributor,
        credits=_merge_credits(article.credits, cleaned.credits),
        rules_fired=tuple(fired),
    )


# --- Beam -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CleanOptions:
    """How article text is cleaned: the ``clean:`` section of the config itself.

    Attributes:
        min_words: articles with fewer words left are rejected (reason ``empty_text``).
        rules: the default rule pack (a YAML file), applied to every article.
        packs: a directory of per-source rule packs ("" for none).
        min_repeat_words: blocks repeated back to back are dropped when they have at least
            this many words (shorter ones, such as "Photo", may repeat on purpose).
    """

    min_words: int = 1
    rules: str = "configs/boilerplate.yaml"
    packs: str = "configs/packs"
    min_repeat_words: int = DEFAULT_MIN_REPEAT_WORDS

    def __post_init__(self) -> None:
        if self.min_words < 1:
            raise ValueError(f"min_words must be at least 1, got {self.min_words}")
        if not self.rules:
            raise ValueError("rules: a default rule pack is required")
        if self.min_repeat_words < 1:
            raise ValueError(f"min_repeat_words must be at least 1, got {self.min_repeat_words}")


class _Clean(beam.DoFn):
    def __init__(
        self, default: RulePack, sources: tuple[RulePack, ...], options: CleanOptions
    ) -> None:
        self.default = default
        self.sources = sources
        self.min_words = options.min_words
        self.min_repeat_words = options.min_repeat_words
        self.rules: RuleSet | None = None

    def setup(self) -> None:
        self.rules = RuleSet(self.default, self.sources, min_repeat_words=self.min_repeat_words)
        english_zipf("the")  # load the word list now, not on the first article

    def process(self, article: Article) -> Iterable[Article | DeadLetter]:
        assert self.rules is not None
        result = clean_article(article, self.rules, self.min_words)
        if isinstance(result, Article):
            # Only this stage's rules: the extractor's, carried in rules_fired, counted there.
            for rule in set(result.rules_fired) - set(article.rules_fired):
                Metrics.counter(STAGE, f"rule:{rule}").inc()
        yield result


class Clean(beam.PTransform):
    """Article -> (cleaned Article, DeadLetter).

    Args:
        default: The default rule pack (applies to every article).
        sources: Per-source packs, chosen by URL host or publisher/distributor.
        options: the ``clean:`` section (the packs above are loaded from its paths).
    """

    def __init__(
        self,
        default: RulePack,
        sources: Sequence[RulePack] = (),
        options: CleanOptions | None = None,
    ):
        super().__init__()
        for pack in (default, *sources):
            compile_pack(pack)  # fail while the graph is built, naming the bad rule
        names = [p.name for p in sources]
        if len(set(names)) != len(names) or default.name in names:
            raise ValueError(f"rule pack names must be unique, got {[default.name, *names]}")
        self.default = default
        self.sources = tuple(sources)
        self.options = options or CleanOptions()

    def expand(self, articles):  # type: ignore[no-untyped-def]
        dofn = _Clean(self.default, self.sources, self.options)
        return articles | "CleanText" >> ApplyStage(STAGE, dofn)
