"""'What changed' questions: "What has changed in Cardiff since 2016?", "What has improved in
Wrexham since the last inspection?".

Such a question compares one council's reports over time. :func:`change_scope` turns the scope of
the council(s) named into one group per report, oldest first, so each report is searched on its
own and the answer is a comparison, report by report in date order, each line cited and labelled
with council and date, as comparisons between councils are answered. "since the last (previous)
inspection" compares a council's latest report with the one before it; a year ("since 2016") keeps
the reports of that time, as for any question.

What each report is searched for is the question's topic (:func:`topic`: the question without its
change frame, council and time); a question with none ("What has changed in Cardiff?") is
answered from each report's summary (:func:`summary_search`). :func:`change_answer` gives each
report a line of its best evidence on the topic, or says it has none.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import replace

import numpy as np

from index.store import best_of
from index.text import terms
from index.types import ReportMeta
from rag.timescope import newest_first, report_label

_CHANGED = re.compile(
    r"\b(?:what|how\s+much|in\s+what\s+ways?)\s+(?:has|have|had)\s+(?P<a>(?:[\w'’]+\s+){0,3}?)"
    r"(?:changed?|improved?|got\s+(?:better|worse)|deteriorated|progressed|moved\s+on)\b"
    r"|\bhow\s+(?:has|have)\s+(?P<b>(?:[\w'’]+\s+){0,6}?)(?:changed|improved|progressed|developed)\b"
    r"|\bwhat\s+(?:progress|improvements?|changes?)\s+(?:has|have|had|did|does|is|are|was|were)\b",
    re.I,
)
# Words left by a change question that say it is about everything, not a topic: "What has
# changed overall?", "What progress has been made since then?".
_GENERAL = frozenset(terms("overall general generally in general since then now made make been anything things much any more"))
_SINCE_LAST = re.compile(
    r"\s*\bsince\s+(?:(?:the|its|their|CIW's|CIW’s)\s+)?(?:last|previous|earlier|prior|latest|most\s+recent)\s+"
    r"(?:inspection|report|visit)s?\b",
    re.I,
)


def asks_change(question: str) -> bool:
    """Does the question ask what changed over time?

    >>> asks_change("What has changed in Cardiff since 2016?"), asks_change("What has improved in Wrexham since the last inspection?")
    (True, True)
    >>> asks_change("What must improve about supervision in Wrexham?")
    False
    """
    return bool(_CHANGED.search(question))


# Words that compare one state with another: with one council named whose reports in scope are
# several, they ask how its inspections differ ("Has Wrexham got better at ...?", "Cardiff's
# supervision records - better or worse between the two inspections?", "more or fewer case files in
# 2020 than in 2016?"). "must improve" asks for a finding, not a comparison, and is not one of them.
_COMPARES = re.compile(
    r"\b(?:better|worse|more\s+or\s+(?:fewer|less)|fewer|different|differences?|differ|"
    r"compar(?:e|ed|es|ing|ison)|versus|vs\.?|trend|progressed|deteriorated|improved|changed|"
    r"(?:stayed|remained)\s+the\s+same|moved)\b",
    re.I,
)


def compares_over_time(question: str) -> bool:
    """Does the question compare two states of something (asked of one council, a comparison of
    its inspections over time)?

    >>> compares_over_time("Has Wrexham got better at keeping children safe since 2016?")
    True
    >>> compares_over_time("Did inspectors look at more or fewer case files in 2020 than in 2016?")
    True
    >>> compares_over_time("What must Wrexham improve about carers' assessments?")
    False
    """
    return bool(_COMPARES.search(question))


def since_last(question: str) -> tuple[str, bool]:
    """The question without "since the last inspection", and whether it said so."""
    new = _SINCE_LAST.sub("", question)
    return new, new != question


def topic(text: str) -> str:
    """What a change question asks about, once the council and time are out of it: the question
    without its change frame, or "" when nothing but the frame is left.

    >>> topic("How has safeguarding of children changed?"), topic("What has improved in children's services?")
    ('safeguarding of children', "children's services")
    >>> topic("What has changed in ?"), topic("What progress has been made overall?")
    ('', '')
    """
    bare = _CHANGED.sub(lambda m: f" {m['a'] or m['b'] or ''} ", text)
    bare = _COMPARES.sub(" ", bare)  # "better or worse", "compared with": how, not what
    bare = re.sub(r"\s+", " ", bare).strip(" ?.!,;:")
    # Prepositions left dangling where the council or time was: "advocacy for children in".
    preps = r"(?:in|for|of|on|about|at|with|to|within)"
    bare = re.sub(rf"^(?:{preps}\s+)+|(?:\s+{preps})+$", "", bare, flags=re.I)
    return bare if set(terms(bare)) - _GENERAL else ""


def change_scope(scope, reports: dict[str, ReportMeta], *, last_two: bool = False):
    """The scope with each named council's reports as groups of their own, oldest first (only the
    latest two of each council when ``last_two``), searched for the question's topic
    (:func:`topic`), or, when it names none, for each report's summary (``Scope.overall``);
    unchanged when no council with several reports in scope is named, or the scope says why it
    cannot be answered."""
    if scope.across or scope.unanswered or not any(scope.labels):
        return scope
    groups: list[tuple[str, ...]] = []
    labels: list[str] = []
    for g in scope.groups:
        ids = newest_first(reports, g)
        if last_two:
            ids = ids[:2]
        for rid in reversed(ids):  # oldest first
            groups.append((rid,))
            labels.append(report_label(reports[rid]))
    if len(groups) == len(scope.groups):
        return scope  # one report per council: nothing to set side by side
    about = topic(scope.text)
    # The change frame ("what has changed") matches every passage that mentions a change, and
    # "improved" every one that says something must improve: the topic alone is searched. With
    # no topic the frame is the text ("What has improved?"): it ranks each report's summary.
    frame = _CHANGED.search(scope.text)
    text = about or (f"{frame[0]}?" if frame else scope.text)
    return replace(scope, groups=tuple(groups), labels=tuple(labels), changed=True, text=text, overall=not about)


# A report's own summary: the headings CIW and councils put over it.
_SUMMARY = re.compile(
    r"(?:executive\s+|overall\s+)?summary(?:\s+of\s+(?:the\s+)?findings)?|overview|key\s+(?:findings|messages)"
    r"|(?:overall\s+|main\s+)?(?:findings|conclusions?)",
    re.I,
)


def summary_search(store, scope, qvec: np.ndarray, k: int, mode: str = "hybrid", candidates: int = 30):
    """Each report's summary passages (under a "Summary", "Overview", "Key findings" ... heading),
    best match to ``qvec`` first, ``k`` at most; a report with no such heading is searched as
    :func:`rag.retrieval.search` searches it."""
    from rag.retrieval import search, to_passage

    is_summary = _summary_mask(store)
    out = []
    for g in scope.groups:
        pos = store.chunk_positions(list(g))
        pos = pos[is_summary[pos]]
        if not len(pos):
            out.append(tuple(search(store, scope.search_text, qvec, k, list(g), mode, candidates)))
            continue
        best = best_of(pos, store.gen.chunk_vecs[pos] @ np.asarray(qvec, dtype="float32"), k)
        out.append(tuple(to_passage(store, p, score=round(sim, 6), similarity=round(sim, 6)) for p, sim in best))
    return tuple(out)


_SUMMARY_MASKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _summary_mask(store) -> np.ndarray:
    """Which of the store's passages sit under a summary heading: worked out once per store (a
    generation's passages never change), not on every question."""
    mask = _SUMMARY_MASKS.get(store)
    if mask is None:
        mask = np.fromiter((any(_SUMMARY.fullmatch(h.strip()) for h in c.section) for c in store.chunks), bool, len(store.chunks))
        _SUMMARY_MASKS[store] = mask
    return mask


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _sentences_of(store, report_ids) -> set[str]:
    """The sentences of these reports, as :func:`_norm` writes them."""
    return {_norm(store.gen.sentences[int(r)].text) for r in store.sentence_positions(list(report_ids))}


