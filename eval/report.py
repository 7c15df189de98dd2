"""Render a benchmark run: a rich terminal table, a Markdown report, JSON and PNG charts.

>>> from eval.report import fmt
>>> fmt("recall@5", 0.8333), fmt("latency_p50_s", 0.01234), fmt("fact_accuracy", None)
('0.833', '12.3 ms', 'n/a')
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eval.runner import BenchmarkResult

log = logging.getLogger(__name__)

# (key, label); grouped for the tables. Stage latencies are added from what the run measured.
RETRIEVAL = [
    ("recall@1", "recall@1"),
    ("recall@3", "recall@3"),
    ("recall@5", "recall@5"),
    ("recall@10", "recall@10"),
    ("mrr", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("full_recall@5", "all evidence in top 5"),
    ("comparison_recall@5", "comparison: recall@5"),
    ("comparison_full_recall@5", "comparison: all evidence in top 5"),
]
ANSWERS = [
    ("fact_accuracy", "fact accuracy"),
    ("accuracy_when_answered", "fact accuracy when answered"),
    ("answered_rate_answerable", "answered rate, answerable (target >= 0.95)"),
    ("abstained_rate_unanswerable", "abstained rate, unanswerable (target >= 0.9)"),
    ("abstention_precision", "abstention precision"),
    ("abstention_recall", "abstention recall"),
    ("citation_precision", "citation precision"),
    ("citation_validity", "citation validity"),
    ("in_time_rate", "time questions: no citation out of time (target >= 0.95)"),
    ("in_time_answered", "time questions: answered rate, answerable"),
    ("council_precision", "which-councils questions: council precision (target >= 0.9)"),
    ("council_recall", "which-councils questions: council recall (target >= 0.8)"),
    ("dated_line_rate", "answer lines citing a council with several reports: labelled with council and year"),
    ("dated_lines", "answer lines citing a council with several reports"),
    ("answer_chars_median", "answer length, median chars"),
]
COST = [
    ("index_seconds", "index build"),
    ("index_chunks", "chunks"),
    ("index_chunks_per_s", "chunks/s"),
    ("latency_p50_s", "query latency p50"),
    ("latency_p95_s", "query latency p95"),
]
TAIL = [("errors", "errors")]
# The tutorial's "answer" is its retrieved passages: these numbers are real but not a generated answer's.
TUTORIAL_CAVEAT = {"fact_accuracy", "answered_rate_answerable", "abstained_rate_unanswerable", "answer_chars_median"}


# Per-kind scores of the corpus question sets (eval/corpus_qa.jsonl, eval/corpus_heldout.jsonl).
KIND_EXTRA = [
    ("in_time_rate", "no citation out of time"),
    ("council_precision", "council precision"),
    ("council_recall", "council recall"),
    ("dated_line_rate", "lines labelled with date"),
]


# Stages repeated elsewhere in the table (total = query latency) are left to the JSON.
HIDDEN_STAGES = {"latency", "total"}


def rows(result: BenchmarkResult) -> list[tuple[str, str, str]]:
    """(group, key, label) of every row to show, with the stage latencies that take at least 1 ms."""
    stages = sorted(
        {
            k[: -len("_p50_s")]
            for m in result.metrics.values()
            for k, v in m.items()
            if k.endswith("_p50_s")
            and k[: -len("_p50_s")] not in HIDDEN_STAGES
            and any((mm.get(k[: -len("_p50_s")] + "_p95_s") or 0) >= 0.001 for mm in result.metrics.values())
        }
    )
    cost = list(COST)
    for stage in stages:
        cost += [(f"{stage}_p50_s", f"stage {stage} p50"), (f"{stage}_p95_s", f"stage {stage} p95")]
    out = [("Retrieval", k, label) for k, label in RETRIEVAL]
    out += [("Answers", k, label) for k, label in ANSWERS]
    if "llm" in result.configs:
        out.append(("Answers", "llm_fallbacks", "answers with a notice (LLM replaced by extractive)"))
    out += [("Cost", k, label) for k, label in cost + TAIL]
    return out


def fmt(key: str, value: float | None) -> str:
    """A metric value as shown in tables."""
    if value is None:
        return "n/a"
    if key in ("index_chunks", "errors", "citations", "questions", "answerable", "llm_fallbacks", "dated_lines"):
        return f"{int(value)}"
    if key in ("index_chunks_per_s", "answer_chars_median", "answer_chars_mean", "peak_rss_mb"):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if key.endswith("_s") and key != "index_seconds":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"
    if key == "index_seconds":
        return f"{value:.3g} s"
    return f"{value:.3f}"


def _ratio(r: float | None) -> str:
    return "" if r is None else f" (x{r:.2f})"


def cell(result: BenchmarkResult, config: str, key: str, ratios: dict | None) -> str:
    value = result.metrics[config].get(key)
    text = fmt(key, value)
    if config == "tutorial" and key in TUTORIAL_CAVEAT and value is not None:
        text += " †"
    if ratios and config != "tutorial" and value is not None:
        text += _ratio(ratios[config].get(key))
    return text


def rich_table(result: BenchmarkResult):
    """A rich Table of every metric by configuration, with ratios to the tutorial pipeline."""
    from rich.table import Table

    ratios = result.ratios() if "tutorial" in result.metrics else None
    caption = (
        "(xN) = ratio to the tutorial pipeline. † tutorial: no generator, its 'answer' is its 4 passages joined. "
        "Tutorial recall@5/10 come from a deeper search than the 4 it returns."
        if ratios
        else None
    )
    n = result.meta.get("questions")
    table = Table(title=f"Arolwg benchmark: {n} questions ({result.meta.get('answerable')} answerable)", caption=caption)
    table.add_column("metric")
    for config in result.configs:
        table.add_column(config, justify="right")
    group = None
    for g, key, label in rows(result):
        if not any(key in result.metrics[c] for c in result.configs):
            continue
        if g != group:
            table.add_section()
            table.add_row(f"[bold]{g}[/bold]", *[""] * len(result.configs))
            group = g
        table.add_row(label, *[cell(result, c, key, ratios) for c in result.configs])
    return table


def to_markdown(result: BenchmarkResult, chart_name: str | None, sweep_chart_name: str | None) -> str:
    """The whole run as Markdown."""
    meta = result.meta
    ratios = result.ratios() if "tutorial" in result.metrics else None
    out = [
        "# Arolwg benchmark",
        "",
        f"Run {meta.get('started')} (commit {meta.get('git_commit') or 'unknown'}), {meta.get('seconds')} s. "
        f"Question set `{Path(meta.get('qa_path', '')).name}`: {meta.get('questions')} questions used "
        f"({meta.get('answerable')} answerable), {meta.get('skipped_lines')} line(s) skipped. "
        f"Reports: {', '.join(meta.get('reports', []))}. Machine: {meta.get('cpu_count')} CPUs, load average "
        f"{'/'.join(str(x) for x in meta.get('load_average') or [])} (start/end; latencies grow with load). "
        f"Peak memory of the whole run: {fmt('peak_rss_mb', meta.get('peak_rss_mb'))} MB RSS.",
        "",
    ]
    if ratios:
        out += ["(xN) is the ratio to the tutorial pipeline; † marks tutorial numbers about its retrieved passages, not a generated answer.", ""]
    out += ["| metric | " + " | ".join(result.configs) + " |", "|---|" + "---:|" * len(result.configs)]
    group = None
    for g, key, label in rows(result):
        if not any(key in result.metrics[c] for c in result.configs):
            continue
        if g != group:
            out.append(f"| **{g}** |" + " |" * len(result.configs))
            group = g
        out.append(f"| {label} | " + " | ".join(cell(result, c, key, ratios) for c in result.configs) + " |")
    out.append("")
    if chart_name:
        out += [f"![benchmark chart]({chart_name})", ""]

    # The corpus questions' own scores get a column when some kind has them (a set about reports
    # over time, or "which councils" questions); a set without them keeps the plain table.
    extra = [
        (key, label)
        for key, label in KIND_EXTRA
        if any(key in v for kinds in meta.get("per_kind", {}).values() for v in kinds.values())
    ]
    out += [
        "## By kind of question",
        "",
        "| config | kind | n | recall@5 | fact accuracy | abstained |" + "".join(f" {label} |" for _, label in extra),
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(extra),
    ]
    for config, kinds in meta.get("per_kind", {}).items():
        for kind, v in kinds.items():
            out.append(
                f"| {config} | {kind} | {v['n']} | {fmt('r', v['recall@5'])} | {fmt('r', v['fact_accuracy'])} | "
                f"{fmt('r', v['abstained_rate'])} |" + "".join(f" {fmt('r', v.get(key))} |" for key, _ in extra)
            )
    out.append("")

    if result.sweep is not None:
        out += ["## Abstention threshold (default configuration)", ""]
        best = result.sweep.get("best")
        if best:
            verdict = "meets both targets" if best["meets_targets"] else "does NOT meet both targets"
            out += [
                f"Best threshold: **{best['threshold']:.4g}** ({verdict}): answers "
                f"{best['answered_rate_answerable']:.1%} of answerable questions (target 95%), abstains on "
                f"{best['abstained_rate_unanswerable']:.1%} of unanswerable ones (target 90%)"
                + (f", fact accuracy {best['fact_accuracy']:.1%}." if "fact_accuracy" in best else "."),
                "",
                "Each question was asked once with abstention off; the answerer abstains when its evidence "
                "score is below the threshold.",
                "",
            ]
        else:
            out += ["No evidence scores were available to sweep.", ""]
        points = result.sweep.get("points", [])
        if points:
            out += ["| threshold | answered (answerable) | abstained (unanswerable) | fact accuracy | meets targets |", "|---:|---:|---:|---:|:---:|"]
            for p in _thin(points, 25):
                out.append(
                    f"| {p['threshold']:.4g} | {fmt('r', p['answered_rate_answerable'])} | "
                    f"{fmt('r', p['abstained_rate_unanswerable'])} | {fmt('r', p.get('fact_accuracy'))} | "
                    f"{'yes' if p['meets_targets'] else ''} |"
                )
            out.append("")
        if sweep_chart_name:
            out += [f"![abstention sweep]({sweep_chart_name})", ""]

    misses = _misses(result)
    if misses:
        out += ["## Misses of the default configuration", ""] + misses + [""]

    out += ["## How it was measured", ""]
    out += [f"- **{k}**: {v}" for k, v in result.notes.items()]
    out += [f"- **memory**: {meta.get('memory_note')}", ""]
    if result.skipped or result.warnings:
        out += ["## Skipped lines and notes", ""]
        out += [f"- Skipped: {s['message']}" for s in result.skipped]
        out += [f"- Note: {w}" for w in result.warnings]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _thin(points: list[dict], limit: int) -> list[dict]:
    """At most ``limit`` points, always keeping those that meet the targets' edges and the ends."""
    if len(points) <= limit:
        return points
    step = len(points) / limit
    keep = {int(i * step) for i in range(limit)} | {0, len(points) - 1}
    keep |= {i for i, p in enumerate(points) if p["meets_targets"] and (i == 0 or not points[i - 1]["meets_targets"])}
    return [p for i, p in enumerate(points) if i in keep]


