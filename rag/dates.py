"""Questions about when an inspection took place, answered from the reports' dates.

"When did the inspection of Wrexham take place?", "Between which dates were inspectors in
Cardiff?", "When was Wrexham last inspected?" ask for a report's own metadata: its inspection
dates (``ReportMeta.dates``, read from its text when it was indexed). Such a question gets one
line per report in scope, newest first, naming the council and the dates, and quoting the
sentence of the report the dates were read from, cited at its span. Questions about other dates
("When did CIW meet the chief executive?", "When will CIW come back?") go to the ordinary
answerer.

Also here: the notice under an answer drawn from several reports of one council (the default for
a question that names no time: every report of the council is searched, each line labelled with
its date, newest first).
"""

from __future__ import annotations

import re
from dataclasses import replace

from index.meta import dates_span, short_name
from index.store import IndexStore
from index.text import terms
from index.types import ReportMeta
from rag.answer import cite
from rag.retrieval import Retrieval, to_passage
from rag.scope import Scope
from rag.timescope import newest_first
from rag.types import Answer, Citation, Passage

MAX_REPORTS = 12  # reports listed at most (newest first); the notice says how many more

_WHEN_Q = re.compile(
    r"\b(?:when|what\s+dates?|which\s+dates?|(?:on|between|from)\s+(?:which|what)\s+dates?"
    r"|(?:what|which)\s+(?:year|month|time\s+of\s+year))\b",
    re.I,
)
_INSPECTION = re.compile(r"\b(?:inspect\w*|visit\w*|fieldwork|on\s+site)\b", re.I)
# The next inspection, a re-inspection or an earlier one the report mentions are not this
# report's dates: "When will CIW re-inspect Wrexham?", "In what year did CIW previously inspect ...?"
_OTHER_TIME = re.compile(r"\b(?:will|would|next|again|re-?inspect\w*|return\w*|come\s+back|previously|follow[- ]?up)\b", re.I)
# Every word of a question about an inspection's dates is one of these (by stem).
_DATES_WORDS = frozenset(
    terms(
        """when what which date dates day days year years month months time between from on
        inspection inspections inspect inspected inspecting inspector inspectors visit visits visited
        fieldwork site take took taken place happen happened carry carried out conduct conducted
        undertake undertaken start started begin began end ended finish finished spend spent
        last latest recent recently most current council councils local authority authorities social
        services service children childrens adult adults risk based performance evaluation assurance
        check improvement review ciw care inspectorate wales report reports team"""
    )
)


def asks_dates(text: str, question: str = "") -> bool:
    """Does the question ask when an inspection took place? ``text`` is what is searched (the
    question without its council and time words), ``question`` the question as resolved.

    >>> asks_dates("When did the CIW inspection of take place?"), asks_dates("Between which dates were inspectors in?")
    (True, True)
    >>> asks_dates("When did take place?", "When did the 2017 inspection of Cardiff take place?")
    True
    >>> asks_dates("When will CIW re-inspect social services?"), asks_dates("When did CIW meet the chief executive?")
    (False, False)
    """
    question = question or text
    return (
        bool(_WHEN_Q.search(question) and _INSPECTION.search(question))
        and not _OTHER_TIME.search(question)
        and not set(terms(text)) - _DATES_WORDS
    )


def _quote(store: IndexStore, rid: str, positions: list[int], n: int) -> tuple[Citation, str] | None:
    """Citation ``n`` of the sentence the report's dates were read from (or of the dates
    themselves, when no sentence holds them), and the sentence as the answer shows it."""
    meta = store.reports[rid]
    text = store.source_text(rid)
    span = dates_span(text, meta.dates)
    if span is None:
        return None
    a, b = span
    for pos in positions:
        c = store.chunks[pos]
        if not (c.start <= a < c.end):
            continue
        passage = to_passage(store, pos, score=1.0, similarity=1.0)
        for row in store.sent_rows.get(c.id, []):
            s = store.gen.sentences[row]
            if s.start <= a and b <= s.end:
                return cite(store, row, passage, n)
        return Citation(n, rid, passage.title, passage.authority, passage.section, text[a:b], a, b, passage), f"{text[a:b]} [{n}]"
    # Dates in a line no passage holds (a cover page's running header): cite them where they are.
    passage = Passage("", rid, meta.title, meta.authority, (), text[a:b], a, b, 1.0, 1.0, dates=meta.dates)
    return Citation(n, rid, meta.title, meta.authority, (), text[a:b], a, b, passage), f"{' '.join(text[a:b].split())} [{n}]"


