"""The benchmark runner: compare retrieval and answering configurations on a Q&A set, side by side.

``arolwg eval`` (and ``make eval``) runs it on the bundled reports and eval/qa.jsonl; point
``--reports`` and ``--qa`` at your own reports and questions to measure Arolwg on them.

Configurations:

* ``tutorial``: the LangChain RAG tutorial (RecursiveCharacterTextSplitter 1000/200,
  all-MiniLM-L6-v2, Chroma, similarity top 4), no generator: its "answer" is its 4 passages.
* ``dense``, ``bm25``, ``hybrid``: Arolwg's retriever in one mode, council scoping off, with the
  extractive answerer.
* ``default``: ``query()`` as shipped (hybrid, council scoping, extractive answerer).
* ``llm``: ``query(answerer="llm")``, only when an LLM is configured (``AROLWG_LLM``).

Retrieval is scored on ``retrieve(answer.resolved_question, k=10)`` with the configuration's mode
and scoping, i.e. on the question as the answerer saw it after follow-up rewriting; answers
are scored on ``query(question, history=...)``.

>>> from eval.runner import run_benchmark                                   # doctest: +SKIP
>>> result = run_benchmark(configs=["default"], out_dir="/tmp/arolwg-eval")  # doctest: +SKIP
>>> round(result.metrics["default"]["recall@5"], 2)                          # doctest: +SKIP
0.93
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from eval import metrics as M
from eval.dataset import QAItem, QASet, load_qa

log = logging.getLogger(__name__)

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_QA = EVAL_DIR / "qa.jsonl"
# Questions about time (kinds time-scope and latest), asked of the dated test corpus of
# eval/corpus.py, which the runner builds for them in a temporary folder.
CORPUS_QA = EVAL_DIR / "corpus_qa.jsonl"
# More such questions, written blind (without reading the time and across-corpus code or trying
# them first) and never tuned on: `arolwg eval --qa eval/corpus_heldout.jsonl`.
CORPUS_HELDOUT_QA = EVAL_DIR / "corpus_heldout.jsonl"
# A second such blind set (changed, time-scope, latest): `arolwg eval --qa eval/corpus_heldout2.jsonl`.
CORPUS_HELDOUT2_QA = EVAL_DIR / "corpus_heldout2.jsonl"
# A third blind set (12 changed, 5 time-scope, 3 latest): `arolwg eval --qa eval/corpus_heldout3.jsonl`.
CORPUS_HELDOUT3_QA = EVAL_DIR / "corpus_heldout3.jsonl"
CORPUS_SETS = (CORPUS_QA, CORPUS_HELDOUT_QA, CORPUS_HELDOUT2_QA, CORPUS_HELDOUT3_QA)
# Written after the answerer was tuned, from report passages qa.jsonl does not use, and never tuned
# on: run it (`arolwg eval --qa eval/heldout.jsonl`) to see how Arolwg does on questions it has not met.
HELDOUT_QA = EVAL_DIR / "heldout.jsonl"
ALL_CONFIGS = ("tutorial", "dense", "bm25", "hybrid", "default", "llm")
RETRIEVAL_K = 10
RECALL_KS = (1, 3, 5, 10)
# An extractive answerer never abstains below this: the sweep reads every question's evidence score.
NEVER_ABSTAIN = -1e9
TARGET_ANSWERED = 0.95  # answered rate on answerable questions (issue 2)
TARGET_ABSTAINED = 0.9  # abstained rate on unanswerable questions (issue 2)

Progress = Callable[[int, int, str], None]


@dataclass
class QuestionResult:
    """What one configuration did with one question."""

    config: str
    id: str
    kind: str
    answerable: bool
    retrieved: list[tuple[str, int, int]] = field(default_factory=list)  # ranked (source, start, end)
    matrix: list[list[bool]] = field(default_factory=list)  # passage x evidence hits
    answer: str = ""
    abstained: bool = False
    correct: bool | None = None  # None: no facts to check (or unanswerable)
    out_of_time: bool | None = None  # cites a report outside the time asked about (None: no time asked)
    council_precision: float | None = None  # "which councils": share of the councils cited that answer it
    council_recall: float | None = None  # "which councils": share of the councils that answer it cited
    # Answer lines citing a report of a council with several: (labelled with council and year, all).
    dated_lines: tuple[int, int] | None = None
    score: float | None = None
    citations: list[dict] = field(default_factory=list)  # source, start, end, valid, on_gold
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    notice: str = ""
    error: str = ""

    def first_hit(self) -> int | None:
        """1-based rank of the first retrieved passage that hits gold evidence."""
        for rank, row in enumerate(self.matrix, 1):
            if any(row):
                return rank
        return None

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "id": self.id,
            "kind": self.kind,
            "answerable": self.answerable,
            "first_hit": self.first_hit(),
            # Ranks (1-based, top 10) of passages that hit gold evidence; the spans themselves are
            # left out to keep the committed JSON small.
            "hit_ranks": [i for i, row in enumerate(self.matrix, 1) if any(row)],
            # Long texts (the tutorial's 4 joined passages) are cut: the JSON is committed with each run.
            "answer": self.answer if len(self.answer) <= 600 else self.answer[:600] + "...",
            "answer_chars": len(self.answer),
            "abstained": self.abstained,
            "correct": self.correct,
            "out_of_time": self.out_of_time,
            "council_precision": self.council_precision,
            "council_recall": self.council_recall,
            "dated_lines": None if self.dated_lines is None else list(self.dated_lines),
            "score": self.score,
            "citations": [
                {k: v for k, v in c.items() if k != "quote" or not c.get("valid")} for c in self.citations
            ],
            "seconds": round(self.seconds, 5),
            "timings": {k: round(v, 5) for k, v in self.timings.items()},
            "backend": self.backend,
            "notice": self.notice,
            "error": self.error,
        }


@dataclass
class BenchmarkResult:
    """Everything one run measured; ``metrics[config][metric]`` holds the numbers (None: not applicable)."""

    configs: list[str]
    metrics: dict[str, dict[str, float | None]]
    questions: list[QuestionResult]
    skipped: list[dict]
    warnings: list[str]
    sweep: dict | None
    meta: dict
    notes: dict[str, str]
    json_path: Path | None = None
    markdown_path: Path | None = None
    chart_path: Path | None = None
    sweep_chart_path: Path | None = None

    def ratios(self, baseline: str = "tutorial") -> dict[str, dict[str, float | None]]:
        """Each configuration's metrics divided by the baseline's (None when either is missing or zero)."""
        base = self.metrics.get(baseline)
        out: dict[str, dict[str, float | None]] = {}
        for config, values in self.metrics.items():
            row = {}
            for key, value in values.items():
                b = base.get(key) if base else None
                row[key] = value / b if isinstance(value, int | float) and isinstance(b, int | float) and b else None
            out[config] = row
        return out

    def to_dict(self) -> dict:
        """A JSON-ready dict of the whole run (NaN written as null)."""
        return _json_safe(
            {
                "meta": self.meta,
                "configs": self.configs,
                "metrics": self.metrics,
                "ratios_to_tutorial": self.ratios() if "tutorial" in self.metrics else None,
                "notes": self.notes,
                "abstention_sweep": self.sweep,
                "skipped": self.skipped,
                "warnings": self.warnings,
                "questions": [q.to_dict() for q in self.questions],
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> BenchmarkResult:
        """A run read back from its JSON (:meth:`to_dict`), enough to show its tables and summary;
        the per-question results are left in the JSON."""
        return cls(
            configs=[str(c) for c in data["configs"]],
            metrics={str(c): dict(m) for c, m in data["metrics"].items()},
            questions=[],
            skipped=list(data.get("skipped") or []),
            warnings=list(data.get("warnings") or []),
            sweep=data.get("abstention_sweep"),
            meta=dict(data.get("meta") or {}),
            notes=dict(data.get("notes") or {}),
        )

    def to_markdown(self, chart_name: str | None = None, sweep_chart_name: str | None = None) -> str:
        """The run as a Markdown report (tables, definitions, abstention sweep, skipped lines)."""
        from eval.report import to_markdown

        return to_markdown(
            self,
            chart_name or (self.chart_path.name if self.chart_path else None),
            sweep_chart_name or (self.sweep_chart_path.name if self.sweep_chart_path else None),
        )


def _json_safe(value):
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def load_result(json_path: Path | str) -> BenchmarkResult:
    """A run saved by :func:`run_benchmark` (``latest.json`` or ``eval-<time>.json``), with the
    paths of the Markdown report and chart written beside it, when they are there.

    Raises OSError when the file cannot be read, ValueError (or KeyError) when it is not a run.
    """
    import json

    json_path = Path(json_path)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ValueError(f"{json_path.name} is not a benchmark run")
    result = BenchmarkResult.from_dict(data)
    result.json_path = json_path
    for attr, suffix in (("markdown_path", ".md"), ("chart_path", ".png"), ("sweep_chart_path", "-sweep.png")):
        path = json_path.with_name(json_path.stem + suffix)
        setattr(result, attr, path if path.is_file() else None)
    return result


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far (torch + Chroma + model).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def default_out_dir() -> Path:
    """eval/results in a source checkout; ./arolwg-eval-results when Arolwg is installed elsewhere."""
    if (EVAL_DIR.parent / "pyproject.toml").exists():
        return EVAL_DIR / "results"
    return Path.cwd() / "arolwg-eval-results"


def _resolve_configs(configs: Sequence[str] | None, settings, warnings: list[str]) -> list[str]:
    llm_on = settings.llm != "none"
    if not configs:
        return [c for c in ALL_CONFIGS if c != "llm" or llm_on]
    out = []
    for name in configs:
        if name not in ALL_CONFIGS:
            raise ValueError(f"unknown configuration {name!r}: choose from {', '.join(ALL_CONFIGS)}")
        if name == "llm" and not llm_on:
            msg = "The llm configuration was skipped: no LLM is configured (set AROLWG_LLM)."
            warnings.append(msg)
            log.warning(msg)
            continue
        if name not in out:
            out.append(name)
    return out


# ---------------------------------------------------------------- running one configuration


def _score(item: QAItem, res: QuestionResult, texts: dict[str, str], *, cites: bool = True) -> None:
    """Fill the hit matrix, fact correctness and citation checks of one result.

    ``cites`` False (the tutorial pipeline, which cites nothing): the scores read from citations
    (out of time, councils cited) are left None, not scored as a perfect answer."""
    gold = item.gold()
    if item.answerable:
        res.matrix = M.hit_matrix(res.retrieved, gold)
    if item.answerable and item.facts:
        res.correct = (not res.abstained) and M.facts_present(res.answer, item.facts)
    if not cites:
        return
    if item.in_time is not None:
        res.out_of_time = M.out_of_time([c["source"] for c in res.citations], item.in_time)
    if item.councils is not None:
        from index.meta import short_name

        cited = [short_name(c["authority"]) or c["authority"] for c in res.citations if c.get("authority")]
        res.council_precision, res.council_recall = M.council_scores(cited, item.councils)
        if res.council_precision is None and not item.councils:
            res.council_precision = 1.0  # no council answers it, and none was cited
    for c in res.citations:
        c["valid"] = M.citation_valid(texts.get(c["source"], ""), c["start"], c["end"], c["quote"])
        c["on_gold"] = M.citation_on_gold((c["source"], c["start"], c["end"]), gold) if item.answerable else None


class _Ours:
    """Arolwg's own pipeline in one configuration."""

    def __init__(self, name: str, index_dir: Path, settings, embeddings) -> None:
        self.name = name
        self.index_dir = index_dir
        self.settings = settings
        self.embeddings = embeddings
        self.mode = name if name in ("dense", "bm25", "hybrid") else "hybrid"
        self.scope = name in ("default", "llm")
        self.answerer = "llm" if name == "llm" else "extractive"
        from rag.api import get_store

        # Opened once, as the chat app holds it: per-question latency is then the query itself.
        self.store = get_store(index_dir, settings=settings, embeddings=embeddings)

    def ask(self, item: QAItem, settings=None):
        from rag.api import query

        return query(
            item.question,
            history=[tuple(t) for t in item.history] or None,
            mode=self.mode,
            scope=self.scope,
            answerer=self.answerer,
            settings=settings or self.settings,
            embeddings=self.embeddings,
            store=self.store,
        )

    def run(self, item: QAItem, texts: dict[str, str]) -> QuestionResult:
        from rag.api import retrieve
        from rag.errors import ArolwgError

        res = QuestionResult(self.name, item.id, item.kind, item.answerable)
        started = time.perf_counter()
        try:
            ans = self.ask(item)
            res.seconds = time.perf_counter() - started
            passages = retrieve(
                ans.resolved_question or item.question,
                k=RETRIEVAL_K,
                mode=self.mode,
                scope=self.scope,
                settings=self.settings,
                embeddings=self.embeddings,
                store=self.store,
            )
        except ArolwgError as err:
            res.seconds = time.perf_counter() - started
            res.error = str(err)
            res.abstained = True
            log.warning("%s: question %s failed: %s", self.name, item.id, err)
            _score(item, res, texts)
            return res
        res.retrieved = [(p.source, p.start, p.end) for p in passages]
        res.answer = ans.text
        res.abstained = ans.abstained
        res.score = ans.score
        res.timings = dict(ans.timings)
        res.backend = ans.backend
        res.notice = ans.notice
        res.citations = [
            {"n": c.n, "source": c.source, "authority": c.authority, "start": c.start, "end": c.end, "quote": c.quote}
            for c in ans.citations
        ]
        _score(item, res, texts)
        return res


