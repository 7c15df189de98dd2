"""Questions across the corpus: "Which councils ...?", "How many councils ...?", "In which reports
...?", "... across Wales".

Such a question wants a list, not the five best passages of the whole corpus (which may all be one
council's). :func:`rag.scope.scope_question` makes one group per council in scope (``Scope.across``,
no cap on how many); :func:`search_each` searches every group for its own top ``k`` passages in one
batch: one query vector, the sentence and keyword scores of every passage computed once and cut per
council with numpy, the passage (dense) scores too.

:func:`across_answer` scores each council's sentences with the extractive answerer's scoring and
abstention threshold: a council whose best evidence is under the threshold is not listed. The
answer is a count ("2 of the 3 councils' reports answer this") and one cited line per council
listed, labelled with the council, and with the report's date when the index holds several
reports of that council.
"""

from __future__ import annotations

import numpy as np

from index.meta import short_name
from index.store import IndexStore, best_of
from index.text import terms
from rag.answer import DEFAULT_THRESHOLD, Scored, _abstain, _pick, cite, evidence_score, score_sentences
from rag.retrieval import MODES, Retrieval, _fuse, distinct, to_passage
from rag.timescope import line_groups
from rag.types import Answer, Citation, Passage


PER_COUNCIL_REPORTS = 3
HEADS = 1  # the passages each ranking puts first, kept whatever their fused rank


def _top(scores: np.ndarray, positions: np.ndarray, n: int, recency: np.ndarray, *, positive: bool = False) -> list[tuple[int, float]]:
    """The ``n`` best (chunk position, score) among ``positions``, best first (ties: newest report)."""
    s = scores[positions]
    return best_of(positions, np.where(s > 0, s, -np.inf) if positive else s, n, recency)


def search_each(
    store: IndexStore,
    text: str,
    qvec: np.ndarray,
    k: int,
    groups: tuple[tuple[str, ...], ...],
    mode: str = "hybrid",
    candidates: int = 30,
    *,
    listed: bool = True,
) -> tuple[tuple[Passage, ...], ...]:
    """The top ``k`` passages of each group of report ids, as :func:`rag.retrieval.search` finds
    them for one group, computed in one batch: the sentence and BM25 scores of every passage once,
    then each group's best taken from them.

    ``listed`` (a council listed on its one best sentence, :func:`across_answer`): each group's top
    ``k`` from each of up to :data:`PER_COUNCIL_REPORTS` of its reports, and the head of each
    ranking too. Not ``listed`` (a comparison of many councils): each group's top ``k`` alone, as
    a comparison of a few councils searches each one."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    n_chunks = len(store.chunks)
    if not n_chunks:
        return tuple(() for _ in groups)
    sent_best = kw = dense = None
    if mode in ("hybrid", "dense"):
        dense = store.passage_scores(qvec)[1]
    if mode == "hybrid" and len(store.sent_chunk):
        sent_best = store.sentence_scores(qvec)[1]
    if mode in ("hybrid", "bm25"):
        kw = store.keyword_scores(terms(text))
    out: list[tuple[Passage, ...]] = []
    for g in groups:
        pos = store.chunk_positions(list(g))
        rankings: list[list[tuple[int, float]]] = []
        if dense is not None:
            rankings.append(_top(dense, pos, candidates, store.recency))
        if sent_best is not None:
            rankings.append(_top(sent_best, pos, candidates, store.recency))
        if kw is not None:
            rankings.append(_top(kw, pos, candidates, store.recency, positive=True))
        # A council's top k from each of its reports (up to PER_COUNCIL_REPORTS of them): its reports
        # repeat one another, and k passages for all of them would be k copies of one finding.
        everything = distinct(store, _fuse(rankings))
        fused = everything[: k * max(1, min(len(g), PER_COUNCIL_REPORTS))] if listed else everything[:k]
        if listed:
            # Fusing by rank favours a passage every signal ranks fairly well over one that a single
            # signal ranks first (a name such as "Signs of Safety", which only the keywords catch); a
            # council is listed on its one best sentence, so the head of each ranking is kept too.
            heads, have = {p for r in rankings for p, _ in r[:HEADS]}, {p for p, _ in fused}
            fused += [(p, s) for p, s in everything if p in heads and p not in have]
        out.append(tuple(
            to_passage(store, p, score=round(s, 6), similarity=round(float(store.gen.chunk_vector(p) @ qvec), 6)) for p, s in fused
        ))
    return tuple(out)


def across_answer(
    question: str, retrieval: Retrieval, store: IndexStore, *, resolved_question: str = "", threshold: float | None = None
) -> Answer | None:
    """A question across the corpus answered as a list: one cited line per council whose reports
    answer it (its best evidence at or over the abstention threshold), and a count. None when the
    question is not one across the corpus."""
    sc = retrieval.scope
    if not sc.across:
        return None
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    text = sc.search_text
    scored = score_sentences(store, retrieval, text)
    q_terms = set(terms(text))
    by_group: dict[int, list[Scored]] = {}
    for s in scored:
        by_group.setdefault(s.group, []).append(s)
    kept: list[tuple[int, list[int]]] = []
    best = 0.0
    for gi in range(len(sc.groups)):
        g = by_group.get(gi)
        if not g:
            continue
        rows = _pick(g, store, 1, q_terms)
        ev = evidence_score(store, text, "", g[0].score, rows)
        best = max(best, ev)
        if ev >= threshold:
            kept.append((gi, rows))
    n_all = len(sc.groups)
    councils = "council's reports" if n_all == 1 else "councils' reports"
    if not kept:
        return _abstain(question, retrieval, resolved_question, best,
                        f"None of the {n_all} {councils} searched answers this closely enough; the closest passages are listed below.")
    by_row = {s.row: s for s in scored}
    citations: list[Citation] = []
    lines = [f"{len(kept)} of the {n_all} {councils} answer this:"]
    for gi, rows in kept:
        # One line per council; its report's date too when the index holds several of that council.
        sub_scope = type(sc)(groups=(sc.groups[gi],), labels=(sc.labels[gi],), text=sc.text)
        parts, labels = line_groups(sub_scope, store.reports, [rows], lambda r: by_row[r].passage.source)
        shown: list[str] = []
        for row in parts[0] if parts else rows:
            citation, sentence = cite(store, row, by_row[row].passage, len(citations) + 1)
            citations.append(citation)
            shown.append(sentence)
        label = (labels[0] if labels else "") or short_name(sc.labels[gi]) or sc.labels[gi]
        lines.append(f"- {label}: {' '.join(shown)}")
    return Answer.of_lines(question, lines, citations, passages=retrieval.passages, resolved_question=resolved_question, score=round(best, 4))
