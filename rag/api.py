"""The public entry points: ``query``, ``retrieve``, and their LangChain forms."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from index.store import IndexStore, is_index_dir, open_store
from rag.errors import ArolwgError, EmptyQuestionError, IndexMissingError, InvalidArgumentError, QuestionTooLongError
from rag.scope import MAX_COMPARED
from rag.settings import Settings, get_settings
from rag.types import Answer, Passage

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]


_SURROGATES = re.compile("[\ud800-\udfff]")


def _validate(question: str, settings: Settings) -> str:
    if isinstance(question, str) and _SURROGATES.search(question):
        # A lone surrogate (from a broken client, or undecodable bytes on a command line) is not
        # text: it cannot be encoded, embedded or shown. A valid pair is joined; the rest dropped.
        question = _SURROGATES.sub("", question.encode("utf-16", "surrogatepass").decode("utf-16", "ignore"))
    if not isinstance(question, str) or not question.strip():
        raise EmptyQuestionError()
    q = " ".join(question.split())
    if len(q) > settings.max_question_chars:
        raise QuestionTooLongError(len(q), settings.max_question_chars)
    return q


def check_k(k: object) -> int | None:
    """``k`` (passages to retrieve) as given, refused unless it is a positive whole number or None."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise InvalidArgumentError(f"k must be a positive whole number (how many passages to retrieve), not {k!r}.")
    return k


# The keys rag.scope.allowed_reports reads: a council (official or short name), a report (file name),
# and the inspection's time (rag.timescope: year, month, since, before, latest, previous).
FILTER_KEYS = {
    "authority": "council", "council": "council", "source": "report", "report": "report", "report_id": "report",
    "year": "time", "month": "time", "since": "time", "before": "time", "latest": "time", "previous": "time",
}


def check_filters(filters: object) -> dict | None:
    """``filters`` as given, refused (ValueError saying what is expected) unless it is None or a dict
    of known keys whose values are a name or a list of names.

    >>> check_filters({"authority": "Cardiff"})
    {'authority': 'Cardiff'}
    """
    expected = (
        'filters must be a dict such as {"authority": "Cardiff"}, {"source": "ciw-cardiff-2020-12.txt"} or {"year": 2016}, '
        "with the keys authority or council (a council's name) and source, report or report_id (a report's file name), "
        "each given one name or a list of names, and year, month, since, before, latest or previous (the inspection's date)"
    )
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise InvalidArgumentError(f"{expected}; got one of type {type(filters).__name__}.")
    unknown = sorted(str(key) for key in filters if key not in FILTER_KEYS)
    if unknown:
        raise InvalidArgumentError(f"{expected}; {', '.join(map(repr, unknown))} is not one of those keys.")
    from rag.timescope import check_time_filter

    for key, value in filters.items():
        if FILTER_KEYS[key] == "time":
            if value is not None and (wrong := check_time_filter(key, value)):
                raise InvalidArgumentError(f"{expected}; {key!r} must be {wrong}, not {value!r}.")
            continue
        names = [value] if isinstance(value, str) else value
        if value is not None and (not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in names)):
            raise InvalidArgumentError(f"{expected}; {key!r} is of type {type(value).__name__}, not a {FILTER_KEYS[key]} name.")
    return filters


