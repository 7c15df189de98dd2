"""The scale benchmark: what indexing and querying cost as the corpus grows from 2 reports to 1,000.

``arolwg eval --scale 2,100,500,1000`` (or ``make bench-scale SCALE=2,100``). For each N it makes a
corpus of N reports in a temporary folder (the two bundled reports, unchanged, plus N - 2
synthetic copies made distinct by :mod:`eval.synthetic`: a fictional council, another date,
perturbed numbers) and measures, in one run:

* **indexing**, in a fresh process per N (so its peak RSS is that N's): the whole
  ``build_index`` of a new index folder (the model loaded first), then, in the same process, the
  raw encoder time of the same text: every character of every report once, in 900-character
  windows, through the same SentenceTransformer with the same batch size; their ratio; the peak
  RSS; the index's size on disk; the time to add one more (synthetic) report with
  ``update_index(add=...)`` and to remove one with ``update_index(remove=...)``;
* **querying**, in another new process: the time from starting Python to the first answer of
  ``rag.query`` on that index; then every question of the Q&A set (``eval/qa.jsonl``), asked as the
  ``default`` configuration of ``arolwg eval`` asks it and scored by the same code
  (:mod:`eval.runner`, :mod:`eval.metrics`): warm latency p50/p95, recall@5, fact accuracy; then
  that process's peak RSS.

N = 2 is always measured: it is the baseline of the targets that compare with the two reports.
It writes ``scale.json``, ``scale.md`` and ``scale.png`` to ``eval/results`` (or ``--out``).

>>> parse_ns("100,2,500")
[2, 100, 500]
"""

from __future__ import annotations

import argparse
import json
import re
import logging
import os
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

EVAL_DIR = Path(__file__).resolve().parent
REPO_DIR = EVAL_DIR.parent
DEFAULT_NS = (2, 100, 500, 1000)
WINDOW_CHARS = 900  # a passage's size: the raw encoder baseline encodes the text in windows of this many characters
FIRST_QUESTION = "How many case files were reviewed in Cardiff?"
# Names no council: a search of every report, so its first answer also opens Chroma.
FIRST_QUESTION_WHOLE = "How many case files did the inspectors review?"
BASELINE_N = 2
RSS_LIMIT_MB = 1024.0  # "1 GB", in MB of 1,024 KiB as the benchmark reports memory

Progress = Callable[[int, int, str], None]

# Every measurement of one N, in the order of the Markdown table: (key, column label, kind).
# Kinds: "int", "s" (seconds), "ms" (seconds shown in ms), "x" (ratio), "mb", "score", "load".
COLUMNS: list[tuple[str, str, str]] = [
    ("n", "N reports", "int"),
    ("windows", "900-char windows", "int"),
    ("chars", "characters", "int"),
    ("passages", "passages", "int"),
    ("index_s", "index (whole build)", "s"),
    ("raw_encode_s", "raw encoding", "s"),
    ("index_over_raw", "index / raw", "x"),
    ("index_peak_rss_mb", "index peak RSS", "mb"),
    ("index_mb", "index on disk", "mb"),
    ("add_s", "add one report", "s"),
    ("remove_s", "remove one report", "s"),
    ("first_answer_s", "new process to first answer", "s"),
    ("first_answer_whole_s", "new process to first answer, naming no council", "s"),
    ("query_p50_s", "warm query p50", "ms"),
    ("query_p95_s", "warm query p95", "ms"),
    ("query_peak_rss_mb", "query process peak RSS", "mb"),
    ("recall@5", "recall@5", "score"),
    ("fact_accuracy", "fact accuracy", "score"),
    ("scoped_recall@5", "recall@5, questions naming a council", "score"),
    ("scoped_fact_accuracy", "fact accuracy, questions naming a council", "score"),
    ("which_precision", "which councils: council precision", "score"),
    ("which_recall", "which councils: council recall", "score"),
    ("which_p50_s", "which councils: answer p50", "ms"),
    ("which_p95_s", "which councils: answer p95", "ms"),
    ("load_before", "load before", "load"),
    ("load_after", "load after", "load"),
    ("seconds", "wall time of this N", "s"),
]
# Further per-N fields, kept in the JSON (the test checks them all).
EXTRA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "synthetic": int,
    "model_load_s": float,
    "passages_per_s": float,
    "raw_windows_per_s": float,
    "index_apparent_mb": float,
    "index_mb_after_writes": float,
    "writes_peak_rss_mb": float,
    "added": str,
    "removed": str,
    "first_answer_import_s": float,
    "first_query_s": float,
    "first_answer_rss_mb": float,
    "first_answer_abstained": bool,
    "first_answer_sources": list,
    "questions": int,
    "answerable": int,
    "skipped_lines": int,
    "metrics": dict,
    "per_kind": dict,
    "misses": dict,
    "scoped_questions": int,
    "which_questions": int,
    "which": dict,
    "isolated": bool,
    "warnings": list,
}


