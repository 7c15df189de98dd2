"""Which reports a question is about: councils it names, and filters the caller gave."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from index.meta import name_alternatives, short_name
from index.text import terms
from index.types import ReportMeta
from rag.timescope import TIME_KEYS, apply_time, describe, newest_first, time_words


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
    time: dict = field(default_factory=dict)  # the question's time words as report filters
    empty: str = ""  # why no report answers: none is of the time asked about (a sentence)
    note: str = ""  # named councils left out because none of their reports is of that time
    across: bool = False  # "Which councils ...?": every council searched, answered as a list (rag.across)
    changed: bool = False  # "What has changed in X since ...?": one group per report, oldest first (rag.changes)
    overall: bool = False  # a change question that names no topic: each report's summary is searched (rag.changes)

    @property
    def unanswered(self) -> str:
        """Why the question cannot be answered from the reports in scope (a sentence), or ""."""
        if self.empty:
            return self.empty
        if self.missing and len(self.labels) <= 1 and not self.labels[0]:
            names = " and ".join(short_name(a) for a in self.missing)
            return f"No indexed report covers {names}; the closest passages from the reports that are indexed are listed below."
        return ""

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
    r"\b(?:in|at|for|of|across|between)?\s*(?:each|both|every|all|the\s+(?:two|three|four|different))\s+(?:of\s+the\s+)?"
    r"(?:councils?|local\s+authorit(?:y|ies)|authorit(?:y|ies)|reports?|inspections?)\b",
    re.I,
)


def asks_each_report(text: str) -> re.Match | None:
    """Where ``text`` asks of each inspection or report of a council ("in each inspection", "both
    reports"), not of each council; None if it does not.

    >>> bool(asks_each_report("What did they find at each inspection?")), bool(asks_each_report("... in each council?"))
    (True, False)
    """
    m = _EACH.search(text)
    return m if m and re.search(r"inspection|report", m.group(0), re.I) else None


# A comparison of more councils than this is searched in one batch (rag.across.search_each).
MAX_COMPARED = 6
_COUNTED = {"two": 2, "both": 2, "three": 3, "four": 4}  # words that say how many councils are meant

# A question across the corpus: "Which councils ...?", "How many councils ...?", "In which reports
# ...?", "... across Wales": every council in scope is searched on its own, however many,
# and answered as a list (rag.across).
_ACROSS = re.compile(
    r"\b(?:(?:in|for|of|at)\s+)?(?:(?:which|how\s+many)\s+(?:of\s+the\s+)?(?:other\s+)?"
    r"(?:councils?|local\s+authorit(?:y|ies)|authorit(?:y|ies)|(?:inspection\s+)?reports?|inspections)"
    # "How many local authorities are covered by ...?" asks for a number a report states.
    r"(?!\s+(?:are|were|is|was|will\s+be|have\s+been|had\s+been)\s+\w+ed\b)"
    r"|what\s+(?:other\s+)?(?:councils?|local\s+authorit(?:y|ies)))(?:'s|’s|s'|’|')?(?=\W|$)"
    r"|\b(?:across|throughout|in\s+all\s+(?:of\s+)?)\s*(?:all\s+(?:of\s+)?)?(?:Wales|the\s+(?:whole\s+)?(?:country|corpus)|(?:the\s+)?(?:councils|local\s+authorities|reports))\b",
    re.I,
)


# "What do the reports say about ...?", "What did the inspections find ...?": the reports as a
# whole, naming no council. Of several councils, each one's own answer is what is asked for, as
# with "across Wales"; of one council, it is an ordinary question.
_THE_REPORTS = re.compile(r"\b(?:do|did|does)\s+(?:the\s+|all\s+(?:the\s+)?)?(?:inspection\s+)?(?:reports|inspections)\b", re.I)


def across_match(question: str) -> re.Match | None:
    """Where a question asks across the corpus ("Which councils ...?"), or None.

    >>> bool(across_match("Which councils have problems recruiting social workers?")), bool(across_match("Which services improved?"))
    (True, False)
    """
    return _ACROSS.search(question)


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
    """Report ids the filters allow (authority by official or short name; source / report id;
    the time keys of :mod:`rag.timescope`: year, month, since, before, latest, previous)."""
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
    return apply_time(reports, ids, filters)


def _dated_as(reports: dict[str, ReportMeta], ids: list[str]) -> str:
    dates = [reports[i].dates for i in newest_first(reports, ids) if reports[i].dates]
    if not dates:
        return "no date could be found in their text" if len(ids) > 1 else "no date could be found in its text"
    more = f" and {len(dates) - 4} more" if len(dates) > 4 else ""
    return ("the indexed ones are of " if len(ids) > 1 else "the indexed one is of ") + "; ".join(dates[:4]) + more


def _unmet(reports: dict[str, ReportMeta], time: dict, authority: str, ids: list[str]) -> str:
    """A sentence saying that none of a council's reports (``ids``) is of the time asked about."""
    whose = f"of {short_name(authority)} " if authority else ""
    if time.get("previous") and not any(time.get(k) for k in TIME_KEYS if k not in ("previous", "latest")):
        head = f"No report {whose}older than its latest is indexed"
    else:
        head = f"No indexed report {whose}is dated {describe(time)}"
    return f"{head} ({_dated_as(reports, ids)})"


def _time_scope(question: str, reports: dict[str, ReportMeta], allowed: list[str], named: list[str]):
    """The question's time words applied: (report ids left, question without them, filters,
    councils left with none). A month that leaves out every report asked about is read as the
    date of an event the reports tell of ("Who did CIW meet in February 2020?"): its year scopes."""
    best = None
    for months in (True, False):
        tw = time_words(question, months=months)
        if tw is None:
            return allowed, question, {}, []
        timed = apply_time(reports, allowed, tw.filters)
        councils = named or sorted({reports[i].authority for i in allowed})
        unmet = [a for a in councils if not any(reports[i].authority == a for i in timed) and any(reports[i].authority == a for i in allowed)]
        if best is None or len(unmet) < len(best[3]):
            best = (timed, tw.text if terms(tw.text) else question, tw.filters, unmet)
        if not unmet or "month" not in tw.filters:
            break
    if not named and best[0]:
        best = (*best[:3], [])  # some councils have reports of that time: the rest are not asked about
    return best


def _by_council(ids: list[str], reports: dict[str, ReportMeta]) -> dict[str, list[str]]:
    """Report ids by their council (official name), in the order given."""
    out: dict[str, list[str]] = {}
    for i in ids:
        out.setdefault(reports[i].authority, []).append(i)
    return out


def scope_question(question: str, reports: dict[str, ReportMeta], filters: dict | None = None, *, enabled: bool = True) -> Scope:
    """Split a question into per-council report groups; a question of what changed in a council
    (rag.changes) into one group per report of it, oldest first.

    >>> from index.types import ReportMeta
    >>> reps = {r: ReportMeta(r, "", a, "", "", "") for r, a in [("w.txt", "Wrexham County Borough Council"), ("c.txt", "Cardiff Council")]}
    >>> s = scope_question("How do Wrexham and Cardiff compare on supervision?", reps)
    >>> (s.groups, s.text)
    ((('w.txt',), ('c.txt',)), 'How do and compare on supervision?')
    """
    if enabled:
        from rag.changes import asks_change, change_scope, compares_over_time, since_last

        # A comparison word asks about change only of one council (of two, it compares them).
        if asks_change(question) or (compares_over_time(question) and len(named_authorities(question, reports)) == 1):
            text, last_two = since_last(question)
            sc = change_scope(_scope_question(text, reports, filters), reports, last_two=last_two)
            if sc.changed:  # else a council with one report: the question is asked as it stands
                return sc
        return _each_report(_scope_question(question, reports, filters), reports)
    return _scope_question(question, reports, filters, enabled=enabled)


def _scope_question(question: str, reports: dict[str, ReportMeta], filters: dict | None = None, *, enabled: bool = True) -> Scope:
    allowed = allowed_reports(reports, filters)
    if not enabled:
        return Scope((tuple(allowed),), ("",), question)
    question = strip_frame(question)
    missing = tuple(unindexed_authorities(question, reports))
    named = named_authorities(question, reports)
    untimed = allowed
    if filters and not allowed and any(filters.get(k) for k in TIME_KEYS):
        untimed = allowed_reports(reports, {k: v for k, v in filters.items() if k not in TIME_KEYS})
        empty = f"No indexed report is dated {describe(filters)}; the closest passages from the other reports are listed below."
        return Scope((tuple(untimed),), ("",), question, missing, empty=empty)
    allowed, question, time, unmet = _time_scope(question, reports, allowed, named)
    if unmet and not named:
        # No report of that time at all: one sentence for the whole index, whatever its size.
        years = sorted({reports[i].year for i in untimed if reports[i].year})
        span = f"the indexed ones are of {years[0]}" + (f" to {years[-1]}" if len(years) > 1 else "") if years else _dated_as(reports, untimed)
        empty = f"No indexed report is dated {describe(time)} ({span}); the closest passages from the other reports are listed below."
        return Scope((tuple(untimed),), ("",), question, missing, time=time, empty=empty)
    if unmet:
        note = "; ".join(_unmet(reports, time, a, [i for i in untimed if reports[i].authority == a]) for a in unmet) + "."
        if set(unmet) >= set(named or {reports[i].authority for i in untimed}):
            # Nothing of that time to answer from: abstain, showing the closest passages of the rest.
            groups = tuple(g for a in (named or [""]) if (g := tuple(i for i in untimed if not a or reports[i].authority == a)))
            text = strip_authorities(question, named) if named else question
            return Scope(groups or ((),), ("",) * max(1, len(groups)), text or question, missing, time=time,
                         empty=note[:-1] + "; the closest passages from the other reports are listed below.")
    else:
        note = ""
    groups: list[tuple[str, ...]] = []
    labels: list[str] = []
    for a in named:
        g = tuple(i for i in allowed if reports[i].authority == a)
        if g:
            groups.append(g)
            labels.append(a)
    # ("What do the reports say ... in each council?" is a comparison: "each council" decides.)
    the_reports = None if _EACH.search(question) else _THE_REPORTS.search(question)
    if not named and (m := across_match(question) or the_reports):
        by_council = _by_council(allowed, reports)
        if len(by_council) >= (2 if m is the_reports else 1):
            text = re.sub(r"\s{2,}", " ", question[: m.start()] + " " + question[m.end() :]).strip(" ,")
            labels = sorted(by_council)
            return Scope(tuple(tuple(by_council[a]) for a in labels), tuple(labels), text if terms(text) else question,
                         missing, time=time, note=note, across=True)
    if not named and (m := _EACH.search(question)):
        by_authority = _by_council(allowed, reports)
        if len(by_authority) >= 2:
            # Every council in scope, side by side, as many as there are: a council's line is the
            # same whether the index holds two councils or twenty.
            text = re.sub(r"\s{2,}", " ", question[: m.start()] + " " + question[m.end() :]).strip()
            labels = sorted(by_authority)
            said = next((w for w in re.findall(r"\w+", m.group(0).lower()) if w in _COUNTED), "")
            if said and _COUNTED[said] != len(labels):
                # "The two councils" cannot say which two: the answer shows all and says so, not guesses.
                note = " ".join(x for x in (note, (
                    f"The question asks about “{m.group(0).strip()}”, but the reports searched are of {len(labels)} "
                    "councils: each is shown. Name the councils to compare only those."
                )) if x)
            return Scope(tuple(tuple(by_authority[a]) for a in labels), tuple(labels), text if terms(text) else question, missing, time=time, note=note)
    if not groups:
        # A council named but filtered out, or none named: search what the filters allow.
        return Scope((tuple(allowed),), ("",), strip_authorities(question, named) if named else question, missing, time=time, note=note)
    return Scope(tuple(groups), tuple(labels), strip_authorities(question, named) or question, missing, time=time, note=note)


_HOW_MANY = re.compile(r"\bhow\s+many\b", re.I)


def _each_report(scope: Scope, reports: dict[str, ReportMeta]) -> Scope:
    """"... in each inspection?", "... in both reports?", and "how many ...?" (a count is of one
    inspection) of a named council with several reports in scope: each report a group of its own,
    newest first, so each answers on its own line as councils do in a comparison. The reports of a
    council repeat their findings with other figures, and one line for all of them quoted
    whichever copy scored best (2017's count for Cardiff, not 2020's). Other scopes unchanged."""
    if scope.across or scope.unanswered or not any(scope.labels) or all(len(g) == 1 for g in scope.groups):
        return scope
    if m := asks_each_report(scope.text):
        text = re.sub(r"\s+(?=[?.,!]|$)|(?<=\s)\s+", "", scope.text[: m.start()] + " " + scope.text[m.end() :]).strip()
    elif _HOW_MANY.search(scope.text):
        text = scope.text
    else:
        return scope
    split = [((rid,), a) for g, a in zip(scope.groups, scope.labels) for rid in newest_first(reports, g)]
    return replace(scope, groups=tuple(g for g, _ in split), labels=tuple(a for _, a in split), text=text if terms(text) else scope.text)
