"""Publication dates as the source gave them: the UTC instant, the source's UTC offset and
whether the source named a time of day at all.

A page that says ``2024-10-28T23:30:00-04:00`` was published on the 28th where it was
written and on the 29th in UTC; ``published_at`` keeps the instant and ``published_offset_min``
(-240) keeps the page's own day recoverable. A page that says only ``2024-10-28`` has day
precision: its instant is midnight UTC and it has no offset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
import re
import warnings
from typing import Any

UTC = dt.UTC

PRECISION_DAY = "day"
PRECISION_SECOND = "second"
PRECISIONS = (PRECISION_DAY, PRECISION_SECOND)

# Plausible publication years (a "date" outside is a product number or a typo).
MIN_YEAR = 1900
MAX_YEAR = 2200

# The largest UTC offset in use is +14:00; anything beyond a day is not an offset.
MAX_OFFSET_MIN = 24 * 60

_DATE_ONLY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DOTTED_DATE = re.compile(r"(?<!\d)\d{1,2}\.\s?\d{1,2}\.\s?\d{2,4}(?!\d)")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
# "+0200" or "+02" after a time, which fromisoformat in 3.11 reads only as "+02:00"
_OFFSET_TAIL = re.compile(r"\s*([+-])(\d{2}):?(\d{2})?$")


@dataclasses.dataclass(frozen=True)
class Published:
    """A publication time as the source gave it.

    Attributes:
        at: the instant, an aware datetime in UTC (midnight UTC for a date without a time;
            a time without a zone is taken to be UTC).
        offset_min: the source's UTC offset in minutes; None when it named no zone.
        precision: ``day`` when the source gave only a date, ``second`` otherwise.
    """

    at: dt.datetime
    offset_min: int | None = None
    precision: str = PRECISION_SECOND

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Published.at must be an aware datetime")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.offset_min is not None and abs(self.offset_min) > MAX_OFFSET_MIN:
            raise ValueError(f"offset_min out of range: {self.offset_min}")

    @property
    def local_date(self) -> dt.date:
        """The calendar day where the source was written (the UTC day without an offset)."""
        return (self.at + dt.timedelta(minutes=self.offset_min or 0)).date()


def from_datetime(value: dt.datetime) -> Published | None:
    """A datetime as given: an aware one keeps its offset, a naive one is UTC with no offset."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    offset = value.utcoffset()
    if value.tzinfo is None or offset is None:
        return Published(value.replace(tzinfo=UTC), None, PRECISION_SECOND)
    minutes = int(offset.total_seconds() // 60)
    if abs(minutes) > MAX_OFFSET_MIN:
        return None
    return Published(value.astimezone(UTC), minutes, PRECISION_SECOND)


def from_date(value: dt.date) -> Published | None:
    """A calendar day: midnight UTC, day precision, no offset."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    return Published(
        dt.datetime(value.year, value.month, value.day, tzinfo=UTC), None, PRECISION_DAY
    )


def _ymd(match: re.Match[str]) -> Published | None:
    try:
        return from_date(dt.date(int(match[1]), int(match[2]), int(match[3])))
    except ValueError:
        return None


def _iso(text: str) -> dt.datetime | None:
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    tail = _OFFSET_TAIL.search(text)
    if tail and len(text) > 10 and ":" in text[: -len(tail[0])]:
        text = f"{text[: tail.start()]}{tail[1]}{tail[2]}:{tail[3] or '00'}"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _free_form(text: str) -> Published | None:
    """Any other spelling dateutil understands ("October 18, 2019 10:15 EDT"); the time counts
    only when the text names one (parsed twice with different default times to tell)."""
    from dateutil import parser

    first = dt.datetime(2000, 1, 1, 0, 0, 0)
    second = dt.datetime(2001, 2, 2, 1, 1, 1)
    # "05.01.2022" is the 5th of January wherever dots separate the parts
    dayfirst = bool(_DOTTED_DATE.search(text))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown zone names: the time is kept without one
            a = parser.parse(text, default=first, dayfirst=dayfirst)
            b = parser.parse(text, default=second, dayfirst=dayfirst)
    # dateutil raises decimal.InvalidOperation (an ArithmeticError) on huge seconds fractions
    except (ValueError, ArithmeticError, TypeError):
        return None
    if a.date() != b.date():  # year, month or day missing: not a publication date
        return None
    if (a.hour, a.minute) != (b.hour, b.minute):
        return from_date(a.date())
    return from_datetime(a)


def parse_published(value: Any) -> Published | None:
    """A publication date from what a source gave: a datetime, a date, or a string in ISO 8601,
    RFC 2822 (feeds) or another spelling with a year, month and day. None when it is not one.
    """
    if isinstance(value, dt.datetime):
        return from_datetime(value)
    if isinstance(value, dt.date):
        return from_date(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 100:
        return None
    if (match := _DATE_ONLY.fullmatch(text)) or (match := _COMPACT_DATE.fullmatch(text)):
        return _ymd(match)
    if _DATE_ONLY.match(text):
        parsed = _iso(text)
        if parsed is not None:
            return from_datetime(parsed)
    try:
        rfc = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        rfc = None
    if rfc is not None:
        # RFC 2822's "-0000" means "no zone information"
        if text.rstrip().endswith("-0000"):
            rfc = rfc.replace(tzinfo=None)
        return from_datetime(rfc)
    return _free_form(text)


def prefer_precise(first: Published | None, other: Published | None) -> Published | None:
    """``first`` unless it is a bare day and ``other`` is a full timestamp of that same day
    (where the source was written), which then wins."""
    if first is None:
        return other
    if (
        other is not None
        and first.precision == PRECISION_DAY
        and other.precision == PRECISION_SECOND
        and other.local_date == first.local_date
    ):
        return other
    return first


# ---------------------------------------------------------------------------------------------
# Dates of a web page

# The page's own structured publication date, most specific first: schema.org microdata on
# the article, JSON-LD, then the Open Graph / article meta tags.
_ITEMPROP_PUBLISHED = "//*[translate(@itemprop, 'DATEPUBLISHED', 'datepublished')='datepublished']"
_META_PUBLISHED = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "parsely-pub-date",
    "pubdate",
    "publish-date",
    "publish_date",
    "dc.date.issued",
    "dcterms.issued",
    "citation_publication_date",
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _meta_contents(tree: Any) -> dict[str, list[str]]:
    """The ``content`` of every ``<meta>``, in document order, under its ``property`` and its
    ``name`` (ASCII case-folded, as the names above are matched): one pass over the page for
    all the names, where an XPath per name walked the whole tree ten times."""
    found: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        content = meta.get("content")
        if content is None:
            continue
        keys = {(meta.get(attr) or "").translate(_ASCII_LOWER) for attr in ("property", "name")}
        for key in keys - {""}:
            found.setdefault(key, []).append(content)
    return found


def _json_ld_published(tree: Any) -> list[str]:
    """Every ``datePublished`` of the page's JSON-LD, in document order."""
    found: list[str] = []
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            data = json.loads(script)
        except ValueError:
            continue
        queue = [data]
        while queue:
            item = queue.pop(0)
            if isinstance(item, list):
                queue.extend(item)
            elif isinstance(item, dict):
                value = item.get("datePublished")
                if isinstance(value, str) and value.strip():
                    found.append(value)
                queue.extend(v for v in item.values() if isinstance(v, (list, dict)))
    return found


def structured_published(tree: Any) -> Published | None:
    """The publication date the page states in its own metadata (microdata ``datePublished``,
    JSON-LD ``datePublished``, ``article:published_time`` and kin), with its offset."""
    values: list[str] = []
    for element in tree.xpath(_ITEMPROP_PUBLISHED):
        given = [element.get(a) or "" for a in ("datetime", "content")]
        values.extend(given if any(given) else [element.text_content()])
    values.extend(_json_ld_published(tree))
    metas = _meta_contents(tree)
    for name in _META_PUBLISHED:
        values.extend(metas.get(name, ()))
    for value in values:
        found = parse_published(value)
        if found is not None:
            return found
    return None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january jan januar janvier enero gennaio januari janeiro jänner",
            "february feb februar février fevrier febrero febbraio februari fevereiro",
            "march mar märz maerz mars marzo maart março",
            "april apr avril abril aprile",
            "may mai mayo maggio mei maio",
            "june jun juni juin junio giugno junho",
            "july jul juli juillet julio luglio julho",
            "august aug août aout agosto augustus",
            "september sep sept septembre septiembre settembre setembro",
            "october oct oktober octobre octubre ottobre okt outubro",
            "november nov novembre noviembre novembro",
            "december dec dezember décembre decembre diciembre dicembre dez dezembro",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "(?P<mname>" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + r")\.?"
# Dates as they are written after a "published" label: ISO and its kin, day-first with dots
# (the continental spelling), and day and month name in either order.
_LABEL_DATE = re.compile(
    r"(?:(?P<y1>\d{4})[-/.](?P<m1>\d{1,2})[-/.](?P<d1>\d{1,2})(?!\d)"
    r"|(?P<d2>\d{1,2})\.\s?(?P<m2>\d{1,2})\.\s?(?P<y2>\d{4}|\d{2})(?!\d)"
    r"|(?P<d3>\d{1,2})(?:\.|st|nd|rd|th)?\s+(?:de\s+)?"
    + _MONTH.replace("mname", "mn3")
    + r",?\s+(?:de\s+)?(?P<y3>\d{4})"
    r"|"
    + _MONTH.replace("mname", "mn4")
    + r"\s+(?P<d4>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{4}))",
    re.I,
)
# Labels that introduce the first publication (not an update) in the languages of the web's
# larger news sites; the date must follow at once.
_PUBLISHED_LABEL = re.compile(
    r"(?<!\w)(?:published|posted|written|first\s+published|veröffentlicht|erschienen|publiziert"
    r"|publié|publiée|mis\s+en\s+ligne|publicado|publicada|pubblicato|pubblicata|gepubliceerd"
    r"|opublikowano)(?:\s+(?:on|am|le|el|il|op|em|at|the))?\s*:?\s*",
    re.I,
)
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "head", "title"})