@dataclass
class ScaleResult:
    """One run of the scale benchmark: a row per N, the targets at the largest N, and the run's facts."""

    rows: list[dict]
    targets: list[dict]
    meta: dict
    json_path: Path | None = None
    markdown_path: Path | None = None
    chart_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        from eval.runner import _json_safe

        return _json_safe({"meta": self.meta, "rows": self.rows, "targets": self.targets, "warnings": self.warnings})


def parse_ns(text: str | Sequence[int]) -> list[int]:
    """'2,100,500' -> [2, 100, 500]: sorted, unique, each at least 2."""
    from eval.synthetic import max_reports

    items = text.replace(" ", "").split(",") if isinstance(text, str) else list(text)
    try:
        ns = sorted({int(x) for x in items if str(x)})
    except ValueError:
        raise ValueError(f"--scale takes report counts separated by commas, such as 2,100,500 (not {text!r})") from None
    if not ns:
        raise ValueError("--scale needs at least one report count, such as 2,100")
    bad = [n for n in ns if n < 2 or n > max_reports()]
    if bad:
        raise ValueError(f"each N must be between 2 (the two real reports) and {max_reports()}, not {bad[0]}")
    return ns


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (1 MB = 1,024 KiB, as ``eval.runner`` counts).

    Linux's ``VmHWM`` (the high-water mark of this process's own memory) when there is one:
    ``getrusage``'s ``ru_maxrss`` carries over the parent's peak into a child it starts (Python
    starts children with vfork, and exec keeps the old peak), so a child of a big process would
    report the parent's memory as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def dir_size_mb(path: Path) -> tuple[float, float]:
    """(on disk, apparent) size of a folder in MB: allocated blocks, and the sum of file lengths."""
    blocks = apparent = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # a file removed while we walk
            blocks += st.st_blocks * 512
            apparent += st.st_size
    return blocks / 1e6, apparent / 1e6


