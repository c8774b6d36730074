"""Tidy page and feed metadata: author names that are names, label lists that are lists.

Bylines in page metadata carry what the page printed around the name: the day and month of
the story ("Malcolm Owen Monday", "November"), the role ("STEVE PEOPLES; AP National
Political Writer", "Paul Takahashi; Staff writer"), the word "staff", "Published", a comment
form's "says". Keywords arrive as one comma-joined string. Both are used by extraction, where
page and feed metadata enter the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Weekdays and months in the languages of the larger news sites. Months that are also common
# given names or surnames (May, June, April, August, Julia...) are left out: "Theresa May".
_CALENDAR = _word_set(
    """
    monday tuesday wednesday thursday friday saturday sunday
    montag dienstag mittwoch donnerstag freitag samstag sonntag sonnabend
    lundi mardi mercredi jeudi vendredi samedi dimanche
    lunes martes miércoles miercoles jueves viernes sábado sabado domingo
    lunedì martedì mercoledì giovedì venerdì sabato
    january february march september october november december
    januar februar märz oktober dezember
    janvier février fevrier septembre octobre novembre décembre decembre
    enero febrero septiembre octubre noviembre diciembre
    gennaio febbraio settembre ottobre dicembre
    """
)
# Job titles and placeholders printed next to (or instead of) a byline.
_ROLES = _word_set(
    """
    staff writer writers reporter reporters correspondent correspondents editor editors
    editor-at-large contributor contributors columnist columnists journalist photographer
    national political security sports senior chief report reports team desk newsdesk editorial
    redakteur redakteurin korrespondent korrespondentin journaliste periodista
    """
)
# Words of the byline around the name ("Published", a comment form's "says").
_BYLINE_WORDS = _word_set(
    "published posted updated says wrote publié publiée publicado veröffentlicht"
)
# Whole entries that are no name at all.
_PLACEHOLDERS = frozenset({"unknown", "no author", "name", "author", "admin", "follow", "datum"})
# Words that introduce a byline ("Analysis by", "Von", "Par", "Текст").
_LEAD = re.compile(
    r"^(?:(?:analysis|article|text|story|words|photos?)\s+by|by|von|par|por|door|текст|авторы?)"
    r"\s*:?\s+",
    re.I,
)
# " is a reporter ...", " is the editor ...": a biography, not part of the name.
_BIO = re.compile(r"\s+(?:is|was|ist)\s+(?:a|an|the|ein|eine)\b.*$", re.I)
_DATE_TOKEN = re.compile(r"^\d{1,4}(?:[./:-]\d{1,4})*(?:st|nd|rd|th)?[.,]?$", re.I)


# Little words left between a name and a trailing date ("... am 12.03.2024", "publié le").
_CONNECTORS = frozenset({"and", "&", "-", "–", "—", "|", "at", "on", "am", "le", "el"})


def _noise(token: str, trailing: bool) -> bool:
    word = token.strip(".,:;|()[]").casefold()
    return (
        not word
        or word in _CALENDAR
        or word in _ROLES
        or word in _BYLINE_WORDS
        or bool(_DATE_TOKEN.match(word))
        or (trailing and word in _CONNECTORS)
    )


def clean_author(value: str) -> str | None:
    """One author entry as a name: leading "By"-words, trailing weekdays, months, dates,
    roles and biographies removed; None when nothing but those is left (or a placeholder).

    >>> clean_author("Malcolm Owen Monday")
    'Malcolm Owen'
    >>> clean_author("JERUSALEM POST STAFF NOVEMBER")
    'JERUSALEM POST'
    >>> clean_author("November") is None
    True
    """
    name = re.sub(r"\s+", " ", value).strip(" ,;:|-–—")
    name = _BIO.sub("", _LEAD.sub("", name))
    tokens = name.split()
    stripped: list[str] = []
    while tokens and _noise(tokens[-1], trailing=True):
        stripped.append(tokens.pop())
    while tokens and _noise(tokens[0], trailing=False):
        stripped.append(tokens.pop(0))
    name = " ".join(tokens).strip(" ,;:|-–—")
    if not name or name.casefold() in _PLACEHOLDERS or not any(c.isalpha() for c in name):
        return None
    # a role line ("Court Reporter", "AP Sports Writer") leaves one word that is no name; the
    # price is a surname that is a role word ("Jane Reporter"), far rarer in bylines
    role = any(t.strip(".,:;|()").casefold() in _ROLES for t in stripped)
    if role and len(tokens) == 1:
        return None
    return name


def author_names(values: Iterable[str]) -> tuple[str, ...]:
    """Clean author entries, empty ones dropped and repeats (case-insensitive) removed."""
    names: dict[str, str] = {}
    for value in values:
        name = clean_author(value)
        if name:
            names.setdefault(name.casefold(), name)
    return tuple(names.values())


def split_labels(value: Any) -> tuple[str, ...]:
    """Keywords, tags or categories as a list: a string or a list of strings, each split on
    commas and semicolons, trimmed, repeats (case-insensitive) removed, order kept."""
    if not value:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    labels: dict[str, str] = {}
    for item in items:
        for part in re.split(r"[,;]", str(item)):
            label = re.sub(r"\s+", " ", part).strip()
            if label:
                labels.setdefault(label.casefold(), label)
    return tuple(labels.values())


def merge_labels(*groups: Iterable[str]) -> tuple[str, ...]:
    """The labels of every group, first group first, repeats (case-insensitive) removed."""
    merged: dict[str, str] = {}
    for group in groups:
        for label in group:
            merged.setdefault(label.casefold(), label)
    return tuple(merged.values())
