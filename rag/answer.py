"""The default answerer: no LLM, it quotes the report sentences that answer the question.

Each candidate sentence of the retrieved passages is scored by its embedding similarity to the
question, its passage's similarity, and the share of the question's (IDF-weighted) terms it holds.
The best sentence, with the rest of its finding or the sentence that completes it, makes the
answer, plus other passages' sentences that score nearly as well; each ends in a ``[n]`` marker.
The best score is the evidence score: under the calibrated threshold the answerer abstains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.store import IndexStore
from index.text import stems, terms
from rag.pages import page_fields
from rag.retrieval import Retrieval
from rag.timescope import line_groups
from rag.types import Answer, Citation, Passage

# Calibrated on eval/qa.jsonl with `arolwg eval` (threshold sweep); see README "Evaluation".
DEFAULT_THRESHOLD = 0.5
W_SENT, W_PASSAGE, W_TERMS = 0.45, 0.2, 0.35
MAX_SENTENCES = 4
MAX_CHARS = 700
NEAR_BEST = 0.1  # other passages' sentences this close to the best one join the answer
EXTEND = 0.4  # following sentences of the same passage join while this close to the best
EXTEND_MAX = 3  # sentences from the best passage at most
NEW_TERMS = 6  # an answer adding fewer new words than this to the question only restates it

_COUNT_Q = re.compile(r"\b(how many|how much|what number|what percentage|how long|how often|what proportion|how big)\b", re.I)
_DATE_Q = re.compile(r"\b(when|what date|which date|what year|which year|what month|which month)\b", re.I)
# A count, not a year: "32 case files", "seven working days"; "2020" answers "when", not "how many".
_NUMBER = re.compile(r"\b(?!(?:19|20)\d{2}\b)(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty)\b", re.I)
_DATE = re.compile(r"\b(19|20)\d{2}\b|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")
_NUMBERED = re.compile(r"^\s*\(?\d{1,2}[.)]\s")

_COUNTED = re.compile(r"\bhow many\s+((?:[\w'’-]+\s+){0,4}?[\w'’-]+?)(?=\s+(?:did|do|does|were|was|are|is|have|has|had|will|would|can|could|in|of|at|for|on|to|about|with|from|by|that|who|which|[a-z]+ed)\b|\s*[?,]|$)", re.I)

# Questions that ask who holds a post want a person's name: "the name of the Chief Executive",
# "Who is the chief executive of Wrexham?", "Who has been appointed as director?".
_NAME_Q = re.compile(
    r"\bnames?\s+of\b|\bwho\s+(?:is|was|are|were)\s+(?:called|named|the|its|their|(?-i:[A-Z])[\w-]*(?:'s|’s))\b"
    r"|\bwho\s+(?:has|have|had)\s+been\s+(?:appointed|named|made)\b",
    re.I,
)
# Capitalised words of titles and bodies, which name a role, not who holds it.
_TITLE_WORDS = frozenset(
    """chief executive officer director head manager member members cabinet council councillor borough
    county city board health university government assembly senedd minister secretary leader chair
    deputy interim corporate service services department directorate authority inspectorate wales
    welsh england british national public mr mrs ms dr""".split()
) | frozenset(m.lower() for m in "January February March April May June July August September October November December".split())
_CAPS = re.compile(r"\b[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*\b")

NOT_SAID = "The reports do not say."
W_UNKNOWN = 0.3  # evidence lost when all of the question's words are unknown to the reports
COUNT_MISSING = 0.15  # evidence lost when a "how many" answer counts nothing asked about, or a name is missing
COUNT_BONUS = 0.08  # sentence score for holding a count, when the question asks "how many"


@dataclass(frozen=True)
class Scored:
    row: int  # sentence row in the store
    passage: Passage
    group: int
    score: float


def score_sentences(
    store: IndexStore,
    retrieval: Retrieval,
    question: str,
    *,
    focus: str = "",
    focus_vec: np.ndarray | None = None,
) -> list[Scored]:
    """Every sentence of the retrieved passages, scored against the question, best first.

    ``focus`` is what a follow-up newly asks ("adults" in "And for adults?"): it weighs as much
    as the whole resolved question, so the answer is about the new point.
    """
    idf = store.idf()
    q_terms, f_terms = content_terms(question), set(terms(focus)) if focus else set()
    # A term's weight (its IDF, at least 0.1) per question, not per sentence: a comparison of many
    # councils scores about 500 sentences.
    weight = {t: max(idf.get(t, 0.0), 0.1) for t in q_terms | f_terms}
    q_total, f_total = sum(weight[t] for t in q_terms), sum(weight[t] for t in f_terms)
    want_number, what, want_date = bool(_COUNT_Q.search(question)), counted(question), bool(_DATE_Q.search(question))
    listed = [(gi, p, store.sent_rows.get(p.chunk_id, [])) for gi, group in enumerate(retrieval.groups) for p in group]
    all_rows = [row for _, _, rows in listed for row in rows]
    vecs = store.gen.sent_vecs[all_rows] if all_rows else np.zeros((0, len(retrieval.qvec)), "float32")
    # Each row's product on its own (a matrix product's rounding depends on a row's place in the
    # batch): copies of a sentence in several reports tie, and ties go to the newest report.
    sims = (vecs * retrieval.qvec).sum(1)
    if focus_vec is not None:
        sims = 0.5 * sims + 0.5 * (vecs * focus_vec).sum(1)
    out: list[Scored] = []
    for (gi, p, rows), start in zip(listed, np.cumsum([0] + [len(r) for _, _, r in listed])):
        for row, sim in zip(rows, sims[start : start + len(rows)]):
            s = store.gen.sentences[row]
            s_terms = set(terms(s.text))
            lex = sum(weight[t] for t in q_terms & s_terms) / q_total if q_terms else 0.0
            if f_terms:
                lex = 0.4 * lex + 0.6 * sum(weight[t] for t in f_terms & s_terms) / f_total
            score = W_SENT * float(sim) + W_PASSAGE * p.similarity + W_TERMS * lex
            if want_number:
                # A count of what was asked about beats any number ("32 children's case
                # files" over "4 complaints" for "how many case files").
                score += COUNT_BONUS if has_count(s.text, what) else COUNT_BONUS / 2 if _NUMBER.search(s.text) else -COUNT_BONUS
            if want_date:
                score += 0.08 if _DATE.search(s.text) else -0.04
            if len(s.text) < 25:  # fragments answer nothing on their own
                score -= 0.1
            out.append(Scored(row, p, gi, score))
    out.sort(key=lambda x: -x.score)
    return out


# Words that frame a question ("What did the inspectors find about ...", "What does the report
# say on ...") rather than say what it is about: a sentence is no better an answer for holding them.
FRAME_TERMS = frozenset(terms("find found finds finding findings report reports reported inspector inspectors note noted mention mentioned describe described"))


def content_terms(question: str) -> set[str]:
    """The question's terms less its framing words (all of them, if nothing else is left).

    >>> sorted(content_terms("What did the inspectors find about supervision?"))
    ['supervis']
    """
    q = set(terms(question))
    return (q - FRAME_TERMS) or q


def counted(question: str) -> set[str]:
    """What a "how many" question counts, as terms: the words between "how many" and its verb.

    >>> sorted(counted("How many staff supervision files did CIW review?"))
    ['file', 'staff', 'supervis']
    >>> counted("How many of those were interviewed?")
    set()
    """
    m = _COUNTED.search(question)
    return set(terms(m.group(1))) if m else set()


def has_count(text: str, what: set[str]) -> bool:
    """A count of ``what`` in one sentence: a number, and every word of what is counted."""
    return bool(_NUMBER.search(text)) and what <= set(terms(text))


def _extent(
    best: Scored, by_row: dict[int, Scored], store: IndexStore, q_terms: set[str], counted_terms: set[str] | None = None
) -> list[int]:
    """The best sentence plus what completes it: the rest of a numbered finding (they are short
    and their later sentences carry the detail), or a following sentence that scores nearly as well.
    ``counted_terms``: what a "how many" question counts; a best sentence that gives that count
    is complete on its own."""
    rows = store.sent_rows[best.passage.chunk_id]
    i = rows.index(best.row)
    if counted_terms is not None and has_count(store.gen.sentences[best.row].text, counted_terms):
        return [best.row]
    if _NUMBERED.match(best.passage.text) and len(rows) <= 3:
        return list(rows)
    out = [best.row]
    chars = len(store.gen.sentences[best.row].text)
    for row in rows[i + 1 :]:
        nxt = by_row.get(row)
        n = len(store.gen.sentences[row].text)
        # A sentence that mostly repeats the question ("Safely reducing the number of children
        # looked after is recognised as a priority") leads into the answer: take the next one too.
        restates = len(_new_terms(out, q_terms, store)) < NEW_TERMS
        close = nxt is not None and nxt.score >= best.score - EXTEND
        if len(out) >= EXTEND_MAX + restates or nxt is None or not (close or restates) or chars + n > MAX_CHARS:
            break
        out.append(row)
        chars += n
    return out


def _new_terms(rows: list[int], q_terms: set[str], store: IndexStore) -> set[str]:
    """Content words the sentences add to the question."""
    return {t for r in rows for t in terms(store.gen.sentences[r].text)} - q_terms


def _pick(scored: list[Scored], store: IndexStore, limit: int, q_terms: set[str], counted_terms: set[str] | None = None) -> list[int]:
    """Sentence rows for the answer, best passage first, in reading order within a passage."""
    if not scored:
        return []
    by_row = {s.row: s for s in scored}
    best = scored[0]
    chosen = _extent(best, by_row, store, q_terms, counted_terms)
    chars = sum(len(store.gen.sentences[r].text) for r in chosen)
    for s in scored[1:]:
        if len(chosen) >= limit or s.score < best.score - NEAR_BEST:
            break
        if s.row in chosen:
            continue
        v = store.gen.sent_vecs[s.row]
        if any(float(v @ store.gen.sent_vecs[r]) > 0.9 for r in chosen):
            continue  # the same point made twice (the reports repeat themselves)
        n = len(store.gen.sentences[s.row].text)
        if chars + n > MAX_CHARS:
            break
        chosen.append(s.row)
        chars += n
    # Keep each passage's sentences in the order the report has them.
    order = {r: k for k, r in enumerate(chosen)}
    first_of = {}
    for r in chosen:
        cid = store.gen.sentences[r].chunk_id
        first_of.setdefault(cid, order[r])
    return sorted(chosen, key=lambda r: (first_of[store.gen.sentences[r].chunk_id], r))


def has_name(text: str, common: frozenset[str]) -> bool:
    """Two capitalised words in a row that the reports never write in lower case: a proper name
    ("Betsi Cadwaladr"), not a title in capitals ("Chief Executive Officer")."""
    toks = list(_CAPS.finditer(text))
    for a, b in zip(toks, toks[1:]):
        pair = [a.group().lower(), b.group().lower()]
        if text[a.end() : b.start()].strip() == "" and not set(pair) & _TITLE_WORDS and all(st not in common for st in stems(pair)):
            return True
    return False


def evidence_score(store: IndexStore, question: str, focus: str, best: float, rows: list[int]) -> float:
    """How well the chosen sentences answer the question: the best sentence's score, less what
    the question asks that the reports never mention (e.g. a "budget" in reports that give none;
    not its framing words: "mention" in "Which reports mention advocacy?" asks nothing of them),
    less a missing count of what a "how many" question counts, less a missing name when one
    is asked for."""
    idf = store.idf()
    q_terms = set(terms(focus)) if focus else content_terms(question)
    if q_terms and idf:
        floor = min(idf.values())
        weight = {t: idf.get(t, max(idf.values())) - floor + 0.1 for t in q_terms}
        unknown = sum(w for t, w in weight.items() if t not in idf) / sum(weight.values())
        best -= W_UNKNOWN * unknown
    if _COUNT_Q.search(question):
        what = counted(question)
        # "How many children are looked after?" is not answered by "a sample of 4 complaints".
        if not any(has_count(store.gen.sentences[r].text, what) for r in rows):
            best -= COUNT_MISSING
    if _NAME_Q.search(question) and not any(has_name(store.gen.sentences[r].text, store.common_stems()) for r in rows):
        best -= COUNT_MISSING  # "the name of the Chief Executive" needs a name as "how many" needs a count
    return best


def cite(store: IndexStore, row: int, passage: Passage, n: int) -> tuple[Citation, str]:
    """Citation ``n`` of sentence ``row`` (its quote verbatim from the source), and the sentence as
    the answer shows it, ending in ``[n]``."""
    sent = store.gen.sentences[row]
    text = store.source_text(passage.source)
    citation = Citation(
        n, passage.source, passage.title, passage.authority, passage.section, text[sent.start : sent.end], sent.start, sent.end,
        passage, **page_fields(passage.source, text, sent.start, sent.end),
    )
    return citation, f"{' '.join(sent.text.split())} [{n}]"  # a wrapped title reads as one line


def _abstain(question: str, retrieval: Retrieval, resolved: str, score: float, why: str = "") -> Answer:
    return Answer(
        question=question,
        text=f"{NOT_SAID} {why or 'None of the passages found answers this question closely enough; the closest are listed below.'}",
        citations=(),
        abstained=True,
        passages=retrieval.passages,
        resolved_question=resolved or question,
        score=round(score, 4),
    )


def extractive_answer(
    question: str,
    retrieval: Retrieval,
    store: IndexStore,
    *,
    resolved_question: str = "",
    focus: str = "",
    focus_vec: np.ndarray | None = None,
    threshold: float | None = None,
) -> Answer:
    """Compose an answer from the best sentences of the retrieved passages, or abstain."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    resolved = resolved_question or question
    if retrieval.scope.unanswered:  # a council no report covers, or no report of the time asked about
        return _abstain(question, retrieval, resolved, 0.0, retrieval.scope.unanswered)
    scored = score_sentences(store, retrieval, retrieval.scope.search_text, focus=focus, focus_vec=focus_vec)
    q_terms = set(terms(retrieval.scope.search_text)) | set(terms(focus))
    if not scored:
        return _abstain(question, retrieval, resolved, 0.0)
    # A "how many" answer that states the count needs no context; other answers take their finding's detail.
    how_many = counted(retrieval.scope.search_text) if _COUNT_Q.search(retrieval.scope.search_text) and not focus else None
    if retrieval.scope.comparison:
        picks_by_group = [_pick([s for s in scored if s.group == gi], store, 2, q_terms, how_many) for gi in range(len(retrieval.groups))]
    else:
        picks_by_group = [_pick(scored, store, MAX_SENTENCES, q_terms, how_many)]
    evidence = evidence_score(store, retrieval.scope.search_text, focus, scored[0].score, [r for g in picks_by_group for r in g])
    if evidence < threshold:
        return _abstain(question, retrieval, resolved, evidence)

    by_row = {s.row: s for s in scored}
    # Each line says whose words it holds: its council when several are searched, and its
    # report's date when a council has several reports, so the answer read alone never puts
    # one council's finding on another, nor an old finding for a current one.
    picks_by_group, labels = line_groups(retrieval.scope, store.reports, picks_by_group, lambda r: by_row[r].passage.source)
    citations: list[Citation] = []
    lines: list[str] = []
    for gi, rows in enumerate(picks_by_group):
        parts: list[str] = []
        for row in rows:
            citation, shown = cite(store, row, by_row[row].passage, len(citations) + 1)
            citations.append(citation)
            parts.append(shown)
        if not parts:
            continue
        lines.append((f"{labels[gi]}: " if labels[gi] else "") + " ".join(parts))
    return Answer.of_lines(question, lines, citations, passages=retrieval.passages, resolved_question=resolved, score=round(evidence, 4))