def check_history(history: object) -> list[tuple[str, str]]:
    """``history`` as a list of (question, answer) pairs, refused (ValueError) in any other shape."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not hasattr(history, "__iter__"):
        raise InvalidArgumentError(
            f"history must be a list of (question, answer) pairs of text; got one of type {type(history).__name__}."
        )
    turns = []
    for i, turn in enumerate(history, 1):
        if isinstance(turn, (str, bytes, dict)) or not hasattr(turn, "__len__") or len(turn) != 2:
            raise InvalidArgumentError(
                f"history must be a list of (question, answer) pairs of text; turn {i} is {str(turn)[:60]!r}, not a pair."
            )
        turns.append((str(turn[0]), str(turn[1])))
    return turns


def _embeddings(embeddings, settings: Settings):
    if embeddings is not None:
        return embeddings
    from index.embeddings import get_embeddings

    return get_embeddings(settings)


def get_store(index_dir: str | Path | None = None, *, settings: Settings | None = None, embeddings=None) -> IndexStore:
    """The index to search; the default index is built from the bundled reports on first use."""
    settings = settings or get_settings()
    explicit = index_dir is not None
    index_dir = Path(index_dir) if explicit else Path(settings.index_dir)
    if not is_index_dir(index_dir):
        if explicit:
            open_store(index_dir, settings)  # raises the right error: foreign or missing
            raise IndexMissingError(index_dir)
        from index.build import build_index

        log.warning("no index at %s yet: building it from %s", index_dir, settings.reports_dir)
        build_index(settings.reports_dir, index_dir, settings=settings, embeddings=_embeddings(embeddings, settings))
    if not explicit:
        from index.build import needs_upgrade, update_index

        # The default index follows Arolwg's own upgrades (index format, chunking): they reach
        # it without a manual re-index, and every report in it (uploads too) is kept.
        if needs_upgrade(index_dir):
            log.warning("the index at %s was written by an older Arolwg: upgrading it", index_dir)
            update_index(index_dir, settings=settings, embeddings=_embeddings(embeddings, settings))
    # open_store refuses an index built with another embedding model.
    store = open_store(index_dir, settings, embedding_model=getattr(_embeddings(embeddings, settings), "name", None))
    return store


def retrieve(
    question: str,
    k: int = 5,
    filters: dict | None = None,
    index_dir: str | Path | None = None,
    *,
    mode: str = "hybrid",
    scope: bool = True,
    settings: Settings | None = None,
    embeddings=None,
    store: IndexStore | None = None,
) -> list[Passage]:
    """The ``k`` passages of the reports that best match ``question``.

    >>> [p.source for p in retrieve("How many case files were reviewed in Cardiff?", k=1)]
    ['ciw-cardiff-2020-12.txt']
    """
    from rag.retrieval import retrieve_scoped

    settings = settings or get_settings()
    q = _validate(question, settings)
    check_k(k)
    check_filters(filters)
    emb = _embeddings(embeddings, settings)
    store = store or get_store(index_dir, settings=settings, embeddings=emb)
    r = retrieve_scoped(store, emb, q, k=k, filters=filters, mode=mode, scope=scope, candidates=settings.candidates)
    return list(r.passages)


def query(
    question: str,
    history: History | None = None,
    filters: dict | None = None,
    index_dir: str | Path | None = None,
    k: int | None = None,
    *,
    mode: str = "hybrid",
    scope: bool = True,
    answerer: str | None = None,
    settings: Settings | None = None,
    embeddings=None,
    store: IndexStore | None = None,
    llm=None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Answer a question about the reports, every sentence cited with the reports' own words.

    Args:
        history: earlier turns ``[(question, answer_text), ...]`` for follow-ups.
        filters: ``{"authority": "Cardiff"}``, ``{"source": "ciw-cardiff-2020-12.txt"}``, and the
            inspection's time: ``{"year": 2016}``, ``{"month": "2020-10"}``, ``{"since": "2018"}``,
            ``{"before": "2019"}``, ``{"latest": True}`` (each council's newest report), ``{"previous": True}``.
        answerer: ``"extractive"`` (default, offline) or ``"llm"`` (the configured LLM).
        on_token: called with each piece of answer text as it is produced (LLM streaming).

    >>> ans = query("How many case files were reviewed in Cardiff?")
    >>> "50" in ans.text, ans.citations[0].source
    (True, 'ciw-cardiff-2020-12.txt')
    """
    from rag.answer import extractive_answer
    from rag.followup import resolve_parts
    from rag.retrieval import retrieve_scoped

    t0 = time.perf_counter()
    settings = settings or get_settings()
    q = _validate(question, settings)
    k = check_k(k) or settings.top_k
    check_filters(filters)
    history = check_history(history)
    emb = _embeddings(embeddings, settings)
    store = store or get_store(index_dir, settings=settings, embeddings=emb)
    use_llm = (answerer or ("llm" if (llm is not None or settings.llm != "none") else "extractive")) == "llm"
    if use_llm and llm is None:
        from rag.llm import make_llm

        llm = make_llm(settings)
    t1 = time.perf_counter()
    base, focus = resolve_parts(q, history, store.reports)
    resolved = f"{base.rstrip(' ?')}: {focus}?" if focus else base
    if use_llm and history:
        from rag.llm import rewrite_followup

        rewritten = rewrite_followup(q, history, llm)
        if rewritten and rewritten != q:  # it returns the question unchanged when it fails
            resolved = rewritten
    t2 = time.perf_counter()
    r = retrieve_scoped(store, emb, resolved, k=k, filters=filters, mode=mode, scope=scope, candidates=settings.candidates)
    t3 = time.perf_counter()
    threshold = settings.abstain_threshold

    focus_vec = None
    if focus:
        import numpy as np

        focus_vec = np.asarray(emb.embed_query(focus), dtype="float32")

    def extractive(notice: str = "") -> Answer:
        a = extractive_answer(
            q, r, store, resolved_question=resolved, focus=focus, focus_vec=focus_vec, threshold=threshold
        )
        if notice:
            from dataclasses import replace

            a = replace(a, notice=notice)
        return a

    from rag.dates import dates_answer, with_scope_notice
    from rag.outline import outline_answer

    # "When did the inspection take place?" is answered from the reports' dates, and a broad
    # question ("What are Wrexham's strengths?") from the report's own headings, by either
    # backend: the dates and the list are the reports', there is nothing to generate.
    dated = None if r.scope.unanswered else dates_answer(q, r, store, resolved_question=resolved, focus=focus)
    from rag.across import across_answer  # "Which councils ...?": a list, one line per council

    from rag.changes import change_answer  # "What has changed in X since ...?": one line per report, oldest first

    listed = None if dated or r.scope.unanswered else (
        across_answer(q, r, store, resolved_question=resolved, threshold=threshold)
        or change_answer(q, r, store, resolved_question=resolved, threshold=threshold)
    )
    outline = dated or listed or (None if r.scope.unanswered else outline_answer(q, r, store, resolved_question=resolved))
    if outline is not None:
        ans = outline
        if on_token:
            on_token(ans.text)
    elif use_llm and len(r.scope.groups) <= MAX_COMPARED:
        # (A comparison of more councils is a list of each one's own lines, as "Which councils
        # ...?" is: too many sources for one prompt, and nothing a model would add.)
        from dataclasses import replace as _replace

        from rag.llm import llm_answer

        baseline = extractive()
        if baseline.abstained:
            # Weak evidence: no LLM can ground an answer in it, so do not ask one.
            ans = baseline
            if on_token:
                on_token(ans.text)
        else:
            ans = llm_answer(
                q,
                list(r.passages),
                llm=llm,
                embeddings=emb,
                fallback=extractive,
                on_token=on_token,
                resolved_question=resolved,
                source_text=store.source_text,  # the index this query searched, not the default one
            )
            # One evidence scale for every backend, so the abstention threshold means the same.
            ans = _replace(ans, score=baseline.score)
    else:
        ans = extractive()
        if on_token:
            on_token(ans.text)
    if dated is None:
        # Several reports of one council in scope, or a council with none of the time asked about.
        ans = with_scope_notice(ans, r.scope, store.reports)
    t4 = time.perf_counter()
    ans.timings.update(
        {"setup": t1 - t0, "followup": t2 - t1, **r.seconds, "retrieve": t3 - t2, "answer": t4 - t3, "total": t4 - t0}
    )
    return ans


