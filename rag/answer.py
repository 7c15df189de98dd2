"""The default answerer: no LLM, it quotes the report sentences that answer the question.

Each candidate sentence of the retrieved passages is scored by its embedding similarity to the
question, its passage's similarity, and the share of the question's (IDF-weighted) terms it holds.
The best sentences, each with a ``[n]`` marker, make the answer; the best score is the evidence
score, compared with the calibrated threshold to abstain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.meta import short_name
from index.store import IndexStore
from index.text import terms
from rag.retrieval import Retrieval
from rag.types import Answer, Citation, Passage

# Calibrated on eval/qa.jsonl with `arolwg eval` (threshold sweep); see README "Evaluation".
DEFAULT_THRESHOLD = 0.45
MAX_SENTENCES = 3
W_SENT, W_PASSAGE, W_TERMS = 0.45, 0.2, 0.35

_COUNT_Q = re.compile(r"\b(how many|how much|what number|what percentage|how long|how often|what proportion)\b", re.I)
_DATE_Q = re.compile(r"\b(when|what date|which date|what year|which year|what month|which month)\b", re.I)
_NUMBER = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty)\b", re.I)
_DATE = re.compile(r"\b(19|20)\d{2}\b|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")

NOT_SAID = "The reports do not say."


@dataclass(frozen=True)
class Scored:
    row: int  # sentence row in the store
    passage: Passage
    group: int
    score: float


def _idf(store: IndexStore) -> dict[str, float]:
    bm = store.bm25()
    return dict(bm.idf) if bm is not None else {}


def score_sentences(store: IndexStore, retrieval: Retrieval, question: str) -> list[Scored]:
    """Every sentence of the retrieved passages, scored against the question, best first."""
    idf = _idf(store)
    q_terms = set(terms(question))
    q_weight = sum(max(idf.get(t, 0.0), 0.1) for t in q_terms) or 1.0
    want_number = bool(_COUNT_Q.search(question))
    want_date = bool(_DATE_Q.search(question))
    out: list[Scored] = []
    for gi, group in enumerate(retrieval.groups):
        for p in group:
            rows = store.sent_rows.get(p.chunk_id, [])
            if not rows:
                continue
            sims = store.gen.sent_vecs[rows] @ retrieval.qvec
            for row, sim in zip(rows, sims):
                s = store.gen.sentences[row]
                s_terms = set(terms(s.text))
                overlap = sum(max(idf.get(t, 0.0), 0.1) for t in q_terms & s_terms) / q_weight
                score = W_SENT * float(sim) + W_PASSAGE * p.similarity + W_TERMS * overlap
                if want_number and _NUMBER.search(s.text):
                    score += 0.05
                if want_date and _DATE.search(s.text):
                    score += 0.05
                if len(s.text) < 25:  # fragments ("The local") answer nothing on their own
                    score -= 0.1
                out.append(Scored(row, p, gi, score))
    out.sort(key=lambda x: -x.score)
    return out


def _pick(scored: list[Scored], store: IndexStore, limit: int) -> list[Scored]:
    if not scored:
        return []
    best = scored[0].score
    chosen: list[Scored] = []
    for s in scored:
        if len(chosen) >= limit or s.score < best - 0.06:
            break
        v = store.gen.sent_vecs[s.row]
        if any(float(v @ store.gen.sent_vecs[c.row]) > 0.9 for c in chosen):
            continue  # the same point made twice (the reports repeat themselves)
        chosen.append(s)
    return chosen


def extractive_answer(
    question: str,
    retrieval: Retrieval,
    store: IndexStore,
    *,
    resolved_question: str = "",
    threshold: float | None = None,
) -> Answer:
    """Compose an answer from the best sentences of the retrieved passages, or abstain."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    scored = score_sentences(store, retrieval, retrieval.scope.text)
    evidence = scored[0].score if scored else 0.0
    passages = retrieval.passages
    if not scored or evidence < threshold:
        return Answer(
            question=question,
            text=NOT_SAID + " None of the passages found answers this question closely enough; the closest are listed below.",
            citations=(),
            abstained=True,
            passages=passages,
            resolved_question=resolved_question or question,
            score=round(evidence, 4),
        )
    if retrieval.scope.comparison:
        picks_by_group = []
        for gi in range(len(retrieval.groups)):
            g_scored = [s for s in scored if s.group == gi]
            picks_by_group.append(_pick(g_scored, store, 2))
    else:
        picks_by_group = [_pick(scored, store, MAX_SENTENCES)]

    citations: list[Citation] = []
    lines: list[str] = []
    for gi, picks in enumerate(picks_by_group):
        parts: list[str] = []
        for s in picks:
            sent = store.gen.sentences[s.row]
            src = store.source_text(s.passage.source)
            n = len(citations) + 1
            citations.append(
                Citation(
                    n=n,
                    source=s.passage.source,
                    title=s.passage.title,
                    authority=s.passage.authority,
                    section=s.passage.section,
                    quote=src[sent.start : sent.end],
                    start=sent.start,
                    end=sent.end,
                    passage=s.passage,
                )
            )
            parts.append(f"{sent.text} [{n}]")
        if not parts:
            continue
        if retrieval.scope.comparison:
            lines.append(f"{short_name(retrieval.scope.labels[gi])}: " + " ".join(parts))
        else:
            lines.append(" ".join(parts))
    return Answer(
        question=question,
        text="\n".join(lines),
        citations=tuple(citations),
        abstained=False,
        passages=passages,
        resolved_question=resolved_question or question,
        score=round(evidence, 4),
    )