def windows(texts: Sequence[str], size: int = WINDOW_CHARS) -> list[str]:
    """Every character of every text once, cut into windows of ``size`` characters.

    >>> [len(w) for w in windows(["a" * 2000, "b" * 10], 900)]
    [900, 900, 200, 10]
    """
    return [t[i : i + size] for t in texts for i in range(0, len(t), size)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The machine a benchmark ran on: CPUs in all and usable (what nproc says), their model, Python."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------- the two measuring processes


def measure_index(
    corpus_dir: Path,
    index_dir: Path,
    extra: Path,
    remove_id: str | None,
    *,
    settings=None,
    embeddings=None,
    progress: Progress | None = None,
) -> dict:
    """Build a fresh index of ``corpus_dir``, time raw encoding of the same text, add ``extra``, remove one.

    ``remove_id``: the report removed (None: the one just added).
    """
    from index import build_index, update_index
    from index.embeddings import get_embeddings
    from rag.settings import get_settings

    settings = settings or get_settings()

    def phase(lo: float, hi: float) -> Progress:
        # One bar over the whole measurement: the build is most of it, raw encoding the next.
        def say(done: int, total: int, message: str) -> None:
            if progress:
                progress(int(1000 * (lo + (hi - lo) * (done / total if total else 0))), 1000, message)

        return say

    t0 = time.perf_counter()
    emb = embeddings or get_embeddings(settings)
    model = emb.model  # the SentenceTransformer itself
    emb.encode(["warm-up"])  # load the model first: the build time is indexing alone
    model_load_s = time.perf_counter() - t0
    out: dict = {"model_load_s": model_load_s, "warnings": []}

    say = phase(0.0, 0.75)
    say(0, 1, "building a fresh index")
    t0 = time.perf_counter()
    report = build_index(corpus_dir, index_dir, settings=settings, embeddings=emb, progress=say)
    out["index_s"] = time.perf_counter() - t0
    out["index_peak_rss_mb"] = peak_rss_mb()
    out["passages"] = report.n_chunks
    out["passages_per_s"] = report.n_chunks / out["index_s"] if out["index_s"] else None
    n_files = sum(1 for p in corpus_dir.iterdir() if p.is_file())
    if len(report.added) + len(report.skipped) != n_files:
        out["warnings"].append(f"the fresh index holds {len(report.added) + len(report.skipped)} of {n_files} reports")
    for name, why in report.failed:
        out["warnings"].append(f"{name} was not indexed: {why}")
    out["index_mb"], out["index_apparent_mb"] = dir_size_mb(index_dir)

    # Raw encoding of the same text, right after: every character once, in passage-sized windows,
    # through the same SentenceTransformer with the same batch size.
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.iterdir()) if p.is_file()]
    wins = windows(texts)
    out["chars"], out["windows"] = sum(map(len, texts)), len(wins)
    batch = int(getattr(emb, "batch_size", settings.embedding_batch_size))
    step = batch * 16
    say = phase(0.75, 0.95)
    t0 = time.perf_counter()
    for i in range(0, len(wins), step):
        say(i, len(wins), f"raw encoding {i}/{len(wins)} windows")
        model.encode(
            wins[i : i + step], batch_size=batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    out["raw_encode_s"] = time.perf_counter() - t0
    out["raw_windows_per_s"] = len(wins) / out["raw_encode_s"] if out["raw_encode_s"] else None
    out["index_over_raw"] = out["index_s"] / out["raw_encode_s"] if out["raw_encode_s"] else None

    say = phase(0.95, 1.0)
    say(0, 2, f"adding one report ({extra.name})")
    t0 = time.perf_counter()
    added = update_index(index_dir, add=[extra], settings=settings, embeddings=emb)
    out["add_s"] = time.perf_counter() - t0
    out["added"] = extra.name
    if added.added != [extra.name]:
        out["warnings"].append(f"adding {extra.name} reported added={added.added} failed={added.failed}")
    remove_id = remove_id or extra.name
    say(1, 2, f"removing one report ({remove_id})")
    t0 = time.perf_counter()
    removed = update_index(index_dir, remove=[remove_id], settings=settings, embeddings=emb)
    out["remove_s"] = time.perf_counter() - t0
    out["removed"] = remove_id
    if removed.removed != [remove_id]:
        out["warnings"].append(f"removing {remove_id} reported removed={removed.removed}")
    out["writes_peak_rss_mb"] = peak_rss_mb()
    out["index_mb_after_writes"] = dir_size_mb(index_dir)[0]
    return out


class _Texts(dict):
    """Report texts fetched from the index when first needed (citations may point at any of N reports)."""

    def __init__(self, fetch: Callable[[str], str]) -> None:
        super().__init__()
        self._fetch = fetch

    def __missing__(self, key: str) -> str:
        try:
            value = self._fetch(key)
        except Exception:  # noqa: BLE001 - an unknown source scores as an invalid citation
            value = ""
        self[key] = value
        return value

    def get(self, key, default=None):  # noqa: D102 - eval.runner._score reads texts with .get
        return self[key]


def select_questions(items: list, limit: int | None) -> list:
    """At most ``limit`` questions, spread evenly over the set (which is ordered by report and kind).

    >>> select_questions(list(range(10)), 3), select_questions(list(range(4)), None)
    ([0, 3, 6], [0, 1, 2, 3])
    """
    if not limit or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def measure_query(
    index_dir: Path, qa_path: Path, limit: int | None, progress: Progress | None = None, *, which: bool = False, seed: int = 0
) -> dict:
    """In a new process: first answer (wall clock, from the caller's start), then every question, then
    (``which``) the "which councils" questions of the synthetic corpus indexed (``seed``), then peak RSS."""
    t0 = time.perf_counter()
    from rag import query

    import_s = time.perf_counter() - t0
    ans = query(FIRST_QUESTION, index_dir=index_dir)
    out = {
        "first_answer_at": time.time(),
        "first_answer_import_s": import_s,
        "first_query_s": time.perf_counter() - t0 - import_s,
        "first_answer_rss_mb": peak_rss_mb(),
        "first_answer_abstained": bool(ans.abstained),
        "first_answer_sources": sorted({c.source for c in ans.citations}),
    }

    from eval.dataset import load_qa
    from eval.runner import _Ours, _warm_up, aggregate, per_kind
    from index import source_text
    from index.embeddings import get_embeddings
    from rag.settings import get_settings

    settings = get_settings()
    emb = get_embeddings(settings)
    texts = _Texts(lambda rid: source_text(rid, index_dir, settings=settings))
    qa = load_qa(qa_path, texts.__getitem__)
    items = select_questions(qa.questions, limit)
    if not items:
        raise ValueError(f"no usable question in {qa_path}")
    # Exactly the benchmark's default configuration: the store opened once, one warm-up question.
    runner = _Ours("default", Path(index_dir), settings, emb)
    _warm_up(runner, items, texts)
    results = []
    for i, item in enumerate(items):
        results.append(runner.run(item, texts))
        if progress:
            progress(i + 1, len(items), f"question {i + 1}/{len(items)} ({item.id})")
    if which:
        from eval.scale_which import WHICH_QA, measure_which, which_items

        asked = select_questions(which_items(WHICH_QA, texts, runner.store.reports, seed=seed), limit)
        out.update(measure_which(runner, texts, asked, progress))
    metrics = aggregate(results)
    # Questions that name their council (or follow a conversation that does) mean the same in a
    # corpus of any size; "the two councils" / "both reports" presuppose the two-report corpus and
    # become a search of every council once distractors are in. Both figures are reported.
    named = {item.id for item in items if _names_a_council(item)}
    scoped = aggregate([r for r in results if r.id in named])
    out.update(
        {
            "questions": len(items),
            "answerable": sum(q.answerable for q in items),
            "skipped_lines": len(qa.skipped),
            "query_p50_s": metrics["latency_p50_s"],
            "query_p95_s": metrics["latency_p95_s"],
            "recall@5": metrics["recall@5"],
            "fact_accuracy": metrics["fact_accuracy"],
            "metrics": metrics,
            "per_kind": per_kind(results),
            # Which questions the distractors cost: compare these lists across N.
            "misses": {
                "not_in_top5": [r.id for r in results if r.answerable and (r.first_hit() is None or r.first_hit() > 5)],
                "facts_missing": [r.id for r in results if r.correct is False],
            },
            "scoped_questions": len(named),
            "scoped_recall@5": scoped["recall@5"],
            "scoped_fact_accuracy": scoped["fact_accuracy"],
            "query_peak_rss_mb": peak_rss_mb(),
        }
    )
    return out


def _names_a_council(item) -> bool:
    """The question, or the conversation it follows, names a Welsh council (by any of its names)."""
    from index.meta import AUTHORITIES, name_alternatives

    text = " ".join([item.question, *(q for q, _ in item.history)])
    return any(re.search(rf"\b(?:{'|'.join(name_alternatives(short))})\b", text, re.I) for short in AUTHORITIES)


# ---------------------------------------------------------------- child processes


def _run_child(kind: str, args: dict, log_path: Path, progress: Progress | None) -> tuple[dict, float]:
    """Run ``python -m eval.scale --child KIND``; returns (its result, the wall-clock time it started)."""
    from eval.child import run_child

    return run_child(["-m", "eval.scale", "--child", kind, "--child-args", json.dumps(args)], log_path, progress,
                     what=f"the {kind} process of the scale benchmark")


def _query_process(index_dir: Path, qa_path: Path, limit: int | None, seed: int, log_path: Path, progress: Progress | None) -> dict:
    """The query side of one N, measured by a new process (:func:`measure_query`): its figures,
    with the time from its start to its first answer."""
    q, t_start = _run_child(
        "query", {"index": str(index_dir), "qa": str(qa_path), "limit": limit, "which": True, "seed": seed}, log_path, progress
    )
    q["first_answer_s"] = q.pop("first_answer_at") - t_start
    # A question that names no council is searched over every report, through Chroma (which a
    # question naming one does not open): its own new process.
    whole, t_start = _run_child("first", {"index": str(index_dir), "question": FIRST_QUESTION_WHOLE}, log_path, progress)
    q["first_answer_whole_s"] = whole["first_answer_at"] - t_start
    return q


def _child_main(kind: str, args: dict) -> int:
    from eval.child import Channel

    channel = Channel()
    progress = channel.progress
    if kind == "index":
        out = measure_index(
            Path(args["corpus"]), Path(args["index"]), Path(args["extra"]), args.get("remove"), progress=progress
        )
    elif kind == "first":
        from rag import query

        query(args["question"], index_dir=Path(args["index"]))
        out = {"first_answer_at": time.time()}
    elif kind == "query":
        out = measure_query(
            Path(args["index"]), Path(args["qa"]), args.get("limit"), progress=progress, which=args.get("which", False), seed=args.get("seed", 0)
        )
    else:
        raise SystemExit(f"unknown child {kind!r}")
    channel.send_result(out)
    return 0


# ---------------------------------------------------------------- one N, and the run


def _measure_n(
    n: int,
    *,
    qa_path: Path,
    limit: int | None,
    seed: int,
    isolate: bool,
    settings,
    embeddings,
    work_dir: Path | None,
    keep: bool,
    progress: Callable[[float, str], None],
) -> dict:
    from eval.synthetic import make_corpus, synthetic_report

    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"arolwg-scale-{n}-", dir=work_dir))
    try:
        corpus = tmp / "reports"
        progress(0.0, f"N={n}: writing the corpus")
        paths = make_corpus(n, corpus, seed=seed)
        extra_report = synthetic_report(n - 2, seed)  # the next copy: in no corpus of this N
        (tmp / "extra").mkdir()
        extra = tmp / "extra" / extra_report.name
        extra.write_text(extra_report.text, encoding="utf-8")
        # Remove a report of the original build (the first synthetic one), not the one just added.
        remove_id = paths[2].name if n > 2 else None
        index_dir = tmp / "index"

        def index_progress(done: int, total: int, message: str) -> None:
            progress(0.02 + 0.88 * (done / total if total else 0), f"N={n}: {message}")

        if isolate:
            row, _ = _run_child(
                "index",
                {"corpus": str(corpus), "index": str(index_dir), "extra": str(extra), "remove": remove_id},
                tmp / "index.log",
                index_progress,
            )
        else:
            row = measure_index(corpus, index_dir, extra, remove_id, settings=settings, embeddings=embeddings, progress=index_progress)

        def query_progress(done: int, total: int, message: str) -> None:
            progress(0.92 + 0.08 * (done / total if total else 0), f"N={n}: {message}")

        progress(0.9, f"N={n}: new process to first answer")
        row.update(_query_process(index_dir, qa_path, limit, seed, tmp / "query.log", query_progress))
        row.update(
            {
                "n": n,
                "synthetic": n - 2,
                "isolated": isolate,
                "load_before": load_before,
                "load_after": [round(x, 2) for x in os.getloadavg()],
                "seconds": time.perf_counter() - started,
            }
        )
        if keep:
            row["work_dir"] = str(tmp)
        log.info(
            "N=%d: index %.1f s (raw encoding %.1f s), add %.2f s, remove %.2f s, first answer %.1f s, p95 %.0f ms, "
            "recall@5 %.3f, fact accuracy %.3f",
            n, row["index_s"], row["raw_encode_s"], row["add_s"], row["remove_s"], row["first_answer_s"],
            (row["query_p95_s"] or 0) * 1000, row["recall@5"] or 0, row["fact_accuracy"] or 0,
        )
        return row
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, checked at the largest N against the 2-report row of the same run."""
    last = rows[-1]
    base = next((r for r in rows if r["n"] == BASELINE_N), None)

    def at_most(key: str, limit: float | None) -> bool | None:
        v = last.get(key)
        return None if v is None or limit is None else v <= limit

    def at_least(key: str, limit: float) -> bool | None:
        v = last.get(key)
        return None if v is None else v >= limit

    def within(key: str) -> tuple[float | None, bool | None]:
        v, b = last.get(key), base.get(key) if base else None
        if v is None or b is None:
            return None, None
        return v - b, abs(v - b) <= 0.03 + 1e-9

    p95_limit = 1.5 * base["query_p95_s"] if base and base.get("query_p95_s") else None
    r_diff, r_met = within("recall@5")
    f_diff, f_met = within("fact_accuracy")
    sr_diff, sr_met = within("scoped_recall@5")
    sf_diff, sf_met = within("scoped_fact_accuracy")
    return [
        {"key": "index_over_raw", "target": "whole index / raw encoding of the same text <= 1.5x", "value": last.get("index_over_raw"), "limit": 1.5, "met": at_most("index_over_raw", 1.5)},
        {"key": "add_s", "target": "add one report to the built index <= 10 s", "value": last.get("add_s"), "limit": 10.0, "met": at_most("add_s", 10.0)},
        {"key": "remove_s", "target": "remove one report <= 5 s", "value": last.get("remove_s"), "limit": 5.0, "met": at_most("remove_s", 5.0)},
        {"key": "first_answer_s", "target": "new process to first answer <= 5 s", "value": last.get("first_answer_s"), "limit": 5.0, "met": at_most("first_answer_s", 5.0)},
        {"key": "first_answer_whole_s", "target": "new process to first answer, a question naming no council <= 5 s", "value": last.get("first_answer_whole_s"), "limit": 5.0, "met": at_most("first_answer_whole_s", 5.0)},
        {"key": "query_p95_s", "target": "warm query p95 <= 150 ms", "value": last.get("query_p95_s"), "limit": 0.15, "met": at_most("query_p95_s", 0.15)},
        {"key": "query_p95_s", "target": f"warm query p95 <= 1.5x the {BASELINE_N}-report p95 of the same run", "value": last.get("query_p95_s"), "limit": p95_limit, "met": at_most("query_p95_s", p95_limit)},
        {"key": "query_peak_rss_mb", "target": "peak RSS of a query process <= 1 GB (1,024 MB)", "value": last.get("query_peak_rss_mb"), "limit": RSS_LIMIT_MB, "met": at_most("query_peak_rss_mb", RSS_LIMIT_MB)},
        {"key": "recall@5", "target": f"recall@5 within 0.03 of the {BASELINE_N}-report figure", "value": last.get("recall@5"), "difference": r_diff, "limit": 0.03, "met": r_met},
        {"key": "fact_accuracy", "target": f"fact accuracy within 0.03 of the {BASELINE_N}-report figure", "value": last.get("fact_accuracy"), "difference": f_diff, "limit": 0.03, "met": f_met},
        {"key": "scoped_recall@5", "target": f"recall@5 on questions naming a council, within 0.03 of the {BASELINE_N}-report figure", "value": last.get("scoped_recall@5"), "difference": sr_diff, "limit": 0.03, "met": sr_met},
        {"key": "scoped_fact_accuracy", "target": f"fact accuracy on questions naming a council, within 0.03 of the {BASELINE_N}-report figure", "value": last.get("scoped_fact_accuracy"), "difference": sf_diff, "limit": 0.03, "met": sf_met},
        {"key": "which_recall", "target": "'which councils' questions: council recall >= 0.8", "value": last.get("which_recall"), "limit": 0.8, "met": at_least("which_recall", 0.8)},
        {"key": "which_precision", "target": "'which councils' questions: council precision >= 0.9", "value": last.get("which_precision"), "limit": 0.9, "met": at_least("which_precision", 0.9)},
        {"key": "which_p95_s", "target": "a 'which councils' answer: p95 <= 2 s", "value": last.get("which_p95_s"), "limit": 2.0, "met": at_most("which_p95_s", 2.0)},
    ]


def run_scale(
    ns: Sequence[int] | str = DEFAULT_NS,
    *,
    qa_path: Path | str | None = None,
    questions: int | None = None,
    out_dir: Path | str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    isolate: bool = True,
    settings=None,
    embeddings=None,
    work_dir: Path | str | None = None,
    keep: bool = False,
    write: bool = True,
) -> ScaleResult:
    """Measure every N (2 always included) and write scale.json, scale.md and scale.png.

    ``questions``: ask only that many questions of the Q&A set (spread over it) for a quick run.
    ``isolate=False`` indexes in this process with ``embeddings`` (quicker, for tests: the peak RSS
    is then this whole process's); the query process is always a new one. ``keep``: leave each
    N's corpus and index in ``work_dir`` (default: the system's temporary folder).
    """
    from eval.runner import DEFAULT_QA, _git_commit, default_out_dir

    ns = parse_ns(ns if isinstance(ns, str) else list(ns))
    if questions is not None and questions < 1:  # checked now: the query process would fail after the indexing
        raise ValueError(f"--scale-questions takes a number of questions of at least 1, not {questions}")
    if BASELINE_N not in ns:
        ns = [BASELINE_N, *ns]
        log.info("N=%d added: it is the baseline of the targets", BASELINE_N)
    qa_path = Path(qa_path) if qa_path else DEFAULT_QA
    if not qa_path.is_file():
        from rag.errors import EvalSetError

        raise EvalSetError(f"The question set {qa_path} does not exist: give the path of a .jsonl file.")
    if not isolate and embeddings is None:
        from index.embeddings import get_embeddings
        from rag.settings import get_settings

        settings = settings or get_settings()
        embeddings = get_embeddings(settings)
    started_at = datetime.now(timezone.utc)
    t_run = time.perf_counter()
    total = 100 * len(ns)
    rows: list[dict] = []
    for i, n in enumerate(ns):

        def tick(fraction: float, message: str, i: int = i) -> None:
            if progress:
                progress(min(total, int(100 * (i + min(1.0, fraction)))), total, message)

        rows.append(
            _measure_n(
                n,
                qa_path=qa_path,
                limit=questions,
                seed=seed,
                isolate=isolate,
                settings=settings,
                embeddings=embeddings,
                work_dir=Path(work_dir) if work_dir else None,
                keep=keep,
                progress=tick,
            )
        )
        if write and i < len(ns) - 1:
            # Written after every N, so a long run that is stopped keeps what it measured.
            _result(rows, ns, started_at, t_run, seed, qa_path, questions, settings, isolate, write_to=out_dir or "")
    if progress:
        progress(total, total, "writing the results")
    return _result(rows, ns, started_at, t_run, seed, qa_path, questions, settings, isolate, write_to=(out_dir or "") if write else None)


def _result(rows, ns, started_at, t_run, seed, qa_path, questions, settings, isolate, *, write_to) -> ScaleResult:
    """The run so far as a ScaleResult (targets at the largest N measured), written if asked."""
    from eval.runner import _git_commit, default_out_dir
    from rag.settings import get_settings as _gs

    s = settings or _gs()
    warnings = [f"N={r['n']}: {w}" for r in rows for w in r.get("warnings", [])]
    meta = {
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t_run, 1),
        "git_commit": _git_commit(),
        "ns": ns,
        "seed": seed,
        "qa_path": str(qa_path),
        "questions_limit": questions,
        "first_question": FIRST_QUESTION,
        "first_question_whole": FIRST_QUESTION_WHOLE,
        "window_chars": WINDOW_CHARS,
        "embedding_batch_size": s.embedding_batch_size,
        "chroma": f"server {s.chroma_host}:{s.chroma_port}" if s.chroma_host else "on disk (PersistentClient in the index folder)",
        "isolated": isolate,
        **machine(),
        "platform": platform.platform(),
    }
    meta["ns_measured"] = [r["n"] for r in rows]
    result = ScaleResult(rows=list(rows), targets=_targets(rows), meta=meta, warnings=warnings)
    if write_to is not None:
        from eval.scale_report import write_outputs

        write_outputs(result, Path(write_to) if write_to else default_out_dir())
    return result


def requery(
    json_path: str | Path,
    *,
    qa_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    write: bool = True,
) -> ScaleResult:
    """Measure again the query side of a kept run (``--scale-keep``) on its own indexes.

    For a change that touches only answering (not indexing): each N's index, left where the run kept
    it, is asked the same questions by a new query process, as :func:`run_scale` does, and the
    query-side figures (first answer, latency, memory, quality, which councils) replace the old
    ones. The indexing figures stay those of the original run; ``meta`` says which commit measured
    which side. The questions are ``qa_path``'s, else the run's set if it is still there, else the
    bundled ``eval/qa.jsonl``.
    """
    try:
        old = json.loads(Path(json_path).read_text())
        rows = [dict(r) for r in old["rows"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"Cannot read the scale benchmark's results {json_path} ({exc}): give its scale.json.") from exc
    missing = [r["n"] for r in rows if not (r.get("work_dir") and (Path(r["work_dir"]) / "index").is_dir())]
    if missing:
        raise RuntimeError(
            f"{json_path}: the indexes of N = {', '.join(map(str, missing))} were not kept: run the benchmark "
            "with --scale-keep first."
        )
    m = old["meta"]
    from eval.runner import DEFAULT_QA

    qa_path = Path(qa_path) if qa_path else Path(m.get("qa_path") or DEFAULT_QA)
    if not qa_path.is_file() and "qa_path" in m and Path(m["qa_path"]).name == DEFAULT_QA.name:
        qa_path = DEFAULT_QA  # the run's checkout is gone; its set is the bundled one
    if not qa_path.is_file():
        from rag.errors import EvalSetError

        raise EvalSetError(f"The question set {qa_path} does not exist: give the path of a .jsonl file with --qa.")
    t_run = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    _compile_question_encoder()
    for i, row in enumerate(rows):
        n = row["n"]

        def tick(done: int, total: int, message: str, i: int = i, n: int = n) -> None:
            if progress:
                progress(int(100 * (i + (done / total if total else 0))), 100 * len(rows), f"N={n}: {message}")

        load_before = [round(x, 2) for x in os.getloadavg()]
        tmp = Path(row["work_dir"])
        row.update(_query_process(tmp / "index", qa_path, m.get("questions_limit"), m.get("seed", 0), tmp / "requery.log", tick))
        row["requery_load"] = [load_before, [round(x, 2) for x in os.getloadavg()]]
    from eval.runner import _git_commit

    result = _result(rows, m["ns"], datetime.fromisoformat(m["started"]), t_run, m.get("seed", 0), qa_path,
                     m.get("questions_limit"), None, m.get("isolated", True), write_to=None)
    result.meta.update({
        "seconds": m.get("seconds"),
        "git_commit": m.get("git_commit"),
        "query_side_git_commit": _git_commit(),
        "query_side_measured": started_at.isoformat(timespec="seconds"),
        "query_side_seconds": round(time.perf_counter() - t_run, 1),
    })
    if write:
        from eval.runner import default_out_dir
        from eval.scale_report import write_outputs

        write_outputs(result, Path(out_dir) if out_dir else default_out_dir())
    return result


def _compile_question_encoder() -> None:
    """Make the compiled question encoder now if it is not kept yet, as ``arolwg index`` makes it:
    the query processes measured then start as a user's do after indexing."""
    from index.embeddings import get_embeddings
    from rag.settings import get_settings

    get_embeddings(get_settings()).encode(["a question"])


