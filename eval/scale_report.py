"""Render a scale benchmark run: a rich terminal table, a Markdown report, JSON and a PNG chart.

The companion of :mod:`eval.report` for :mod:`eval.scale`.

>>> fmt("s", 93.12), fmt("s", 1071.4), fmt("ms", 0.0321), fmt("ms", 0.557), fmt("x", 2.954), fmt("mb", 709.4)
('93.1 s', '1,071 s', '32.1 ms', '557 ms', '2.95x', '709 MB')
>>> fmt("load", [2.31, 1.9, 1.2]), fmt("score", 0.92593), fmt("score", None)
('2.31', '0.926', 'n/a')
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from eval.scale import COLUMNS

if TYPE_CHECKING:
    from eval.scale import ScaleResult

log = logging.getLogger(__name__)

KINDS = {key: kind for key, _, kind in COLUMNS}


def fmt(kind: str, value) -> str:
    """A measurement as shown in the tables, by its kind (see :data:`eval.scale.COLUMNS`)."""
    if value is None:
        return "n/a"
    if kind == "int":
        return f"{int(value):,}"
    if kind in ("s", "ms") and value < 1:
        return f"{value * 1000:.3g} ms" if value < 0.1 else f"{value * 1000:.0f} ms"
    if kind in ("s", "ms"):
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "mb":
        return f"{value:,.0f} MB" if value >= 100 else f"{value:.3g} MB"
    if kind == "load":
        return f"{value[0]:.2f}" if isinstance(value, list | tuple) else f"{value:.2f}"
    return f"{value:.3f}"


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**not met**"


def target_rows(result: ScaleResult) -> list[tuple[str, str, str]]:
    """(target, measured value, verdict) for each target, at the largest N."""
    out = []
    for t in result.targets:
        kind = KINDS.get(t["key"], "score")
        value = fmt(kind, t.get("value"))
        if "difference" in t:
            diff = "n/a" if t["difference"] is None else f"{t['difference']:+.3f}"
            value += f" ({diff} vs N=2)"
        elif t["key"] == "query_p95_s" and "1.5x" in t["target"] and t.get("limit") is not None:
            value += f" (limit {fmt('ms', t['limit'])})"
        out.append((t["target"], value, _verdict(t.get("met"))))
    return out


def rich_table(result: ScaleResult):
    """The rows per N (transposed: one column per N, it fits a terminal) and the targets."""
    from rich.console import Group
    from rich.table import Table

    ns = [r["n"] for r in result.rows]
    table = Table(title="Arolwg scale benchmark (synthetic corpora around the two real reports)")
    table.add_column("measurement")
    for n in ns:
        table.add_column(f"N={n:,}", justify="right")
    for key, label, kind in COLUMNS[1:]:
        table.add_row(label, *[fmt(kind, r.get(key)) for r in result.rows])
    targets = Table(title=f"Targets at N = {ns[-1]:,}")
    targets.add_column("target")
    targets.add_column("measured", justify="right")
    targets.add_column("verdict")
    for t, v, verdict in target_rows(result):
        targets.add_row(t, v, verdict.replace("**", ""))
    return Group(table, targets)


def to_markdown(result: ScaleResult, chart_name: str | None) -> str:
    """The whole run as Markdown: one row per N, every measurement a column, then the targets."""
    meta = result.meta
    last = result.rows[-1]["n"]
    out = [
        "# Arolwg scale benchmark",
        "",
        f"Run {meta['started']} (commit {meta.get('git_commit') or 'unknown'}), {meta['seconds']} s. "
        f"Machine: {meta['cpus_usable']} CPUs usable of {meta['cpu_count']} ({meta['cpu_model']}), "
        f"Python {meta['python']}; the load average (1 minute) before and after each N is in the table: "
        "times grow with load. "
        f"Vectors: Chroma {meta['chroma']}. Embedding batch size {meta['embedding_batch_size']}."
        + (
            f" The query side (new process to first answer, warm latency, query RSS, quality, which councils) was "
            f"measured again on the same kept indexes on {meta['query_side_measured']} (commit "
            f"{meta.get('query_side_git_commit') or 'unknown'}, `--scale-requery`, {meta['query_side_seconds']} s; load "
            "before and after each N in the JSON, `requery_load`); the indexing columns are the run's."
            if meta.get("query_side_measured")
            else ""
        ),
        "",
        "Each corpus is the two bundled reports plus N - 2 **synthetic** copies made on the fly in a temporary "
        "folder (`eval/synthetic.py`, seed "
        f"{meta['seed']}): fictional councils, other inspection dates, perturbed numbers. They are test data, "
        "never shipped or shown as real reports. Quality is measured on "
        f"`{Path(meta['qa_path']).name}`"
        + (f" ({result.rows[0].get('questions')} of its questions, spread over the set: a quick run)" if meta.get("questions_limit") else "")
        + " with the synthetic reports as distractors.",
        "",
        "| " + " | ".join(label for _, label, _ in COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
    ]
    for r in result.rows:
        out.append("| " + " | ".join(fmt(kind, r.get(key)) for key, _, kind in COLUMNS) + " |")
    out.append("")
    if chart_name:
        out += [f"![scale chart]({chart_name})", ""]
    out += [f"## Targets at N = {last:,}", "", "| target | measured | verdict |", "|---|---:|---|"]
    out += [f"| {t} | {v} | {verdict} |" for t, v, verdict in target_rows(result)]
    kinds = sorted({k for r in result.rows for k in r.get("per_kind", {})})
    if kinds:
        out += [
            "",
            "## Quality by kind of question",
            "",
            "recall@5 / fact accuracy per N (the question ids each N misses are in the JSON, `misses`).",
            "",
            "| kind | n | " + " | ".join(f"N={r['n']:,}" for r in result.rows) + " |",
            "|---|---:|" + "---:|" * len(result.rows),
        ]
        for kind in kinds:
            cells = []
            for r in result.rows:
                v = r.get("per_kind", {}).get(kind, {})
                cells.append(f"{fmt('score', v.get('recall@5'))} / {fmt('score', v.get('fact_accuracy'))}")
            n = next((r["per_kind"][kind]["n"] for r in result.rows if kind in r.get("per_kind", {})), 0)
            out.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    out += [
        "",
        "## How it was measured",
        "",
        "- **index (whole build)**: `build_index` of the N reports into a new, empty index folder, in a new process "
        "per N" + ("" if meta.get("isolated", True) else " (this run: in the calling process)") + ", with the "
        "embedding model already loaded (its load time is in the JSON as `model_load_s`).",
        f"- **raw encoding**: in the same process, right after the build: every character of every report once, "
        f"cut into {meta['window_chars']}-character windows, through the same SentenceTransformer with the same "
        "batch size. **index / raw** is their ratio: 1.0 would mean indexing costs nothing beyond the encoder.",
        "- **index peak RSS**: peak resident memory of the indexing process after the build (model, corpus and "
        "index): `VmHWM` of `/proc/self/status` (`getrusage`'s `ru_maxrss` would count the parent's peak in a child). "
        "**index on disk**: allocated size of the index folder after the build.",
        "- **add one report**: `update_index(add=[one new synthetic report])` on the built index; **remove one "
        "report**: `update_index(remove=[the first synthetic report of the build])` (N = 2: the one just added).",
        f"- **new process to first answer**: wall time from starting `python` to the first answer of "
        f"`rag.query({meta['first_question']!r}, index_dir=...)` (imports, model load, opening the index, "
        "the question); **naming no council**: the same in another new process for "
        f"{meta.get('first_question_whole', '')!r}, a search of every report, which also opens Chroma. Both come "
        "after the index build, which keeps the compiled question encoder (`AROLWG_MODEL_CACHE_DIR`) as `arolwg "
        "index` does.",
        "- **warm query p50/p95, recall@5, fact accuracy**: then, in that process, every question asked as the "
        "`default` configuration of `arolwg eval` asks it (index opened once, one warm-up question), scored by the "
        "same code (`eval.runner`, `eval.metrics`). **query process peak RSS**: its peak resident memory "
        "(`VmHWM`) after all of them.",
        "- **which councils**: then the `which` questions of `eval/corpus_qa.jsonl` ('Which councils ...?'), asked "
        "the same way and scored by the councils cited (precision, recall). The councils that answer each are derived "
        "from the corpus: the bundled report's own council, and each fictional council with a copy of that report in "
        "which the gold quote, council renamed, still stands (`eval.synthetic.councils_holding`); the councils each "
        "N missed or cited wrongly are in the JSON, `which`.",
        "- Targets compare the largest N with the N = 2 row of the same run.",
    ]
    if result.warnings:
        out += ["", "## Notes", ""] + [f"- {w}" for w in result.warnings]
    return "\n".join(out).rstrip("\n") + "\n"


def chart(result: ScaleResult, path: Path) -> Path:
    """One panel per cost against N (log scale when N spans a decade), with the targets drawn in."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the benchmark runs on servers and in CI
    import matplotlib.pyplot as plt

    rows = result.rows
    ns = [r["n"] for r in rows]

    def series(key: str, scale: float = 1.0) -> list[float]:
        return [float("nan") if r.get(key) is None else r[key] * scale for r in rows]

    # (title, [(key, label, scale)], [(target, label, colour of the series it limits)])
    panels = [
        ("Indexing time (s)", [("index_s", "whole index", 1.0), ("raw_encode_s", "raw encoding", 1.0)], []),
        ("Index / raw encoding", [("index_over_raw", "ratio", 1.0)], [(1.5, "target 1.5x", 0)]),
        (
            "Add / remove one report (s)",
            [("add_s", "add", 1.0), ("remove_s", "remove", 1.0)],
            [(10.0, "add target 10 s", 0), (5.0, "remove target 5 s", 1)],
        ),
        ("New process to first answer (s)", [("first_answer_s", "naming a council", 1.0), ("first_answer_whole_s", "naming none", 1.0)],
         [(5.0, "target 5 s", 0)]),
        (
            "Warm query latency (ms)",
            [("query_p50_s", "p50", 1000.0), ("query_p95_s", "p95", 1000.0)],
            [(150.0, "p95 target 150 ms", 1)],
        ),
        (
            "Peak RSS (MB)",
            [("index_peak_rss_mb", "indexing process", 1.0), ("query_peak_rss_mb", "query process", 1.0)],
            [(1024.0, "query target 1 GB", 1)],
        ),
        ("Index on disk (MB)", [("index_mb", "after the build", 1.0)], []),
        ("Quality on the Q&A set", [("recall@5", "recall@5", 1.0), ("fact_accuracy", "fact accuracy", 1.0)], []),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    log_x = len(ns) > 1 and max(ns) / min(ns) >= 10
    for ax, (title, keys, targets) in zip(axes.flat, panels):
        for key, label, scale in keys:
            ax.plot(ns, series(key, scale), marker="o", label=label)
        for target, label, color in targets:  # drawn in the colour of the line it limits
            ax.axhline(target, ls=":", c=f"C{color}", lw=1, label=label)
        if log_x:
            ax.set_xscale("log")
        ax.set_xticks(ns, [f"{n:,}" for n in ns], fontsize=8)
        ax.minorticks_off()
        ax.set_ylim(bottom=0, top=1.05 if title.startswith("Quality") else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("reports (N)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    load = ", ".join(f"N={r['n']}: {r['load_before'][0]:.1f}-{r['load_after'][0]:.1f}" for r in rows)
    fig.suptitle(
        f"Arolwg scale benchmark, {result.meta['cpus_usable']} CPUs ({result.meta['cpu_model']}); load {load}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: ScaleResult, out_dir: Path) -> None:
    """Write scale.json, scale.md and scale.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result.chart_path = chart(result, out_dir / "scale.png")
    result.json_path = out_dir / "scale.json"
    result.json_path.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    result.markdown_path = out_dir / "scale.md"
    result.markdown_path.write_text(to_markdown(result, result.chart_path.name), encoding="utf-8")
    log.info("scale results written to %s", out_dir)