def as_retriever(
    index_dir: str | Path | None = None,
    k: int = 5,
    filters: dict | None = None,
    *,
    mode: str = "hybrid",
    settings: Settings | None = None,
    embeddings=None,
):
    """A LangChain ``BaseRetriever`` over the index (Documents carry the Passage fields).

    >>> docs = as_retriever(k=2).invoke("carers' assessments in Wrexham")
    >>> len(docs), docs[0].metadata["source"]
    (2, 'ciw-wrexham-2020-10.txt')
    """
    check_k(k)
    check_filters(filters)
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    class ArolwgRetriever(BaseRetriever):
        """Hybrid, council-scoped retrieval over an Arolwg index."""

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
            ps = retrieve(query, k=k, filters=filters, index_dir=index_dir, mode=mode, settings=settings, embeddings=embeddings)
            return [
                Document(
                    page_content=p.text,
                    id=p.chunk_id,
                    metadata={
                        "source": p.source,
                        "title": p.title,
                        "authority": p.authority,
                        "section": list(p.section),
                        "start": p.start,
                        "end": p.end,
                        "score": p.score,
                    },
                )
                for p in ps
            ]

    return ArolwgRetriever()


def chain(
    index_dir: str | Path | None = None,
    *,
    k: int | None = None,
    filters: dict | None = None,
    settings: Settings | None = None,
    embeddings=None,
    llm=None,
):
    """A LangChain Runnable: ``{"question": str, "history": [...]}`` -> :class:`Answer`.

    >>> chain().invoke({"question": "Is Wrexham children's services still inadequate?"}).abstained
    False
    """
    check_k(k)
    check_filters(filters)
    from langchain_core.runnables import RunnableLambda

    def _run(inp: dict[str, Any] | str) -> Answer:
        if isinstance(inp, str):
            inp = {"question": inp}
        return query(
            inp["question"],
            history=inp.get("history"),
            filters=inp.get("filters", filters),
            index_dir=index_dir,
            k=k,
            settings=settings,
            embeddings=embeddings,
            llm=llm,
        )

    return RunnableLambda(_run, name="arolwg")


__all__ = ["ArolwgError", "as_retriever", "chain", "get_store", "query", "retrieve"]