# ---------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scale benchmark's options of ``arolwg eval``."""
    g = parser.add_argument_group(
        "scale benchmark",
        "With --scale, arolwg eval measures what indexing and querying cost as the corpus grows, instead of "
        "comparing configurations. Each N is a corpus made in a temporary folder: the two bundled reports plus "
        "N-2 synthetic copies (fictional councils, other dates, perturbed numbers). Per N: whole indexing time "
        "and the raw encoder time of the same text, peak RSS, index size, adding and removing one report, a new "
        "process's time to its first answer and its peak RSS, warm query p50/p95, recall@5 and fact accuracy "
        "on the Q&A set. Writes scale.json, scale.md and scale.png to --out (default eval/results). --qa and "
        "--out apply to it; --reports, --index and --configs do not.",
    )
    g.add_argument(
        "--scale",
        metavar="N[,N...]",
        default=None,
        help="report counts to measure, e.g. 2,100,500,1000 (N=2 is always added as the baseline). "
        "The default 2,100,500,1000 can take an hour or more on 2 cores.",
    )
    g.add_argument(
        "--scale-questions",
        type=int,
        default=None,
        metavar="K",
        help="ask only K questions of the Q&A set per N (spread over it), for a quick run (default: all)",
    )
    g.add_argument("--scale-seed", type=int, default=0, metavar="S", help="seed of the synthetic corpora (default 0)")
    g.add_argument("--scale-keep", action="store_true", help="keep each N's corpus and index (their folders are listed)")
    g.add_argument(
        "--scale-requery",
        metavar="FILE",
        default=None,
        help="measure again only the query side (first answer, latency, memory, quality) of a run kept with "
        "--scale-keep, whose scale.json is FILE, on its own indexes: for a change to answering alone",
    )


