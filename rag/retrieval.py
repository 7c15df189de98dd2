"""Hybrid retrieval: dense passage (Chroma), dense sentence and BM25 rankings fused by reciprocal rank."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from index.store import IndexStore
from index.text import terms
from index.vocab import bridge
from rag.pages import page_fields
from rag.scope import MAX_COMPARED, Scope, scope_question
from rag.types import Passage

MODES = ("hybrid", "dense", "bm25")
log = logging.getLogger(__name__)
RRF_K = 60  # the usual constant: damps the head of each ranking so neither list dominates


@dataclass(frozen=True)
class Retrieval:
    """Passages plus what the answerer needs to score sentences without recomputing."""

    passages: tuple[Passage, ...]
    scope: Scope
    qvec: np.ndarray
    groups: tuple[tuple[Passage, ...], ...]  # passages per scope group (comparisons)
    seconds: dict[str, float]


def _fuse(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (pos, _) in enumerate(ranking):
            fused[pos] = fused.get(pos, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def distinct(store: IndexStore, fused: list[tuple[int, float]], n: int | None = None) -> list[tuple[int, float]]:
    """The first ``n`` (all, if None) of a ranking, less passages whose words an earlier one
    already has: a council's reports repeat one another word for word, and k copies of one
    passage are one passage. The copy kept is the best ranked (on a tie, the newest report's)."""
    seen: set[str] = set()
    out: list[tuple[int, float]] = []
    for pos, score in fused:
        text = store.chunks[pos].text
        if text not in seen:
            seen.add(text)
            out.append((pos, score))
            if len(out) == n:
                break
    return out


def search(
    store: IndexStore,
    text: str,
    qvec: np.ndarray,
    k: int,
    report_ids: list[str] | None,
    mode: str = "hybrid",
    candidates: int = 30,
) -> list[Passage]:
    """The top ``k`` passages for ``text`` within ``report_ids`` (None: all)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    rankings: list[list[tuple[int, float]]] = []
    if mode in ("hybrid", "dense"):
        rankings.append(store.dense_search(qvec, candidates, report_ids))
    if mode == "hybrid":
        rankings.append(store.sentence_search(qvec, candidates, report_ids))
    if mode in ("hybrid", "bm25"):
        rankings.append(store.keyword_search(terms(text), candidates, report_ids))
    fused = distinct(store, _fuse(rankings), k)
    return [to_passage(store, pos, score=round(score, 6), similarity=round(float(store.gen.chunk_vector(pos) @ qvec), 6)) for pos, score in fused]


def to_passage(store: IndexStore, pos: int, *, score: float, similarity: float) -> Passage:
    """The chunk at ``pos`` of the store as a Passage, with its report's title and authority and,
    for a PDF, its pages."""
    c = store.chunks[pos]
    meta = store.reports[c.report_id]
    return Passage(
        chunk_id=c.id,
        source=c.report_id,
        title=meta.title,
        authority=meta.authority,
        dates=meta.dates_shown,  # "(dated by hand)" when a user set them: a citation says so
        section=c.section,
        text=c.text,
        start=c.start,
        end=c.end,
        score=score,
        similarity=similarity,
        **page_fields(c.report_id, lambda: store.source_text(c.report_id), c.start, c.end),
    )


def retrieve_scoped(
    store: IndexStore,
    embeddings,
    question: str,
    *,
    k: int,
    filters: dict | None = None,
    mode: str = "hybrid",
    scope: bool = True,
    candidates: int = 30,
) -> Retrieval:
    """Scope the question to the councils it names, then search each scope group."""
    t0 = time.perf_counter()
    sc = scope_question(question, store.reports, filters, enabled=scope)
    bridges = bridge(sc.text, store.gen.vocab, store.gen.vocab_vecs, embeddings.embed_documents)
    if any(b.neighbours for b in bridges):
        log.debug("bridged %s", {b.word: b.neighbours for b in bridges})
        sc = replace(sc, bridged=tuple(w for b in bridges for w, _ in b.neighbours))
    qvec = np.asarray(embeddings.embed_query(sc.search_text), dtype="float32")
    t1 = time.perf_counter()
    # Each council of a comparison is searched as deeply as a single-council question: its
    # answer is drawn from its own group; the merged list keeps the head of each group.
    if sc.overall:  # "What has changed in X?" with no topic: each report's summary (rag.changes)
        from rag.changes import summary_search

        groups = summary_search(store, sc, qvec, k, mode, candidates)
    elif sc.across or (not sc.changed and len(sc.groups) > MAX_COMPARED):
        from rag.across import search_each  # every council of the corpus, or many: one batched search

        groups = search_each(store, sc.search_text, qvec, k, sc.groups, mode, candidates, listed=sc.across)
    else:
        groups = tuple(tuple(search(store, sc.search_text, qvec, k, list(g), mode, candidates)) for g in sc.groups)
    # Interleave groups so a comparison shows each council near the top.
    merged: list[Passage] = []
    for i in range(max((len(g) for g in groups), default=0)):
        merged.extend(g[i] for g in groups if i < len(g))
    merged = merged[: max(k, 2 * len(groups))]
    t2 = time.perf_counter()
    return Retrieval(tuple(merged), sc, qvec, groups, {"embed": t1 - t0, "search": t2 - t1})
