"""Broad questions answered from the reports' own structure, not by sentence matching.

"What are the strengths of Wrexham adult services?" or "What must Wrexham improve?" ask for a
whole section of a report, not one sentence: the report already answers them under its
"Strengths" and "What needs to improve" headings. Such a question gets the headline sentence of
every finding the report files there (for the service area asked about), each cited. Reports
without those headings, and questions about anything narrower ("What must Wrexham improve about
carers' assessments?"), go to the ordinary answerer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.meta import short_name
from index.store import IndexStore
from index.text import terms
from rag.retrieval import Retrieval
from rag.types import Answer, Citation, Passage


@dataclass(frozen=True)
class _Kind:
    asks: re.Pattern  # the question asks for this kind of section
    heading: re.Pattern  # a report heading of this kind
    name: str  # how the notice names it


KINDS = (
    _Kind(
        re.compile(r"\b(strengths?|good practice|(?:going|working|done) well|positives?)\b", re.I),
        re.compile(r"^strengths\b", re.I),
        "Strengths",
    ),
    _Kind(
        re.compile(
            r"\b(improve|improvements?|areas? for (?:improvement|development)|recommendations?|priorities|weakness(?:es)?)\b",
            re.I,
        ),
        re.compile(r"^(what needs to improve|areas? for (?:improvement|development)|priorities for improvement)\b", re.I),
        "What needs to improve",
    ),
)

# Words that leave a question as broad as the section it asks for: the trigger words themselves,
# how a question is framed, and the service areas (which narrow the sections, see _service).
_BROAD = frozenset(
    terms(
        """strength strengths good practice going working done well positive positives improve improvements
        improvement area areas development recommendation recommendations priority priorities weakness weaknesses
        must need needs main key overall list find found findings report inspectors inspection
        make made give given identify identified ciw
        children child childrens adult adults service services social care council local authority department
        people voice choice control wellbeing well being prevention partnership partnerships integration"""
    )
)
_CHILD = re.compile(r"\bchild(?:ren)?(?:'s|’s)?\b", re.I)
_ADULT = re.compile(r"\badults?(?:'s|’s|')?\b", re.I)
# The four principles of the 2014 Act, which CIW reports use as headings: naming one narrows the list.
PRINCIPLES = (
    re.compile(r"\b(?:people|voice|choice|control)\b", re.I),
    re.compile(r"\bwell-?\s?being\b", re.I),
    re.compile(r"\bprevention\b", re.I),
    re.compile(r"\b(?:partnerships?|integration)\b", re.I),
)
MAX_ITEMS = 16  # findings listed at most, spread over the sections; the notice says how many more


def outline_kind(text: str) -> _Kind | None:
    """The section a broad question asks for, or None for a question about something narrower.

    >>> outline_kind("What must improve in adult services?").name
    'What needs to improve'
    >>> outline_kind("What must improve about carers' assessments?") is None
    True
    """
    kinds = [k for k in KINDS if k.asks.search(text)]
    if len(kinds) != 1 or set(terms(text)) - _BROAD:
        return None
    return kinds[0]


def _service(text: str) -> re.Pattern | None:
    child, adult = bool(_CHILD.search(text)), bool(_ADULT.search(text))
    return _CHILD if child and not adult else _ADULT if adult and not child else None


def _wanted(section: tuple[str, ...], text: str) -> bool:
    """The finding's headings fit the service area and principles the question names, if any."""
    where = " ".join(section)
    service = _service(text)
    if service is not None and not service.search(where):
        return False
    asked = [p for p in PRINCIPLES if p.search(text)]
    return not asked or any(p.search(where) for p in asked)


def _spread(chunks: list, limit: int) -> list:
    """At most ``limit`` chunks, taken in turn from each section so every area is represented,
    returned in report order."""
    by_section: dict[tuple[str, ...], list] = {}
    for c in chunks:
        by_section.setdefault(c.section, []).append(c)
    picked: list = []
    queues = list(by_section.values())
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    order = {c.id: i for i, c in enumerate(chunks)}
    return sorted(picked, key=lambda c: order[c.id])


def outline_answer(question: str, retrieval: Retrieval, store: IndexStore, *, resolved_question: str = "") -> Answer | None:
    """The findings filed under the heading a broad question asks for, or None to answer it
    the ordinary way (a narrower question, or a report that has no such headings)."""
    sc = retrieval.scope
    kind = outline_kind(sc.text)
    if kind is None or sc.bridged:
        return None
    groups: list[tuple[str, list]] = []
    for gi, report_ids in enumerate(sc.groups):
        chunks = [
            c
            for c in store.chunks
            if c.report_id in report_ids
            and c.section
            and kind.heading.match(c.section[-1])
            and _wanted(c.section[:-1], sc.text)
            and store.sent_rows.get(c.id)
        ]
        if not chunks:
            return None  # every council asked about must have the section, or none is listed
        label = sc.labels[gi] if sc.comparison else ""
        groups.append((label, chunks))
    multi = len(groups) > 1 or len({store.reports[c.report_id].authority for _, cs in groups for c in cs}) > 1
    total = sum(len(cs) for _, cs in groups)
    per_group = max(1, MAX_ITEMS // len(groups))

    citations: list[Citation] = []
    passages: list[Passage] = []
    lines: list[str] = []
    for label, chunks in groups:
        current: tuple[str, tuple[str, ...]] | None = None
        for c in _spread(chunks, per_group):
            meta = store.reports[c.report_id]
            where = (short_name(meta.authority) if multi else "", c.section[:-1])
            if where != current:
                current = where
                # "Adult Social Services: Performance Evaluation Inspection" -> "Adult Social Services"
                head = " › ".join(x.split(":")[0].strip() for x in (where[0], *where[1]) if x)
                lines.append(f"{head}:" if head else "")
            row = store.sent_rows[c.id][0]  # a finding's first sentence is its headline
            sent = store.gen.sentences[row]
            p = Passage(c.id, c.report_id, meta.title, meta.authority, c.section, c.text, c.start, c.end, 1.0, 1.0)
            n = len(citations) + 1
            quote = store.source_text(c.report_id)[sent.start : sent.end]
            citations.append(Citation(n, c.report_id, meta.title, meta.authority, c.section, quote, sent.start, sent.end, p))
            passages.append(p)
            lines.append(f"- {' '.join(sent.text.split())} [{n}]")
    shown = len(citations)
    notice = f"Listed from the reports' own \"{kind.name}\" headings: the first sentence of each finding"
    notice += (
        f" ({shown} of {total}: name a service or a principle, such as adult services or well-being, for the rest)."
        if shown < total
        else f" ({total})."
    )
    return Answer(
        question=question,
        text="\n".join(line for line in lines if line),
        citations=tuple(citations),
        abstained=False,
        passages=tuple(passages),
        resolved_question=resolved_question or question,
        notice=notice,
        score=1.0,
    )