class _Tutorial:
    """The LangChain tutorial pipeline: search only; the answer is its top-4 passages joined."""

    name = "tutorial"

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def run(self, item: QAItem, texts: dict[str, str]) -> QuestionResult:
        from eval.tutorial import TOP_K

        res = QuestionResult(self.name, item.id, item.kind, item.answerable)
        started = time.perf_counter()
        top = self.pipeline.search(item.question, k=TOP_K)  # it has no memory: follow-ups are searched as typed
        res.seconds = time.perf_counter() - started
        res.timings = {"retrieve": res.seconds}
        deep = self.pipeline.search(item.question, k=RETRIEVAL_K)  # only to score recall@5/10
        res.retrieved = [(h.source, h.start, h.end) for h in deep]
        res.answer = "\n\n".join(h.text for h in top)
        res.abstained = False
        res.backend = "none (retrieved passages)"
        _score(item, res, texts, cites=False)
        return res


# ---------------------------------------------------------------- aggregating


def _nan_to_none(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def aggregate(results: Sequence[QuestionResult], *, answers_apply: bool = True) -> dict:
    """All metrics of one configuration from its per-question results."""
    answerable = [r for r in results if r.answerable]
    matrices = [r.matrix for r in answerable]
    out: dict[str, float | None] = {"questions": len(results), "answerable": len(answerable)}
    for k in RECALL_KS:
        out[f"recall@{k}"] = M.recall_at_k(matrices, k)
    out["mrr"] = M.mean_reciprocal_rank(matrices, RETRIEVAL_K)
    out[f"ndcg@{RETRIEVAL_K}"] = M.mean_ndcg(matrices, RETRIEVAL_K)
    out["full_recall@5"] = M.full_recall_at_k(matrices, 5)
    out["full_recall@10"] = M.full_recall_at_k(matrices, 10)
    comparison = [r.matrix for r in answerable if r.kind == "comparison"]
    out["comparison_recall@5"] = M.recall_at_k(comparison, 5)
    out["comparison_full_recall@5"] = M.full_recall_at_k(comparison, 5)

    with_facts = [r for r in answerable if r.correct is not None]
    out["fact_accuracy"] = sum(r.correct for r in with_facts) / len(with_facts) if with_facts else math.nan
    answered = [r for r in with_facts if not r.abstained]
    out["accuracy_when_answered"] = sum(r.correct for r in answered) / len(answered) if answered else math.nan
    out.update(M.abstention_scores([not r.answerable for r in results], [r.abstained for r in results]))
    cits = [c for r in results for c in r.citations]
    gold_cits = [c for r in answerable for c in r.citations]
    out["citations"] = len(cits)
    out["citation_validity"] = sum(c["valid"] for c in cits) / len(cits) if cits else math.nan
    out["citation_precision"] = sum(c["on_gold"] for c in gold_cits) / len(gold_cits) if gold_cits else math.nan
    lengths = [len(r.answer) for r in results if not r.abstained and r.answer]
    out["answer_chars_mean"] = statistics.fmean(lengths) if lengths else math.nan
    timed = [r for r in results if r.out_of_time is not None]
    if timed:  # questions about a time: none of their citations from a report of another time
        out["in_time_rate"] = sum(not r.out_of_time for r in timed) / len(timed)
        out["in_time_answered"] = sum(not r.abstained for r in timed if r.answerable) / max(1, sum(r.answerable for r in timed))
    which = [r for r in results if r.council_precision is not None or r.council_recall is not None]
    if which:  # "which councils" questions: the councils cited against those whose reports answer
        ps = [r.council_precision for r in which if r.council_precision is not None]
        recalls = [r.council_recall for r in which if r.council_recall is not None]
        out["council_precision"] = statistics.fmean(ps) if ps else math.nan
        out["council_recall"] = statistics.fmean(recalls) if recalls else math.nan
    dated = [r.dated_lines for r in results if r.dated_lines is not None]
    if any(total for _, total in dated):  # a corpus with several reports of a council
        out["dated_line_rate"] = sum(n for n, _ in dated) / sum(total for _, total in dated)
        out["dated_lines"] = sum(total for _, total in dated)
    out["answer_chars_median"] = statistics.median(lengths) if lengths else math.nan
    out["errors"] = sum(1 for r in results if r.error)
    out["llm_fallbacks"] = sum(1 for r in results if r.notice)

    seconds = [r.seconds for r in results if not r.error]
    out["latency_p50_s"] = M.percentile(seconds, 50)
    out["latency_p95_s"] = M.percentile(seconds, 95)
    stages = sorted({s for r in results for s in r.timings})
    for stage in stages:
        values = [r.timings[stage] for r in results if stage in r.timings]
        out[f"{stage}_p50_s"] = M.percentile(values, 50)
        out[f"{stage}_p95_s"] = M.percentile(values, 95)

    if not answers_apply:
        # The tutorial has no answerer: abstention and citation numbers would be meaningless.
        for key in ("abstention_precision", "abstention_recall", "citation_validity", "citation_precision", "accuracy_when_answered"):
            out[key] = math.nan
    return {k: _nan_to_none(v) for k, v in out.items()}


def per_kind(results: Sequence[QuestionResult]) -> dict[str, dict[str, float | None]]:
    """recall@5, fact accuracy and abstained rate for each kind of question."""
    out = {}
    for kind in sorted({r.kind for r in results}):
        rs = [r for r in results if r.kind == kind]
        ans = [r for r in rs if r.answerable]
        facts = [r for r in ans if r.correct is not None]
        out[kind] = {
            "n": len(rs),
            "recall@5": _nan_to_none(M.recall_at_k([r.matrix for r in ans], 5)),
            "fact_accuracy": (sum(r.correct for r in facts) / len(facts)) if facts else None,
            "abstained_rate": sum(r.abstained for r in rs) / len(rs),
        }
        timed = [r for r in rs if r.out_of_time is not None]
        if timed:
            out[kind]["in_time_rate"] = sum(not r.out_of_time for r in timed) / len(timed)
        ps = [r.council_precision for r in rs if r.council_precision is not None]
        cr = [r.council_recall for r in rs if r.council_recall is not None]
        if ps or cr:
            out[kind]["council_precision"] = statistics.fmean(ps) if ps else None
            out[kind]["council_recall"] = statistics.fmean(cr) if cr else None
        dated = [r.dated_lines for r in rs if r.dated_lines is not None]
        if any(total for _, total in dated):
            out[kind]["dated_line_rate"] = sum(n for n, _ in dated) / sum(total for _, total in dated)
    return out


def uses_dated_corpus(qa_path: Path | str) -> bool:
    """True for the question sets asked of the dated test corpus (:data:`CORPUS_SETS`).

    >>> uses_dated_corpus(CORPUS_HELDOUT_QA), uses_dated_corpus(DEFAULT_QA)
    (True, False)
    """
    return Path(qa_path).resolve() in {p.resolve() for p in CORPUS_SETS}


def dated_reports(reports) -> dict[str, tuple[str, str]]:
    """The council (short name) and year of each report whose council has several reports indexed:
    a line citing one should say which inspection it is from."""
    from index.meta import normalise_dates, short_name

    councils = [short_name(r.authority) or r.authority for r in reports]
    out = {}
    for r, council in zip(reports, councils, strict=True):
        year = normalise_dates(r.dates)[2]
        if council and year is not None and councils.count(council) > 1:
            out[r.report_id] = (council, str(year))
    return out


def score_dated_lines(res: QuestionResult, dated: dict[str, tuple[str, str]]) -> None:
    """Fill ``res.dated_lines`` from its answer and citations (left None when none needs a date)."""
    must = {c["n"]: dated[c["source"]] for c in res.citations if c.get("n") is not None and c["source"] in dated}
    if must and not res.abstained:
        res.dated_lines = M.dated_lines(res.answer, must)


# ---------------------------------------------------------------- the run


def run_benchmark(
    qa_path: Path | str | None = None,
    reports_dir: Path | str | None = None,
    configs: Sequence[str] | None = None,
    index_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    progress: Progress | None = None,
    *,
    sweep: bool | None = None,
    write: bool = True,
    settings=None,
    embeddings=None,
) -> BenchmarkResult:
    """Run every configuration on every question and write JSON, Markdown and PNG results.

    ``index_dir``: an existing index to query (left untouched); without it a fresh index is built
    from ``reports_dir`` (default: the bundled reports) in a temporary folder, and timed.
    ``progress(done, total, message)`` is called as questions complete. ``sweep`` (default: on
    when ``default`` runs) re-asks every question with abstention off to calibrate the threshold.
    Bad lines of the Q&A set are skipped and listed in ``result.skipped``.

    >>> r = run_benchmark(configs=["default"], write=False)   # doctest: +SKIP
    >>> sorted(r.metrics)                                      # doctest: +SKIP
    ['default']
    """
    from index import build_index, list_reports, source_text
    from index.embeddings import get_embeddings
    from rag.settings import get_settings

    started_at = datetime.now(timezone.utc)
    load_start = os.getloadavg()[0]
    settings = settings or get_settings()
    warnings: list[str] = []
    names = _resolve_configs(configs, settings, warnings)
    if not names:
        raise ValueError("no configuration to run")
    qa_path = Path(qa_path) if qa_path else DEFAULT_QA
    if not qa_path.is_file():  # say so now, not after building an index for a minute
        from rag.errors import EvalSetError

        raise EvalSetError(f"The question set {qa_path} does not exist: give the path of a .jsonl file.")
    embeddings = embeddings or get_embeddings(settings)
    do_sweep = ("default" in names) if sweep is None else (sweep and "default" in names)
    cleanup: list[str] = []
    done = 0
    total = 1

    def tick(message: str, step: int = 1) -> None:
        nonlocal done
        done += step
        if progress:
            progress(min(done, total), total, message)

    try:
        build: dict[str, float | None] = {"index_seconds": None, "index_chunks": None, "index_chunks_per_s": None}
        if index_dir is None and reports_dir is None and uses_dated_corpus(qa_path):
            from eval.corpus import make_dated_corpus

            reports_dir = Path(tempfile.mkdtemp(prefix="arolwg-dated-corpus-"))
            cleanup.append(str(reports_dir))
            make_dated_corpus(reports_dir)
            warnings.append(
                "These questions are asked of the dated test corpus (eval/corpus.py): the two bundled reports "
                "and SYNTHETIC earlier versions of them, made for the run."
            )
        if index_dir is None:
            index_dir = Path(tempfile.mkdtemp(prefix="arolwg-eval-index-"))
            cleanup.append(str(index_dir))
            if progress:
                progress(0, total, "building a fresh index")
            embeddings.embed_query("warm-up")  # load the model first: the build time is indexing alone
            rss_before = _peak_rss_mb()
            t0 = time.perf_counter()
            report = build_index(reports_dir, index_dir, settings=settings, embeddings=embeddings)
            seconds = time.perf_counter() - t0
            for name, why in report.failed:
                msg = f"The report {name} was not indexed: {why}"
                warnings.append(msg)
                log.warning(msg)
            build = {
                "index_seconds": seconds,
                "index_chunks": report.n_chunks,
                "index_chunks_per_s": report.n_chunks / seconds if seconds else None,
                "peak_rss_mb_after_index": max(rss_before, _peak_rss_mb()),
            }
        else:
            index_dir = Path(index_dir)
            if reports_dir is not None:
                warnings.append("Both an index and a reports folder were given: the existing index was used as is.")
        reports = list_reports(index_dir, settings=settings)
        texts = {r.report_id: source_text(r.report_id, index_dir, settings=settings) for r in reports}
        dated = dated_reports(reports)
        qa: QASet = load_qa(qa_path, texts)
        items = qa.questions
        warnings.extend(qa.warnings)

        total = 1 + len(items) * len(names) + (len(items) if do_sweep else 0) + (1 if "tutorial" in names else 0)
        tick("index ready")

        runners: dict[str, object] = {}
        tutorial_build: dict[str, float] = {}
        pipeline = None
        if "tutorial" in names:
            from eval.tutorial import TutorialPipeline

            if progress:
                progress(done, total, "building the LangChain tutorial pipeline")
            pipeline = TutorialPipeline(texts, embeddings=embeddings)
            pipeline.build()
            tutorial_build = {
                "index_seconds": pipeline.build_seconds,
                "index_chunks": pipeline.n_chunks,
                "index_chunks_per_s": pipeline.n_chunks / pipeline.build_seconds if pipeline.build_seconds else None,
            }
            runners["tutorial"] = _Tutorial(pipeline)
            tick("tutorial pipeline ready")
        for name in names:
            if name != "tutorial":
                runners[name] = _Ours(name, index_dir, settings, embeddings)

        results: dict[str, list[QuestionResult]] = {name: [] for name in names}
        try:
            for name in names:
                _warm_up(runners[name], items, texts)
            # Question by question, every configuration in turn: a busy spell of the machine then
            # slows all configurations alike instead of whichever happened to be running.
            for item in items:
                for name in names:
                    results[name].append(runners[name].run(item, texts))
                    score_dated_lines(results[name][-1], dated)
                    tick(f"{item.id}: {name}")
        finally:
            if pipeline is not None:
                pipeline.close()
        peak_rss = _peak_rss_mb()

        sweep_result = None
        if do_sweep:
            sweep_result = _abstention_sweep(runners["default"], items, settings, tick)

        metrics: dict[str, dict[str, float | None]] = {}
        for name in names:
            m = aggregate(results[name], answers_apply=name != "tutorial")
            m.update(tutorial_build if name == "tutorial" else {k: v for k, v in build.items() if k.startswith("index_")})
            metrics[name] = m

        notes = _notes(names, index_given=not cleanup, settings=settings)
        meta = {
            "started": started_at.isoformat(timespec="seconds"),
            "seconds": round((datetime.now(timezone.utc) - started_at).total_seconds(), 1),
            "qa_path": str(qa_path),
            "questions": len(items),
            "answerable": sum(q.answerable for q in items),
            "kinds": {k: sum(1 for q in items if q.kind == k) for k in sorted({q.kind for q in items})},
            "skipped_lines": len(qa.skipped),
            "reports": [r.report_id for r in reports],
            "reports_dir": str(reports_dir or settings.reports_dir) if cleanup else None,
            "index_dir": None if cleanup else str(index_dir),
            "index_build": build,
            "retrieval_k": RETRIEVAL_K,
            "top_k": settings.top_k,
            "abstain_threshold_setting": settings.abstain_threshold,
            "llm": settings.llm,
            "per_kind": {name: per_kind(results[name]) for name in names},
            "peak_rss_mb": peak_rss,
            "memory_note": "Peak resident memory of the whole run (getrusage ru_maxrss): every configuration, "
            "the embedding model, both indexes and Chroma share one process, so it is not split by configuration.",
            "git_commit": _git_commit(),
            # Latencies depend on what else the machine runs: record its load (1-minute average).
            "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            "cpu_count": os.cpu_count(),
        }
        result = BenchmarkResult(
            configs=names,
            metrics=metrics,
            questions=[r for name in names for r in results[name]],
            skipped=[{"line": s.line, "id": s.id, "reason": s.reason, "message": s.message(qa_path)} for s in qa.skipped],
            warnings=warnings,
            sweep=sweep_result,
            meta=meta,
            notes=notes,
        )
        if write:
            from eval.report import write_outputs

            write_outputs(result, Path(out_dir) if out_dir else default_out_dir(), started_at)
        return result
    finally:
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)


