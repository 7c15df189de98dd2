"""Broad questions answered from the reports' own structure, not by sentence matching.

"What are the strengths of Wrexham adult services?" or "What must Wrexham improve?" ask for a
whole section of a report, not one sentence: the report already answers them under its
"Strengths" and "What needs to improve" headings. Such a question gets the headline sentence of
every finding the report files there (for the service area or principle asked about), each
cited. A report written as prose answers "what needs to improve" with its "must" and "should"
sentences, which is how CIW words its requirements. Questions about anything narrower ("What must
Wrexham improve about carers' assessments?"), and strengths in a report without such headings, go
to the ordinary answerer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.meta import short_name
from index.store import IndexStore
from index.text import terms
from index.types import Chunk
from rag.answer import cite
from rag.retrieval import Retrieval, to_passage
from rag.timescope import dated_labels, newest_first, report_label
from rag.types import Answer, Citation, Passage


@dataclass(frozen=True)
class _Kind:
    asks: re.Pattern  # the question asks for this kind of section
    heading: re.Pattern  # a report heading of this kind
    name: str  # how the notice names it
    requirements: bool = False  # without such headings, list the report's "must"/"should" sentences


KINDS = (
    _Kind(
        re.compile(r"\b(strengths?|good practice|(?:going|working|done) well|positives?)\b", re.I),
        re.compile(r"^strengths\b", re.I),
        "Strengths",
    ),
    _Kind(
        # "must improve", not "did improve" or "improvements made", which ask what got better.
        re.compile(
            r"\b(?:(?:must|should|needs?\s+to|has\s+to|have\s+to)\s+(?:[\w'’]+\s+){0,3}?improve"
            r"|areas?\s+for\s+(?:improvement|development)|improvements?\s+(?:needed|required)"
            r"|recommendations?|priorities|weakness(?:es)?)\b",
            re.I,
        ),
        re.compile(r"^(what needs to improve|areas? for (?:improvement|development)|priorities for improvement)\b", re.I),
        "What needs to improve",
        requirements=True,
    ),
)

# Words that leave a question as broad as the section it asks for: the trigger words themselves,
# how a question is framed, and the service areas (which narrow the sections, see _service).
_BROAD = frozenset(
    terms(
        """strength strengths good practice going working done well positive positives improve improvements
        improvement area areas development recommendation recommendations priority priorities weakness weaknesses
        must need needs main key overall list find found findings report inspectors inspection
        make give identify identified ciw
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
    >>> outline_kind("What improvements have been made?") is None  # what got better, not what must
    True
    """
    kinds = [k for k in KINDS if k.asks.search(text)]
    if len(kinds) != 1 or set(terms(text)) - _BROAD:
        return None
    return kinds[0]


def _service(text: str) -> re.Pattern | None:
    child, adult = bool(_CHILD.search(text)), bool(_ADULT.search(text))
    return _CHILD if child and not adult else _ADULT if adult and not child else None


def service_of(text: str) -> str:
    """"children" or "adults" when ``text`` names that service area only, else "".

    >>> service_of("Children's Social Services: Risk Based Inspection"), service_of("adults and children")
    ('children', '')
    """
    found = _service(text)
    return "children" if found is _CHILD else "adults" if found is _ADULT else ""


def _wanted(section: tuple[str, ...], text: str) -> bool:
    """The finding's headings fit the service area and principles the question names, if any."""
    where = " ".join(section)
    service = _service(text)
    if service is not None and not service.search(where):
        return False
    asked = [p for p in PRINCIPLES if p.search(text)]
    return not asked or any(p.search(where) for p in asked)


@dataclass(frozen=True)
class Item:
    """One listed sentence: a finding's headline, or a requirement ("must", "should")."""

    chunk: Chunk
    row: int  # the sentence's row in the store
    area: tuple[str, ...]  # the headings it is listed under


# How CIW words what needs to improve in reports written as prose, without such headings.
_REQUIREMENT = re.compile(r"\b(?:must|should)\b", re.I)
_PREAMBLE = re.compile(r"^(?:title page|introduction|method(?:ology)?|contents|about this report)$", re.I)