def dates_answer(
    question: str, retrieval: Retrieval, store: IndexStore, *, resolved_question: str = "", focus: str = ""
) -> Answer | None:
    """The inspection dates of the reports in scope, each cited where it was read; None when the
    question asks something else (or no report in scope has dates found in its text).
    ``focus``: what a follow-up newly asks ("How was it carried out?" after a question about
    dates asks how, not when)."""
    sc = retrieval.scope
    if sc.unanswered or not asks_dates(sc.text, resolved_question or question) or (focus and not _WHEN_Q.search(focus)):
        return None
    ids: list[str] = []
    for group in sc.groups:
        ids += [rid for rid in newest_first(store.reports, group) if rid not in ids]
    undated = [rid for rid in ids if not store.reports[rid].dates]
    dated = [rid for rid in ids if store.reports[rid].dates]
    listed = dated[:MAX_REPORTS]
    positions: dict[str, list[int]] = {rid: [] for rid in listed}
    for pos, c in enumerate(store.chunks):
        if c.report_id in positions:
            positions[c.report_id].append(pos)
    citations: list[Citation] = []
    lines: list[str] = []
    for rid in listed:
        got = _quote(store, rid, positions[rid], len(citations) + 1)
        if got is None:
            undated.append(rid)
            continue
        citation, shown = got
        citations.append(citation)
        meta = store.reports[rid]
        lines.append(f"{short_name(meta.authority) or rid}, {meta.dates}: {shown}")
    if not citations:
        return None
    notes = []
    if len(dated) > len(listed):
        notes.append(f"The {len(listed)} newest of {len(dated)} reports are listed: name a council or a year for the others.")
    if undated:
        notes.append(f"No inspection date could be found in the text of {', '.join(undated)}.")
    passages = {c.passage.chunk_id or c.source: c.passage for c in citations}.values()
    return Answer.of_lines(question, lines, citations, passages=passages, resolved_question=resolved_question, notice=" ".join(notes), score=1.0)


def _years(metas: list[ReportMeta]) -> str:
    years = sorted({m.year for m in metas if m.year})
    if not years:
        return "undated"
    return str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"


NAMED_IN_NOTICE = 3  # councils with several reports that a notice names one by one


def scope_notice(scope: Scope, reports: dict[str, ReportMeta]) -> str:
    """What the user should know about the reports an answer was drawn from (or ""): councils
    with none of the time asked about, and councils with several reports in scope.

    The default for a question about a council with several reports that names no time: all of
    them are searched, each line labelled with its report's date, newest first, and this says so.
    """
    by_council: dict[str, list[ReportMeta]] = {}
    for rid in {rid for g in scope.groups for rid in g}:
        by_council.setdefault(reports[rid].authority, []).append(reports[rid])
    several = [(a, ms) for a, ms in sorted(by_council.items()) if len(ms) > 1]
    notes = [scope.note] if scope.note else []
    if several and scope.changed:
        notes.append("Each report is searched on its own and its lines are shown side by side, oldest first.")
    elif several:
        if len(several) > NAMED_IN_NOTICE:  # a sentence, not a roll call of every council
            ms = [m for _, group in several for m in group]
            parts = [f"{len(ms):,} reports of {len(several)} councils ({_years(ms)})"]
        else:
            parts = [f"{len(ms)} reports of {short_name(a) or 'no known council'} ({_years(ms)})" for a, ms in several]
        notes.append(
            f"This answer draws on {' and '.join(parts)}: each line names the report's date, newest first. "
            "Ask about “the latest inspection” or a year (“in 2018”) to narrow it."
        )
    return " ".join(notes)


def with_scope_notice(answer: Answer, scope: Scope, reports: dict[str, ReportMeta]) -> Answer:
    """``answer`` with :func:`scope_notice` added to its notice (abstentions and date lists left alone)."""
    if answer.abstained:
        return replace(answer, notice=" ".join(x for x in (answer.notice, scope.note) if x)) if scope.note and not scope.empty else answer
    notice = scope_notice(scope, reports)
    if not notice or notice in answer.notice:
        return answer
    return replace(answer, notice=" ".join(x for x in (answer.notice, notice) if x))