def _warm_up(runner, items: Sequence[QAItem], texts: dict[str, str]) -> None:
    # One throwaway question so model loading and caches are not counted as query latency, and the
    # store's warm-up, as the chat app does at start: else the first question over every report
    # (often not items[0], which names a council) counts Chroma's loading of its index.
    try:
        runner.run(items[0], texts)
        if getattr(runner, "store", None) is not None:
            runner.store.warm()
    except Exception as err:  # noqa: BLE001 - a failing warm-up shows again, per question, in the real pass
        log.warning("warm-up question failed: %s", err)


def _abstention_sweep(runner: _Ours, items: Sequence[QAItem], settings, tick) -> dict:
    """Ask every question with abstention off; sweep the threshold over the evidence scores."""
    from rag.errors import ArolwgError

    never = settings.model_copy(update={"abstain_threshold": NEVER_ABSTAIN})
    rows = []
    for item in items:
        try:
            ans = runner.ask(item, settings=never)
            score = None if ans.abstained else ans.score  # still abstained: no threshold makes it answer
            correct = (not ans.abstained) and M.facts_present(ans.text, item.facts) if item.answerable and item.facts else None
        except ArolwgError as err:
            log.warning("sweep: question %s failed: %s", item.id, err)
            score, correct = None, (False if item.answerable and item.facts else None)
        rows.append({"id": item.id, "answerable": item.answerable, "score": score, "correct": correct})
        tick(f"abstention sweep: {item.id}")
    result = M.threshold_sweep(
        [r["score"] for r in rows if r["answerable"]],
        [r["score"] for r in rows if not r["answerable"]],
        TARGET_ANSWERED,
        TARGET_ABSTAINED,
        # None: no facts to check (which and changed questions), left out of the sweep's fact accuracy.
        answerable_correct=[r["correct"] for r in rows if r["answerable"]],
    )
    result["scores"] = rows
    return result


