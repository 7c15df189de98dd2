""""Which councils ...?" questions in the scale benchmark: asked of each N-report synthetic corpus.

The questions are those of kind ``which`` in ``eval/corpus_qa.jsonl``. Their ``councils`` name
the councils of the two bundled reports; in a synthetic corpus (the index's reports) the councils
that answer are derived mechanically (:func:`eval.synthetic.councils_holding`): a council answers when one of its
reports is a copy of a bundled report whose gold evidence holds the finding, and the quote, its
council renamed, still stands in that copy (not a perturbed number or a moved date). The answers
are scored by the councils they cite (:func:`eval.metrics.council_scores`, as ``arolwg eval``
scores them) and timed as the benchmark's other questions.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
WHICH_QA = EVAL_DIR / "corpus_qa.jsonl"


def which_items(path: Path | str, texts, report_ids, *, seed: int = 0) -> list:
    """The ``which`` questions of ``path``, each with the councils that answer it in a corpus of the
    reports ``report_ids`` (the bundled reports and synthetic copies of ``seed``'s sequence)."""
    from eval.dataset import load_qa
    from eval.synthetic import copy_named, councils_holding

    # The copies the index holds, by name: after the benchmark's add and remove they are not
    # simply the first N - 2 of the sequence.
    copies = [c for rid in sorted(report_ids) if (c := copy_named(rid, seed)) is not None]

    # Only the which lines: the file's other questions are about the dated test corpus (eval/corpus.py).
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    which = [line for line in lines if json.loads(line).get("kind") == "which"]
    with tempfile.TemporaryDirectory(prefix="arolwg-which-") as tmp:
        subset = Path(tmp) / Path(path).name
        subset.write_text("\n".join(which) + "\n", encoding="utf-8")
        items = load_qa(subset, texts).questions
    out = []
    for item in items:
        councils = list(item.councils or ())
        for ev in item.evidence:
            councils += [c for c in councils_holding(ev.source, ev.quote, copies) if c not in councils]
        out.append(dataclasses.replace(item, councils=tuple(councils)))
    return out


def measure_which(runner, texts, items: list, progress=None) -> dict:
    """Ask every item with ``runner`` (an ``eval.runner._Ours``): council precision, recall, latency p50/p95."""
    from eval.metrics import percentile

    results = []
    for i, item in enumerate(items):
        results.append(runner.run(item, texts))
        if progress:
            progress(i + 1, len(items), f"which question {i + 1}/{len(items)} ({item.id})")
    ps = [r.council_precision for r in results if r.council_precision is not None]
    rs = [r.council_recall for r in results if r.council_recall is not None]
    seconds = [r.seconds for r in results if not r.error]
    from index.meta import short_name

    per_question = {}
    for item, r in zip(items, results):
        cited = sorted({short_name(c["authority"]) or c["authority"] for c in r.citations if c.get("authority")})
        expected = set(item.councils)
        per_question[item.id] = {
            "expected": len(expected),
            "cited": len(cited),
            "missed": sorted(expected - set(cited)),
            "extra": sorted(set(cited) - expected),
            "seconds": round(r.seconds, 4),
        }
    return {
        "which_questions": len(items),
        "which_precision": statistics.fmean(ps) if ps else None,
        "which_recall": statistics.fmean(rs) if rs else None,
        "which_p50_s": percentile(seconds, 50),
        "which_p95_s": percentile(seconds, 95),
        "which": per_question,
    }
