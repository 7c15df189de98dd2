"""The findings explorer: every finding of every indexed report, as rows to filter, sort and export.

A CIW report files its findings under "Strengths" and "What needs to improve" headings, by service
area (children's, adults') and principle (people - voice and choice, well-being, prevention,
partnerships). Each finding is listed with its headline sentence, quoted verbatim from the report
at its span. A report written as prose, without such headings, is listed by its "must" and "should"
sentences, which is how CIW words its requirements. The sentences are found as the answers to broad
questions find them (:func:`rag.outline.from_headings`, :func:`rag.outline.from_requirements`).

>>> rows = findings(council="Wrexham", service="adults", theme="well-being")  # doctest: +SKIP
>>> rows[0].kind, rows[0].theme, rows[0].quote == source_text(rows[0].report_id)[rows[0].start:rows[0].end]  # doctest: +SKIP
('strength', 'Well-being', True)
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable

from defusedcsv import csv as defused_csv

from index.store import IndexStore
from rag.errors import InvalidArgumentError
from rag.types import Citation

SERVICES = ("children", "adults")
KINDS = ("strength", "needs to improve", "must", "should")
# What each heading kind of rag.outline is called in a finding's ``kind``.
_KIND_NAMES = {"Strengths": "strength", "What needs to improve": "needs to improve"}
_MUST = re.compile(r"\bmust\b", re.I)
CSV_COLUMNS = (
    "council", "report_id", "dates", "year", "service", "theme", "kind", "finding", "quote", "start", "end", "section", "page",
)


@dataclass(frozen=True)
class Finding:
    """One finding of a report, with the report's own words.

    ``quote == source_text(report_id)[start:end]`` always holds; ``text`` is the quote on one line
    (a line break inside a sentence read as a space). ``service`` is "children", "adults" or ""
    (not said); ``theme`` the principle or heading it is filed under; ``kind`` one of
    "strength", "needs to improve" (a report's own headings) or "must", "should" (a prose
    report's requirements). ``citation`` is the same span as a :class:`rag.types.Citation`
    (numbered 1), with its passage, for showing it as the chat shows a source.
    """

    council: str  # e.g. "Wrexham County Borough Council"
    report_id: str
    title: str
    dates: str  # as the report gives them, e.g. "12-23 October 2020" ("" if not found)
    year: int | None
    service: str
    theme: str
    kind: str
    text: str
    quote: str
    start: int
    end: int
    section: tuple[str, ...]
    page: int | None = None
    citation: Citation | None = field(default=None, compare=False, repr=False)

    def row(self) -> dict:
        """The finding as a CSV row (see :data:`CSV_COLUMNS`)."""
        return {
            "council": self.council, "report_id": self.report_id, "dates": self.dates, "year": self.year or "",
            "service": self.service, "theme": self.theme, "kind": self.kind, "finding": self.text, "quote": self.quote,
            "start": self.start, "end": self.end, "section": " › ".join(self.section), "page": self.page or "",
        }


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def check_service(service: str | None) -> str | None:
    """"children" or "adults" (also "child", "children's", "adult", "adults'"), None for any."""
    if not service:
        return None
    s = re.sub(r"[^a-z]", "", service.lower())
    if s in ("children", "child", "childrens", "childs"):
        return "children"
    if s in ("adults", "adult", "adultss"):  # "adults'", "adult's"
        return "adults"
    raise InvalidArgumentError(f'service must be "children" or "adults", not {service!r}.')


def _year(year: int | str | None) -> int | None:
    if year is None or year == "":
        return None
    if isinstance(year, int) and not isinstance(year, bool) or isinstance(year, str) and year.strip().isdigit():
        return int(year)
    raise InvalidArgumentError(f"year must be a year such as 2020, not {year!r}.")


# Each store's findings by report: a store is one immutable generation of the index, so they never change.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def report_findings(store: IndexStore, report_id: str) -> list[Finding]:
    """All the findings of one report, in report order (none for a report with neither headings
    nor must/should sentences)."""
    try:
        with _CACHE_LOCK:
            cached = _CACHE.setdefault(store, {}).get(report_id)
    except TypeError:  # a store that cannot be weakly referenced: no cache
        cached = None
    if cached is None:
        cached = _report_findings(store, report_id)
        with _CACHE_LOCK:
            if store in _CACHE:
                _CACHE[store][report_id] = cached
    return list(cached)


def _report_findings(store: IndexStore, report_id: str) -> list[Finding]:
    from rag.answer import cite
    from rag.outline import KINDS as HEADINGS
    from rag.outline import from_headings, from_requirements, service_of
    from rag.retrieval import to_passage

    meta = store.reports[report_id]
    items = [(it, _KIND_NAMES.get(k.name, k.name.lower())) for k in HEADINGS for it in from_headings(store, report_id, k)]
    prose = not items
    if prose:
        items = [(it, "") for it in from_requirements(store, report_id)]
    items.sort(key=lambda x: store.gen.sentences[x[0].row].start)
    passages: dict = {}
    out = []
    for it, kind in items:
        c = it.chunk
        if c.id not in passages:
            passages[c.id] = to_passage(store, store.chunk_pos[c.id], score=1.0, similarity=1.0)
        citation, _ = cite(store, it.row, passages[c.id], 1)
        text = " ".join(citation.quote.split())
        if prose:
            kind = "must" if _MUST.search(text) else "should"
        area = " ".join(it.area)
        out.append(
            Finding(
                council=meta.authority, report_id=report_id, title=meta.title, dates=meta.dates, year=meta.year,
                service=service_of(area) or (service_of(text) if prose else ""),
                theme=it.area[-1] if it.area else "", kind=kind, text=text, quote=citation.quote,
                start=citation.start, end=citation.end, section=c.section, page=citation.page, citation=citation,
            )
        )
    return out


def findings(
    index_dir: str | Path | None = None,
    *,
    council: str | None = None,
    year: int | str | None = None,
    service: str | None = None,
    theme: str | None = None,
    word: str | None = None,
    kind: str | None = None,
    settings=None,
    store: IndexStore | None = None,
) -> list[Finding]:
    """The findings of every indexed report that pass the filters, by council, newest report
    first, then in report order.

    Args:
        council: a council's official or short name ("Wrexham").
        year: the year the inspection started.
        service: "children" or "adults".
        theme: words of the principle or heading ("well-being", "voice", "partnerships"),
            ignoring case, spaces and hyphens.
        word: a word or phrase the finding's sentence contains (at the start of a word, any case).
        kind: "strength", "needs to improve", "must" or "should".
    """
    from index.meta import short_name
    from rag.scope import allowed_reports
    from rag.timescope import newest_first

    service = check_service(service)
    year = _year(year)
    if kind and kind not in KINDS:
        raise InvalidArgumentError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    if store is None:
        from rag.api import get_store

        store = get_store(index_dir, settings=settings)
    filters: dict = {}
    if council and council.strip():
        filters["authority"] = council.strip()
    if year is not None:
        filters["year"] = year
    ids = allowed_reports(store.reports, filters or None)
    want_theme = _norm(theme or "")
    words = (word or "").split()
    # At a word's start: no letter or digit just before (\b would need one in "(IAA)" or "£5").
    want_word = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words)), re.I) if words else None
    out: list[Finding] = []
    by_council: dict[str, list[str]] = {}
    for rid in ids:
        by_council.setdefault(short_name(store.reports[rid].authority).lower(), []).append(rid)
    for name in sorted(by_council):
        for rid in newest_first(store.reports, by_council[name]):
            for f in report_findings(store, rid):
                if service and f.service != service:
                    continue
                if want_theme and want_theme not in _norm(f.theme):
                    continue
                if want_word and not want_word.search(f.text):
                    continue
                if kind and f.kind != kind:
                    continue
                out.append(f)
    return out


def to_csv(rows: Iterable[Finding], file: IO[str] | str | Path) -> None:
    """Write findings as CSV (a header of :data:`CSV_COLUMNS`, then a row each) to an open text
    file or a path (written as UTF-8).

    Report text is anyone's PDF: a cell that begins with ``= + - @ | %`` is written with a leading
    apostrophe (and its ``|`` escaped), so a spreadsheet shows it rather than running it as a
    formula (OWASP's CSV injection advice, by defusedcsv). Such a quote is then not verbatim: its
    ``start``/``end`` are of the report's words without the apostrophe.
    """
    if isinstance(file, (str, Path)):
        with open(file, "w", encoding="utf-8", newline="") as fh:
            to_csv(rows, fh)
        return
    writer = defused_csv.DictWriter(file, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for f in rows:
        writer.writerow(f.row())