def _notes(names: Sequence[str], *, index_given: bool, settings) -> dict[str, str]:
    notes = {
        "tutorial": "LangChain tutorial: RecursiveCharacterTextSplitter(1000, 200) over each report's text, "
        "all-MiniLM-L6-v2, Chroma on disk, similarity_search top 4. It returns 4 passages, so recall@5/10 come "
        "from a deeper search of the same store. It has no generator and no memory: its 'answer' is its 4 "
        "passages joined (~4,000 characters), so fact accuracy means 'the facts are somewhere in what it "
        "retrieved', it never abstains, and it cites nothing. Follow-ups are searched as typed.",
        "dense": "Arolwg retrieval, dense (embedding) search only, council scoping off; extractive answerer.",
        "bm25": "Arolwg retrieval, BM25 keyword search only, council scoping off; extractive answerer.",
        "hybrid": "Arolwg retrieval, dense + BM25 fused, council scoping off; extractive answerer.",
        "default": "query() as shipped: hybrid retrieval, council scoping, extractive answerer.",
        "llm": f"query(answerer='llm') with the configured LLM ({settings.llm} {settings.llm_model}).",
    }
    out = {n: notes[n] for n in names}
    out["index"] = (
        "An existing index was used; its build time was not measured."
        if index_given
        else "Index build: a fresh index folder in the same process, with the embedding model already loaded "
        "(a cold start also pays model loading, about 5-10 s)."
    )
    out["retrieval"] = (
        f"Retrieval is scored on the top {RETRIEVAL_K} passages of retrieve(resolved question) in the configuration's "
        "mode. A passage hits an evidence quote when it is from the same report and covers at least half the "
        "quote's characters. recall@k: some top-k passage hits some evidence item; full_recall@k: every evidence "
        "item is hit; MRR and nDCG@10 use binary gains credited once per evidence item. Unanswerable questions "
        "are left out of retrieval metrics."
    )
    out["answers"] = (
        "fact_accuracy: answerable questions whose answer contains every fact (case-insensitive, whitespace and "
        "[n] markers ignored; a number must not be part of a longer number, so '9' does not match '2019') and "
        "did not abstain. Abstention precision/recall: unanswerable is the positive class. "
        "citation_validity: quote == source_text[start:end]. citation_precision: citations of answerable "
        "questions that overlap a gold evidence span."
    )
    out["latency"] = (
        "Wall time of one query() per question (tutorial: one similarity_search top 4), after one throwaway "
        "warm-up question; stage times come from Answer.timings."
    )
    return out


