"""Detect a report's metadata (authority, inspection kind, dates, title) from its text."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

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
_RANGE_TWO_MONTHS = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTHS})\s+(?:to|and|-|–|until)\s+(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTHS})\s+(\d{{4}})"
)
_RANGE_ONE_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:to|and|-|–|until)\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTHS})\s+(\d{{4}})"
)
_MONTH_YEAR = re.compile(rf"\b({_MONTHS})\s+(\d{{4}})\b")

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
    m = _RANGE_TWO_MONTHS.search(text)
    if m:
        return f"{m[1]} {m[2]} - {m[3]} {m[4]} {m[5]}"
    m = _RANGE_ONE_MONTH.search(text)
    if m:
        return f"{m[1]}-{m[2]} {m[3]} {m[4]}"
    m = _MONTH_YEAR.search(text)
    return f"{m[1]} {m[2]}" if m else ""


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