def from_headings(store: IndexStore, report_id: str, kind: _Kind, text: str = "") -> list[Item]:
    """The findings a report files under ``kind``'s headings (those ``text`` asks for; all when
    it names no service or principle), in report order. Also used by :mod:`rag.findings`."""
    return [
        Item(c, store.sent_rows[c.id][0], c.section[:-1])  # a finding's first sentence is its headline
        for c in store.chunks
        if c.report_id == report_id
        and c.section
        and kind.heading.match(c.section[-1])
        and _wanted(c.section[:-1], text)
        and store.sent_rows.get(c.id)
    ]


def from_requirements(store: IndexStore, report_id: str, text: str = "") -> list[Item]:
    """A prose report's "must" and "should" sentences (those ``text`` asks for), in report order.
    Also used by :mod:`rag.findings`."""
    items = []
    for c in store.chunks:
        if c.report_id != report_id or (c.section and _PREAMBLE.match(c.section[0])) or not _wanted(c.section, text):
            continue
        for row in store.sent_rows.get(c.id, []):
            sent = store.gen.sentences[row].text
            if _REQUIREMENT.search(sent) and not sent.rstrip().endswith("?"):
                items.append(Item(c, row, c.section))
    return items


def _spread(items: list[Item], limit: int) -> list[Item]:
    """At most ``limit`` items, taken in turn from each area so every area is represented,
    returned in report order."""
    by_area: dict[tuple[str, tuple[str, ...]], list[Item]] = {}
    for it in items:
        by_area.setdefault((it.chunk.report_id, it.area), []).append(it)
    picked: list[Item] = []
    queues = list(by_area.values())
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    order = {id(it): i for i, it in enumerate(items)}
    return sorted(picked, key=lambda it: order[id(it)])


def outline_answer(question: str, retrieval: Retrieval, store: IndexStore, *, resolved_question: str = "") -> Answer | None:
    """The findings filed under the heading a broad question asks for, or None to answer it
    the ordinary way (a narrower question, or a report that has no such headings)."""
    sc = retrieval.scope
    kind = outline_kind(sc.text)
    if kind is None or sc.bridged:
        return None
    groups: list[list[Item]] = []
    used_requirements = used_headings = False
    for report_ids in sc.groups:
        items: list[Item] = []
        for rid in newest_first(store.reports, report_ids):
            found = from_headings(store, rid, kind, sc.text)
            if found:
                used_headings = True
            elif kind.requirements:
                found = from_requirements(store, rid, sc.text)
                used_requirements = bool(found) or used_requirements
            if not found:
                return None  # every report asked about must answer in its own words, or none is listed
            items.extend(found)
        groups.append(items)
    quoted = {it.chunk.report_id for g in groups for it in g}
    multi = len({store.reports[rid].authority for rid in quoted}) > 1
    dated = dated_labels(store.reports, quoted)  # several reports of a council: say which, by date
    total = sum(len(g) for g in groups)
    per_group = max(1, MAX_ITEMS // len(groups))

    citations: list[Citation] = []
    passages: dict[str, Passage] = {}
    lines: list[str] = []
    current: tuple[str, tuple[str, ...]] | None = None
    for items in groups:
        for it in _spread(items, per_group):
            c = it.chunk
            meta = store.reports[c.report_id]
            where = (report_label(meta) if dated else short_name(meta.authority) if multi else "", it.area)
            if where != current:
                current = where
                # "Adult Social Services: Performance Evaluation Inspection" -> "Adult Social Services"
                head = " › ".join(x.split(":")[0].strip() for x in (where[0], *where[1]) if x)
                lines.append(f"{head}:" if head else "")
            if c.id not in passages:
                passages[c.id] = to_passage(store, store.chunk_pos[c.id], score=1.0, similarity=1.0)
            citation, shown = cite(store, it.row, passages[c.id], len(citations) + 1)
            citations.append(citation)
            lines.append(f"- {shown}")
    shown = len(citations)
    if used_headings and used_requirements:
        notice = (
            f'Listed from the reports\' own "{kind.name}" headings (the first sentence of each finding) and, '
            'for a report without them, its "must" and "should" sentences'
        )
    elif used_headings:
        notice = f'Listed from the reports\' own "{kind.name}" headings: the first sentence of each finding'
    else:
        notice = (
            f'Listed from the report\'s "must" and "should" sentences, the way CIW words what needs to improve '
            f'in a report without "{kind.name}" headings'
        )
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
        passages=tuple(passages.values()),
        resolved_question=resolved_question or question,
        notice=notice,
        score=1.0,
    )
