"""Which reports a question is about: councils it names, and filters the caller gave."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.meta import name_alternatives, short_name
from index.text import terms
from index.types import ReportMeta


@dataclass(frozen=True)
class Scope:
    """Report groups to search (one per named council, or one of all allowed reports) and the
    question with the council names taken out: once scoped, a council's name only pulls in
    generic passages that merely mention it."""

    groups: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...]
    text: str
    missing: tuple[str, ...] = ()  # councils the question names that no indexed report covers
    bridged: tuple[str, ...] = ()  # report words standing in for question words they never use

    @property
    def comparison(self) -> bool:
        return len(self.groups) > 1

    @property
    def search_text(self) -> str:
        """What is searched and scored: the question, plus the report words bridged to it."""
        return f"{self.text} {' '.join(self.bridged)}" if self.bridged else self.text


def _name_pattern(authority: str) -> re.Pattern:
    short = short_name(authority)
    names = [re.escape(authority), *name_alternatives(short)]
    alt = "|".join(dict.fromkeys(n for n in names if n))
    tail = r"(?:\s+(?:County\s+Borough|County|City)?\s*Council)?(?:'s|’s|s')?"
    return re.compile(rf"\b(?:{alt}){tail}\b", re.I)


def named_authorities(question: str, reports: dict[str, ReportMeta]) -> list[str]:
    """Authorities (official names) the question names, in order of first mention."""
    found: list[tuple[int, str]] = []
    for authority in {m.authority for m in reports.values() if m.authority}:
        m = _name_pattern(authority).search(question)
        if m:
            found.append((m.start(), authority))
    return [a for _, a in sorted(found)]


# The inspectorate's own name is how people frame a question ("what did CIW find about ..."),
# not what it is about; left in, it ranks the reports' boilerplate about CIW first.
_FRAME = re.compile(r"\b(?:CIW|Care\s+Inspectorate\s+Wales)(?:'s|’s)?(?:\s+inspectors?)?\b", re.I)


def strip_frame(question: str) -> str:
    """The question without the inspectorate's name, unless nothing else would be left.

    >>> strip_frame("What did CIW find about carers?")
    'What did find about carers?'
    """
    stripped = re.sub(r"\s{2,}", " ", _FRAME.sub(" ", question)).strip()
    return stripped if terms(stripped) else question


# "the two councils", "each council", "both reports": a comparison of every report in scope.
_EACH = re.compile(
    r"\b(?:in|for|of|across|between)?\s*(?:each|both|every|all|the\s+(?:two|three|four|different))\s+(?:of\s+the\s+)?"
    r"(?:councils?|local\s+authorit(?:y|ies)|authorit(?:y|ies)|reports?|inspections?)\b",
    re.I,
)
MAX_COMPARED = 6  # "each council" over more reports than this is a search of them all, not a comparison


def strip_authorities(question: str, authorities: list[str]) -> str:
    for a in authorities:
        question = _name_pattern(a).sub(" ", question)
    return re.sub(r"\s{2,}", " ", question).strip()


def unindexed_authorities(question: str, reports: dict[str, ReportMeta]) -> list[str]:
    """Welsh councils the question names that none of the indexed reports is about."""
    from index.meta import AUTHORITIES

    indexed = {m.authority for m in reports.values()}
    return [
        official
        for short, official in AUTHORITIES.items()
        if official not in indexed and re.search(rf"\b(?:{'|'.join(name_alternatives(short))})\b", question, re.I)
    ]


def allowed_reports(reports: dict[str, ReportMeta], filters: dict | None) -> list[str]:
    """Report ids the filters allow (authority by official or short name; source / report id)."""
    ids = sorted(reports)
    if not filters:
        return ids
    auth = filters.get("authority") or filters.get("council")
    if auth:
        want = {a.strip().lower() for a in ([auth] if isinstance(auth, str) else auth)}
        ids = [i for i in ids if {reports[i].authority.lower(), short_name(reports[i].authority).lower()} & want]
    src = filters.get("source") or filters.get("report") or filters.get("report_id")
    if src:
        want = {src} if isinstance(src, str) else set(src)
        ids = [i for i in ids if i in want]
    return ids


def scope_question(question: str, reports: dict[str, ReportMeta], filters: dict | None = None, *, enabled: bool = True) -> Scope:
    """Split a question into per-council report groups.

    >>> from index.types import ReportMeta
    >>> reps = {r: ReportMeta(r, "", a, "", "", "") for r, a in [("w.txt", "Wrexham County Borough Council"), ("c.txt", "Cardiff Council")]}
    >>> s = scope_question("How do Wrexham and Cardiff compare on supervision?", reps)
    >>> (s.groups, s.text)
    ((('w.txt',), ('c.txt',)), 'How do and compare on supervision?')
    """
    allowed = allowed_reports(reports, filters)
    if not enabled:
        return Scope((tuple(allowed),), ("",), question)
    question = strip_frame(question)
    missing = tuple(unindexed_authorities(question, reports))
    named = named_authorities(question, reports)
    groups: list[tuple[str, ...]] = []
    labels: list[str] = []
    for a in named:
        g = tuple(i for i in allowed if reports[i].authority == a)
        if g:
            groups.append(g)
            labels.append(a)
    if not named and (m := _EACH.search(question)):
        by_authority: dict[str, list[str]] = {}
        for i in allowed:
            by_authority.setdefault(reports[i].authority, []).append(i)
        if 2 <= len(by_authority) <= MAX_COMPARED:
            text = re.sub(r"\s{2,}", " ", question[: m.start()] + " " + question[m.end() :]).strip()
            labels = sorted(by_authority)
            return Scope(tuple(tuple(by_authority[a]) for a in labels), tuple(labels), text if terms(text) else question, missing)
    if not groups:
        # A council named but filtered out, or none named: search what the filters allow.
        return Scope((tuple(allowed),), ("",), strip_authorities(question, named) if named else question, missing)
    return Scope(tuple(groups), tuple(labels), strip_authorities(question, named) or question, missing)