def _git_commit() -> str | None:
    """The checkout's short commit, with "+dirty" when tracked code differs from it (None outside git)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=EVAL_DIR, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "rag", "index", "eval"],
            cwd=EVAL_DIR.parent, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


# ---------------------------------------------------------------- CLI


_INPUTS = {
    "qa": dict(metavar="FILE", help=f"Q&A set, JSON Lines (default: {DEFAULT_QA.name} bundled)."),
    "reports": dict(metavar="DIR", help="Folder of reports to index afresh and test on (default: the bundled reports)."),
    "index": dict(metavar="DIR", help="Use this existing index instead of building a fresh one (not modified)."),
    "out": dict(metavar="DIR", help="Folder for the JSON, Markdown and PNG results (default: eval/results)."),
}


def add_input_arguments(parser: argparse.ArgumentParser, names: Sequence[str] = ("qa", "reports", "index", "out")) -> None:
    """``--qa``, ``--reports``, ``--index`` and ``--out`` (those of ``names``), shared by every benchmark's command."""
    for name in names:
        parser.add_argument(f"--{name}", type=Path, default=None, **_INPUTS[name])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``arolwg eval``."""
    add_input_arguments(parser)
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=ALL_CONFIGS,
        default=None,
        metavar="NAME",
        help=f"Configurations to compare: {', '.join(ALL_CONFIGS)} (default: all; llm only when AROLWG_LLM is set).",
    )
    parser.add_argument("--no-sweep", action="store_true", help="Skip the abstention-threshold sweep.")


def with_progress_bar(label: str, call: Callable[[Progress], object], errors: tuple[type[Exception], ...] = ()):
    """``call(progress)`` under a progress bar named ``label``; None, the error's sentence printed on
    stderr, when it raises an ArolwgError, a ValueError or one of ``errors``."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    from rag.errors import ArolwgError

    bar = Bar(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(),
        transient=True,
    )
    try:
        with bar:
            task = bar.add_task("starting", total=None)

            def progress(done: int, total: int, message: str) -> None:
                bar.update(task, completed=done, total=total, description=message)

            return call(progress)
    except (ArolwgError, ValueError, *errors) as err:
        # Escaped: a sentence naming "[/path]" or "[bold]" is printed as written, not read as markup.
        Console(stderr=True, soft_wrap=True).print(f"[red]{escape(str(err))}[/red]", highlight=False)
        return None


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed CLI arguments; print a table with ratios to the tutorial pipeline."""
    from rich.console import Console
    from rich.markup import escape  # skipped lines and notes quote the set's and reports' words

    from eval.report import rich_table

    result = with_progress_bar(
        "eval",
        lambda progress: run_benchmark(
            qa_path=args.qa,
            reports_dir=args.reports,
            configs=args.configs,
            index_dir=getattr(args, "index", None),
            out_dir=args.out,
            progress=progress,
            sweep=False if getattr(args, "no_sweep", False) else None,
        ),
    )
    if result is None:
        return 1
    console = Console()
    console.print(rich_table(result))
    console.print(
        f"Peak memory of the run: {result.meta['peak_rss_mb']:,.0f} MB RSS (one process, all configurations). "
        f"Load average {result.meta['load_average'][0]} on {result.meta['cpu_count']} CPUs.",
        soft_wrap=True,
        highlight=False,
    )
    for s in result.skipped:
        console.print(f"[yellow]Skipped:[/yellow] {escape(s['message'])}", soft_wrap=True, highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]Note:[/yellow] {escape(w)}", soft_wrap=True, highlight=False)
    if result.sweep and result.sweep.get("best"):
        b = result.sweep["best"]
        console.print(
            f"Abstention threshold that best meets the targets: {b['threshold']:.4g} "
            f"(answered {b['answered_rate_answerable']:.0%} of answerable, abstained on "
            f"{b['abstained_rate_unanswerable']:.0%} of unanswerable).",
            soft_wrap=True,
        )
    if result.json_path:
        console.print(f"Results: {result.json_path}, {result.markdown_path}, {result.chart_path}", soft_wrap=True, highlight=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run as ``python -m eval.runner`` (the same as ``arolwg eval``)."""
    parser = argparse.ArgumentParser(prog="arolwg eval", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
