"""Detect a report's metadata (authority, inspection kind, dates, title) from its text."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from index.types import ReportMeta

# The 22 Welsh local authorities CIW inspects: short name -> official name.
AUTHORITIES: dict[str, str] = {
    "Blaenau Gwent": "Blaenau Gwent County Borough Council",
    "Bridgend": "Bridgend County Borough Council",
    "Caerphilly": "Caerphilly County Borough Council",
    "Cardiff": "Cardiff Council",
    "Carmarthenshire": "Carmarthenshire County Council",
    "Ceredigion": "Ceredigion County Council",
    "Conwy": "Conwy County Borough Council",
    "Denbighshire": "Denbighshire County Council",
    "Flintshire": "Flintshire County Council",
    "Gwynedd": "Gwynedd Council",
    "Anglesey": "Isle of Anglesey County Council",
    "Merthyr Tydfil": "Merthyr Tydfil County Borough Council",
    "Monmouthshire": "Monmouthshire County Council",
    "Neath Port Talbot": "Neath Port Talbot Council",
    "Newport": "Newport City Council",
    "Pembrokeshire": "Pembrokeshire County Council",
    "Powys": "Powys County Council",
    "Rhondda Cynon Taf": "Rhondda Cynon Taf County Borough Council",
    "Swansea": "Swansea Council",
    "Torfaen": "Torfaen County Borough Council",
    "Vale of Glamorgan": "Vale of Glamorgan Council",
    "Wrexham": "Wrexham County Borough Council",
}

# Other names people use for a council: its Welsh name (the reports are bilingual and so are
# their readers) and, for Cardiff, the capital. Regex fragments, matched case-insensitively.
ALIASES: dict[str, tuple[str, ...]] = {
    "Bridgend": ("Pen-y-bont ar Ogwr",),
    "Caerphilly": ("Caerffili",),
    "Cardiff": ("Caerdydd", r"(?:the\s+)?Welsh\s+capital", r"(?:the\s+)?capital\s+(?:city\s+)?of\s+Wales", r"the\s+capital(?=(?:'s|’s|\s+city)\b)(?:\s+city)?"),
    "Carmarthenshire": ("Sir Gaerfyrddin",),
    "Denbighshire": ("Sir Ddinbych",),
    "Flintshire": ("Sir y Fflint",),
    "Anglesey": ("Ynys M[oô]n", "Isle of Anglesey"),
    "Merthyr Tydfil": ("Merthyr Tudful",),
    "Monmouthshire": ("Sir Fynwy",),
    "Neath Port Talbot": ("Castell-nedd Port Talbot",),
    "Newport": ("Casnewydd",),
    "Pembrokeshire": ("Sir Benfro",),
    "Swansea": ("Abertawe",),
    "Torfaen": ("Tor-faen",),
    "Vale of Glamorgan": ("Bro Morgannwg",),
    "Wrexham": ("Wrecsam",),
}


def name_alternatives(short: str) -> list[str]:
    """Regex alternatives naming a council: its short name and its aliases, longest first.

    >>> import re; any(re.fullmatch(a, "Wrecsam") for a in name_alternatives("Wrexham"))
    True
    """
    return [re.escape(short), *ALIASES.get(short, ())]


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
MONTH_NAMES = tuple(_MONTHS.split("|"))
_D1 = r"(\d{1,2})(?:st|nd|rd|th)?"  # a day opening a range
_D = r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?"  # "the 23": a day after "to", "and", "-"
_TO = r"\s*(?:to|and|-|–|until)\s*"
# The ways reports write their inspection dates, most precise first. Each gives (start, end) as
# (day, month, year) triples, a day or a year None when the text leaves it out.
_DATE_FORMS: tuple[tuple[re.Pattern, object], ...] = (
    # "23rd November 2020 to 3rd December 2020" (a range across a new year too)
    (re.compile(rf"\b{_D1}\s+(?:of\s+)?({_MONTHS}),?\s+(\d{{4}}){_TO}{_D}\s+(?:of\s+)?({_MONTHS}),?\s+(\d{{4}})\b"),
     lambda m: ((m[1], m[2], m[3]), (m[4], m[5], m[6]))),
    # "23 November to 3 December 2020"
    (re.compile(rf"\b{_D1}\s+(?:of\s+)?({_MONTHS}){_TO}{_D}\s+(?:of\s+)?({_MONTHS}),?\s+(\d{{4}})\b"),
     lambda m: ((m[1], m[2], m[5]), (m[3], m[4], m[5]))),
    # "12-23 October 2020", "between the 12 and 23 of October 2020"
    (re.compile(rf"\b{_D1}{_TO}{_D}\s+(?:of\s+)?({_MONTHS}),?\s+(\d{{4}})\b"),
     lambda m: ((m[1], m[3], m[4]), (m[2], m[3], m[4]))),
    # "12/10/2020 - 23/10/2020"
    (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\s*(?:to|and|-|–|until)\s*(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b"),
     lambda m: ((m[1], MONTH_NAMES[int(m[2]) - 1] if 1 <= int(m[2]) <= 12 else "", m[3]),
                (m[4], MONTH_NAMES[int(m[5]) - 1] if 1 <= int(m[5]) <= 12 else "", m[6]))),
    # "October to November 2020"
    (re.compile(rf"\b({_MONTHS}){_TO}({_MONTHS}),?\s+(\d{{4}})\b"),
     lambda m: ((None, m[1], m[3]), (None, m[2], m[3]))),
)
# Without a range, the first month written with its year (and its day, if it has one).
_ONE_DATE = re.compile(rf"\b(?:{_D1}\s+(?:of\s+)?)?({_MONTHS}),?\s+(\d{{4}})\b")
_YEAR_ONLY = re.compile(r"\b((?:19|20)\d{2})\b")


@dataclass(frozen=True)
class FoundDates:
    """Inspection dates read from a text: as shown, normalised, and where they were found.

    ``start``/``end`` are ISO dates ("2020-10-12"), or a month ("2020-10") or a year ("2020")
    when the text gives no more; ``span`` is where the dates are written in the text searched.
    """

    dates: str  # as shown: "12-23 October 2020", "23 November - 3 December 2020", "October 2020"
    start: str
    end: str
    span: tuple[int, int]

    @property
    def year(self) -> int:
        return int(self.start[:4])


def _iso(day: str | None, month: str | None, year: str) -> str | None:
    """An ISO date (or month, or year) for a day, month name and year; None if no such date."""
    y = int(year)
    if not 1900 <= y <= 2100:
        return None
    if not month:
        return f"{y:04d}" if day is None else None
    mo = MONTH_NAMES.index(month) + 1
    if day is None:
        return f"{y:04d}-{mo:02d}"
    try:
        return date(y, mo, int(day)).isoformat()
    except ValueError:
        return None


def _shown(start: str, end: str) -> str:
    """'2020-10-12', '2020-10-23' -> '12-23 October 2020' (the way the reports write them)."""

    def parts(iso: str) -> tuple[str, str, str]:
        bits = iso.split("-")
        day = str(int(bits[2])) if len(bits) > 2 else ""
        month = MONTH_NAMES[int(bits[1]) - 1] if len(bits) > 1 else ""
        return day, month, bits[0]

    (d1, m1, y1), (d2, m2, y2) = parts(start), parts(end)
    if start == end:
        return " ".join(x for x in (d1, m1, y1) if x)
    if y1 != y2:
        return f"{' '.join(x for x in (d1, m1, y1) if x)} - {' '.join(x for x in (d2, m2, y2) if x)}"
    if m1 == m2 and d1 and d2:
        return f"{d1}-{d2} {m1} {y1}"
    return f"{' '.join(x for x in (d1, m1) if x)} - {' '.join(x for x in (d2, m2) if x)} {y1}"


def _candidates(text: str):
    """Every way of reading dates in ``text``: ranges first (earliest first), then single dates."""
    ranges = []
    for rx, read in _DATE_FORMS:
        for m in rx.finditer(text):
            (d1, m1, y1), (d2, m2, y2) = read(m)
            start, end = _iso(d1, m1, y1), _iso(d2, m2, y2)
            if start and end and start <= end:
                ranges.append((m.start(), -m.end(), start, end))
    for pos, neg_end, start, end in sorted(ranges):
        yield FoundDates(_shown(start, end), start, end, (pos, -neg_end))
    for m in _ONE_DATE.finditer(text):
        iso = _iso(m[1], m[2], m[3])
        if iso:
            yield FoundDates(_shown(iso, iso), iso, iso, m.span())


def find_dates(text: str) -> FoundDates | None:
    """The inspection dates of a report: its first date range, else its first month and year.

    >>> f = find_dates("A team spent seven days between the 12 and 23 of October 2020.")
    >>> f.dates, f.start, f.end, f.year, f.span
    ('12-23 October 2020', '2020-10-12', '2020-10-23', 2020, (36, 61))
    >>> find_dates("From 23rd November 2020 to 3rd December 2020.").dates
    '23 November - 3 December 2020'
    """
    return next(_candidates(text), None)


def dates_span(text: str, dates: str) -> tuple[int, int] | None:
    """Where in ``text`` the dates shown as ``dates`` are written (the first place), or None."""
    if not dates:
        return None
    want = normalise_dates(dates)
    for found in _candidates(text):
        if (found.start, found.end) == want[:2]:
            return found.span
    return None


@lru_cache(maxsize=4096)
def normalise_dates(dates: str) -> tuple[str, str, int | None]:
    """(start, end, year) of a dates string as stored in a report's metadata ('' and None if none).

    >>> normalise_dates("23 November - 3 December 2020")
    ('2020-11-23', '2020-12-03', 2020)
    >>> normalise_dates("October 2020"), normalise_dates("2019"), normalise_dates("")
    (('2020-10', '2020-10', 2020), ('2019', '2019', 2019), ('', '', None))
    """
    found = find_dates(dates or "")
    if found is not None:
        return found.start, found.end, found.year
    m = _YEAR_ONLY.search(dates or "")
    return (m[1], m[1], int(m[1])) if m else ("", "", None)


_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
EARLIEST_YEAR = 1990  # no report CIW (or its predecessors) published is of an earlier inspection


def hand_dates(start: str, end: str | None = None, *, today: date | None = None) -> str:
    """Inspection dates given by hand (ISO days; ``end`` defaults to ``start``) as the reports show
    them, checked to be real days, in order, not before 1990 and not after today.

    The string returned reads back to exactly these days (:func:`normalise_dates`), so every
    filter sees what was given. Raises :class:`index.errors.BadDatesError`.

    >>> hand_dates("2019-03-04", "2019-03-08"), hand_dates("2018-12-30", "2019-01-02"), hand_dates("2017-06-01")
    ('4-8 March 2019', '30 December 2018 - 2 January 2019', '1 June 2017')
    """
    from index.errors import BadDatesError

    end = end or start
    given = f"{start} to {end}" if end != start else str(start)
    today = today or date.today()
    days = []
    for value in (start, end):
        m = _ISO_DAY.match(str(value).strip())
        if not m:
            raise BadDatesError(given, f"{str(value)[:40]!r} is not a day written as YYYY-MM-DD")
        try:
            days.append(date(int(m[1]), int(m[2]), int(m[3])))
        except ValueError:
            raise BadDatesError(given, f"{value} is not a day of the calendar") from None
    first, last = days
    if last < first:
        raise BadDatesError(given, "the last day is before the first")
    if first.year < EARLIEST_YEAR:
        raise BadDatesError(given, f"no inspection report is from before {EARLIEST_YEAR}")
    if last > today:
        raise BadDatesError(given, "an inspection already reported on cannot end after today")
    shown = _shown(first.isoformat(), last.isoformat())
    if normalise_dates(shown)[:2] != (first.isoformat(), last.isoformat()):  # never stored unless it reads back
        raise BadDatesError(given, "they cannot be written so that they read back the same")
    return shown


_KINDS = [
    ("risk based inspection", "Risk based inspection"),
    ("performance evaluation inspection", "Performance evaluation inspection"),
    ("assurance check", "Assurance check"),
    ("improvement check", "Improvement check"),
    ("national review", "National review"),
    ("inspection", "Inspection"),
]


def short_name(authority: str) -> str:
    """'Wrexham County Borough Council' -> 'Wrexham' (the name people type)."""
    for short, official in AUTHORITIES.items():
        if official == authority:
            return short
    return re.sub(r"\s+(County Borough|County|City)?\s*Council$", "", authority).strip() or authority


def detect_authority(text: str) -> str:
    counts = Counter()
    for short in AUTHORITIES:
        counts[short] = len(re.findall(rf"\b{re.escape(short)}\b", text))
    short, n = counts.most_common(1)[0]
    if n:
        return AUTHORITIES[short]
    found = Counter(re.findall(r"\b((?:[A-Z][a-z]+ ){1,3}(?:County Borough |County |City )?Council)\b", text))
    return found.most_common(1)[0][0] if found else ""


def detect_dates(text: str) -> str:
    """The inspection dates as shown ("12-23 October 2020"), or "" when the text gives none."""
    found = find_dates(text)
    return found.dates if found else ""


def detect_kind(text: str) -> str:
    low = text.lower()
    kinds: list[str] = []
    for needle, label in _KINDS:
        if needle in low and not any(needle in k.lower() for k in kinds):
            kinds.append(label)
    specific = [k for k in kinds if k != "Inspection"]
    kinds = specific or kinds
    if len(kinds) > 1:
        return kinds[0] + " and " + kinds[1][0].lower() + kinds[1][1:]
    return kinds[0] if kinds else "Report"


def detect_title(clean: str, authority: str, kind: str, dates: str) -> str:
    """The title lines at the top of the report, or one made from the metadata."""
    lines: list[str] = []
    for line in clean.splitlines():
        s = line.strip()
        if not s:
            continue
        if re.match(r"^(introduction|overview|contents|summary)\b", s, re.I) or len(s) > 120 or s.endswith("."):
            break
        if "welsh" in s.lower() or "gymraeg" in s.lower():
            continue
        lines.append(s)
    if lines and authority and lines[0].lower() == authority.lower():
        lines = lines[1:]
    title = " ".join(lines)
    if 15 <= len(title) <= 200 and any(w in title.lower() for w in ("report", "inspection", "review", "check")):
        return f"{authority}: {title}" if authority else title
    bits = [b for b in (authority, kind.lower() if authority else kind) if b]
    title = " ".join(bits[:1]) + (f": {bits[1]}" if len(bits) > 1 else "")
    return f"{title} ({dates})" if dates else title


def detect_meta(report_id: str, source: str, clean: str) -> ReportMeta:
    """All metadata of one report.

    >>> m = detect_meta("x.txt", "", "Cardiff Council. Our inspection from 23 November to 3 December 2020.")
    >>> (m.authority, m.dates)
    ('Cardiff Council', '23 November - 3 December 2020')
    """
    authority = detect_authority(clean)
    dates = detect_dates(clean)
    kind = detect_kind(clean)
    title = detect_title(clean, authority, kind, dates)
    return ReportMeta(
        report_id=report_id,
        title=title,
        authority=authority,
        kind=kind,
        dates=dates,
        sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
    )