# A weekday may stand between the label and the date ("Published: Tuesday, 5 March 2024");
# abbreviations only with their dot or comma ("Di., 25.01.2022").
_WEEKDAY = re.compile(
    r"(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|montag|dienstag|mittwoch"
    r"|donnerstag|freitag|samstag|sonntag|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
    r"|lunes|martes|miércoles|jueves|viernes|sábado|domingo),?"
    r"|(?:mon|tue|wed|thu|fri|sat|sun|mo|di|mi|do|fr|sa|so)[.,]{1,2})\s+",
    re.I,
)


def parse_label_date(text: str) -> Published | None:
    """The date at the very start of ``text`` (what follows a "published" label, perhaps after
    a weekday), day precision; None when the text does not start with one."""
    weekday = _WEEKDAY.match(text)
    match = _LABEL_DATE.match(text, weekday.end() if weekday else 0)
    if match is None:
        return None
    groups = match.groupdict()
    try:
        if groups["y1"]:
            year, month, day = int(groups["y1"]), int(groups["m1"]), int(groups["d1"])
        elif groups["y2"]:
            year, month, day = int(groups["y2"]), int(groups["m2"]), int(groups["d2"])
            if year < 100:
                year += 2000
        elif groups["y3"]:
            year, day = int(groups["y3"]), int(groups["d3"])
            month = _MONTHS[groups["mn3"].lower()]
        else:
            year, day = int(groups["y4"]), int(groups["d4"])
            month = _MONTHS[groups["mn4"].lower()]
        return from_date(dt.date(year, month, day))
    except ValueError:
        return None