def _misses(result: BenchmarkResult) -> list[str]:
    if "default" not in result.metrics:
        return []
    qs = [q for q in result.questions if q.config == "default"]
    no_hit = [q.id for q in qs if q.answerable and (q.first_hit() is None or q.first_hit() > 5)]
    wrong = [q.id for q in qs if q.answerable and q.correct is False and not q.abstained]
    abstained = [q.id for q in qs if q.answerable and q.abstained]
    answered_un = [q.id for q in qs if not q.answerable and not q.abstained]
    return [
        f"- gold evidence not in top 5 ({len(no_hit)}): {', '.join(no_hit) or 'none'}",
        f"- answered without every fact ({len(wrong)}): {', '.join(wrong) or 'none'}",
        f"- abstained on answerable ({len(abstained)}): {', '.join(abstained) or 'none'}",
        f"- answered unanswerable ({len(answered_un)}): {', '.join(answered_un) or 'none'}",
    ]


# ---------------------------------------------------------------- charts and files


def chart(result: BenchmarkResult, path: Path) -> Path:
    """Grouped bars of quality metrics and query latency per configuration, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the runner works on servers and in CI
    import matplotlib.pyplot as plt

    keys = [
        ("recall@1", "recall@1"),
        ("recall@5", "recall@5"),
        ("mrr", "MRR"),
        ("ndcg@10", "nDCG@10"),
        ("fact_accuracy", "fact acc."),
        ("abstained_rate_unanswerable", "abstained\n(unanswerable)"),
        ("citation_validity", "citation\nvalidity"),
    ]
    configs = result.configs
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1.2]})
    width = 0.8 / max(1, len(configs))
    for i, config in enumerate(configs):
        values = [result.metrics[config].get(k) for k, _ in keys]
        xs = [j + (i - (len(configs) - 1) / 2) * width for j in range(len(keys))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=config, hatch="//" if config == "tutorial" else None)
    ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher is better)")
    ax.set_title(f"Quality on {result.meta.get('questions')} questions")
    ax.legend(fontsize=8, ncol=min(len(configs), 6), loc="lower center", bbox_to_anchor=(0.5, -0.3))
    ax.grid(axis="y", alpha=0.3)
    p50 = [(result.metrics[c].get("latency_p50_s") or 0) * 1000 for c in configs]
    p95 = [(result.metrics[c].get("latency_p95_s") or 0) * 1000 for c in configs]
    xs = range(len(configs))
    ax2.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    ax2.bar([x + 0.2 for x in xs], p95, 0.4, label="p95")
    ax2.set_xticks(list(xs), configs, rotation=30, fontsize=8)
    positive = [v for v in p50 + p95 if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax2.set_yscale("log")  # an LLM's seconds would flatten the others' milliseconds to nothing
    ax2.set_ylabel("ms per question")
    ax2.set_title("Query latency")
    ax2.legend(fontsize=8)
    ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_chart(result: BenchmarkResult, path: Path) -> Path | None:
    """Answered rate (answerable) and abstained rate (unanswerable) against the abstention threshold."""
    points = (result.sweep or {}).get("points") or []
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inner = points[1:-1] or points  # the two end points sit a whole unit outside the scores
    xs = [p["threshold"] for p in inner]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.step(xs, [p["answered_rate_answerable"] for p in inner], where="mid", label="answered (answerable)")
    ax.step(xs, [p["abstained_rate_unanswerable"] for p in inner], where="mid", label="abstained (unanswerable)")
    if "fact_accuracy" in inner[0]:
        ax.step(xs, [p["fact_accuracy"] for p in inner], where="mid", label="fact accuracy", alpha=0.6)
    ax.axhline(0.95, ls=":", c="C0", lw=1)
    ax.axhline(0.9, ls=":", c="C1", lw=1)
    best = result.sweep.get("best")
    if best:
        ax.axvline(best["threshold"], ls="--", c="k", lw=1, label=f"best {best['threshold']:.3g}")
    ax.set_xlabel("abstention threshold (evidence score)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Abstention threshold sweep (default configuration)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: BenchmarkResult, out_dir: Path, started: datetime) -> None:
    """Write eval-<time>.{json,md,png} (and -sweep.png) and copy them to latest.* in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "eval-" + started.strftime("%Y%m%d-%H%M%S")
    result.chart_path = chart(result, out_dir / f"{stem}.png")
    result.sweep_chart_path = sweep_chart(result, out_dir / f"{stem}-sweep.png")
    result.json_path = out_dir / f"{stem}.json"
    result.json_path.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    result.markdown_path = out_dir / f"{stem}.md"
    result.markdown_path.write_text(result.to_markdown(), encoding="utf-8")
    # Stable names for the README to link to; the timestamped files keep the history of runs.
    shutil.copyfile(result.json_path, out_dir / "latest.json")
    shutil.copyfile(result.chart_path, out_dir / "latest.png")
    sweep_name = None
    if result.sweep_chart_path:
        shutil.copyfile(result.sweep_chart_path, out_dir / "latest-sweep.png")
        sweep_name = "latest-sweep.png"
    (out_dir / "latest.md").write_text(result.to_markdown("latest.png", sweep_name), encoding="utf-8")
    log.info("results written to %s", out_dir)