def change_answer(question: str, retrieval, store, *, resolved_question: str = "", threshold: float | None = None):
    """A change question answered side by side: one line per report, oldest first, labelled with
    council and date and holding that report's best evidence on the topic (its summary, for a
    question that names none), each sentence cited. A report whose best evidence is under the
    abstention threshold says so instead of quoting something unrelated; none over it is an
    abstention. None when the question is not a change question."""
    from rag.answer import DEFAULT_THRESHOLD, _abstain, _pick, cite, evidence_score, score_sentences
    from rag.types import Answer

    sc = retrieval.scope
    if not sc.changed or sc.unanswered:
        return None
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    text = sc.search_text
    scored = score_sentences(store, retrieval, text)
    q_terms = set(terms(text))
    by_row = {s.row: s for s in scored}
    said = [_sentences_of(store, g) for g in sc.groups]
    picked: list[tuple[str, list[int]]] = []  # (label, rows): no rows when the report has nothing on it
    best = 0.0
    for gi, label in enumerate(sc.labels):
        group = [s for s in scored if s.group == gi]
        top = group[0].score if group else 0.0
        # A sentence that every other report compared holds word for word shows nothing that
        # changed: the report's own words on the topic come first (its evidence score is kept).
        same = set.intersection(*(said[:gi] + said[gi + 1 :]))
        moved = [s for s in group if _norm(store.gen.sentences[s.row].text) not in same]
        if moved and evidence_score(store, text, "", moved[0].score, [moved[0].row]) >= threshold:
            first = {s.row for s in moved}
            group = moved + [s for s in group if s.row not in first]
        rows = _pick(group, store, 2, q_terms) if group else []
        ev = evidence_score(store, text, "", top, rows) if group else 0.0
        best = max(best, ev)
        # A summary is the answer to "what changed" whatever its score: it is what the report concludes.
        summary = sc.overall and bool(group) and any(_SUMMARY.fullmatch(h.strip()) for h in group[0].passage.section)
        picked.append((label, rows if (summary or ev >= threshold) else []))
    resolved = resolved_question or question
    if not any(rows for _, rows in picked):
        return _abstain(question, retrieval, resolved, best,
                        f"None of the {len(sc.groups)} reports searched answers this closely enough; the closest passages are listed below.")
    citations = []
    lines: list[str] = []
    for label, rows in picked:
        shown = []
        for row in rows:
            citation, sentence = cite(store, row, by_row[row].passage, len(citations) + 1)
            citations.append(citation)
            shown.append(sentence)
        lines.append(f"{label}: {' '.join(shown) if shown else 'nothing in this report answers this closely enough.'}")
    return Answer.of_lines(question, lines, citations, passages=retrieval.passages, resolved_question=resolved, score=round(best, 4))