def _visible_text(tree: Any) -> str:
    parts: list[str] = []
    body = tree.find("body")
    for element in (body if body is not None else tree).iter():
        if not isinstance(element.tag, str) or element.tag in _INVISIBLE:
            continue
        if element.text:
            parts.append(element.text)
        for child in element:
            if child.tail:
                parts.append(child.tail)
    return re.sub(r"\s+", " ", " ".join(parts))


def labelled_published(tree: Any) -> Published | None:
    """The first date the page's visible text introduces as its publication ("Published on
    12 March 2024", "Veröffentlicht am 16.08.2019", "Publié le 3 mai 2021")."""
    text = _visible_text(tree)
    for match in _PUBLISHED_LABEL.finditer(text):
        found = parse_label_date(text[match.end() : match.end() + 40])
        if found is not None:
            return found
    return None


def htmldate_day(html: str, url: str | None) -> Published | None:
    """The day ``htmldate.find_date(html, original_date=True)`` finds (given the HTML text:
    on trafilatura's parsed tree it finds another day on some pages), or None."""
    import htmldate

    try:
        return parse_published(htmldate.find_date(html, original_date=True, url=url))
    except Exception:  # htmldate fails on pages it cannot parse: no evidence then
        return None


def choose_published(
    labelled: Published | None, structured: Published | None, day: Published | None
) -> Published | None:
    """The publication date from a page's evidence, in order of trust.

    Args:
        labelled: the date the visible text labels as the publication date.
        structured: the page's structured date (``structured_published``).
        day: the day htmldate found (``htmldate_day``).

    A labelled date comes first; then the structured date when it names its own zone (or no
    zone at all: a local time), or is a bare date; then htmldate's day. A timestamp in UTC
    that puts the page on another day than htmldate does is the instant in UTC, not
    necessarily the page's own day, so htmldate's day wins. Last, a full timestamp of the
    chosen day replaces a bare day.
    """
    chosen = labelled
    if chosen is None:
        if structured is not None and (day is None or structured.offset_min != 0):
            chosen = structured
        else:
            chosen = day
    return prefer_precise(chosen, structured)


def article_fields(found: Published | None) -> dict[str, Any]:
    """The ``published_*`` fields of an Article for a date (all None without one)."""
    if found is None:
        return {"published_at": None, "published_offset_min": None, "published_precision": None}
    return {
        "published_at": found.at,
        "published_offset_min": found.offset_min,
        "published_precision": found.precision,
    }


def from_fields(
    at: dt.datetime | None, offset_min: int | None, precision: str | None
) -> Published | None:
    """The date an Article's ``published_*`` fields hold. A timestamp set without a precision
    (by code that only knew the instant) counts as a full timestamp in its own zone."""
    if at is None:
        return None
    if precision is None:
        return from_datetime(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Published(at.astimezone(UTC), offset_min, precision)


def to_iso(found: Published) -> str:
    """The date as the source gave it, in ISO 8601: ``2024-10-28`` for a bare day, a local time
    with its offset (``2024-10-28T23:30:00-04:00``), or without one when the source named no
    zone. ``parse_published`` reads it back to the same value."""
    if found.precision == PRECISION_DAY:
        return found.at.date().isoformat()
    if found.offset_min is None:
        return found.at.replace(tzinfo=None).isoformat()
    zone = dt.timezone(dt.timedelta(minutes=found.offset_min))
    return found.at.astimezone(zone).isoformat()