def run(args: argparse.Namespace) -> int:
    """Run the scale benchmark from parsed ``arolwg eval`` arguments; print the table and the targets."""
    from rich.console import Console
    from rich.markup import escape  # notes name files and quote errors

    from eval.runner import with_progress_bar
    from eval.scale_report import rich_table

    requery_from = getattr(args, "scale_requery", None)
    result = with_progress_bar(
        "scale",
        lambda progress: requery(requery_from, qa_path=getattr(args, "qa", None), out_dir=getattr(args, "out", None), progress=progress)
        if requery_from
        else run_scale(
            args.scale,
            qa_path=getattr(args, "qa", None),
            questions=getattr(args, "scale_questions", None),
            out_dir=getattr(args, "out", None),
            seed=getattr(args, "scale_seed", 0) or 0,
            keep=bool(getattr(args, "scale_keep", False)),
            progress=progress,
        ),
        errors=(RuntimeError,),
    )
    if result is None:
        return 1
    console = Console()
    console.print(rich_table(result))
    m = result.meta
    console.print(
        f"{m['cpus_usable']} CPUs ({m['cpu_model']}); load average per N in the table. "
        f"Results: {result.json_path}, {result.markdown_path}, {result.chart_path}",
        soft_wrap=True,
        highlight=False,
    )
    for r in result.rows:
        if r.get("work_dir"):
            console.print(f"N={r['n']}: corpus and index kept in {r['work_dir']}", soft_wrap=True, highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]Note:[/yellow] {escape(w)}", soft_wrap=True, highlight=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.scale --scale 2,100`` (the same as ``arolwg eval --scale 2,100``)."""
    from eval.runner import add_input_arguments

    parser = argparse.ArgumentParser(prog="python -m eval.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=["index", "query", "first"], help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    add_input_arguments(parser, ("qa", "out"))
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args.child, json.loads(args.child_args))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.scale is None and not args.scale_requery:  # --scale "" is refused by parse_ns, not taken for the hour-long default
        args.scale = ",".join(map(str, DEFAULT_NS))
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
