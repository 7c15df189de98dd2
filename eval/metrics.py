"""Scoring functions of the benchmark: retrieval, answers, abstention, citations, latency.

Every function is pure (plain values in, a number out) so it can be checked by hand on small
cases. Spans are ``(start, end)`` character offsets into a report's source text.

>>> recall_at_k([[[False], [True]]], 1), recall_at_k([[[False], [True]]], 2)
(0.0, 1.0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

Span = tuple[int, int]

# A retrieved passage "hits" an evidence quote when it covers at least this share of its characters.
HIT_FRACTION = 0.5

_MARKER = re.compile(r"\[\d+\]")
_SPACE = re.compile(r"\s+")
# Typographic variants a writer of facts may type differently from the report (’ vs ', – vs -).
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def overlap(a: Span, b: Span) -> int:
    """Characters two spans share.

    >>> overlap((0, 10), (5, 20)), overlap((0, 5), (5, 9))
    (5, 0)
    """
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def hits(passage: Span, quote: Span, fraction: float = HIT_FRACTION) -> bool:
    """True when ``passage`` covers at least ``fraction`` of the ``quote`` span's characters.

    >>> hits((0, 100), (90, 110)), hits((0, 100), (95, 110))
    (True, False)
    """
    length = quote[1] - quote[0]
    if length <= 0:
        return False
    return overlap(passage, quote) >= fraction * length


def hit_matrix(
    passages: Sequence[tuple[str, int, int]],
    evidence: Sequence[tuple[str, Sequence[Span]]],
) -> list[list[bool]]:
    """For each ranked passage ``(source, start, end)``, which evidence items it hits.

    Each evidence item is ``(source, spans)``: a quote may occur at several places in its report,
    and covering any one of them counts.

    >>> hit_matrix([("a", 0, 50), ("b", 0, 50)], [("b", [(10, 20)]), ("a", [(60, 70), (0, 8)])])
    [[False, True], [True, False]]
    """
    return [
        [src == p_src and any(hits((start, end), span) for span in spans) for src, spans in evidence]
        for p_src, start, end in passages
    ]


def _first_rank(matrix: Sequence[Sequence[bool]]) -> int | None:
    """1-based rank of the first passage hitting any evidence item, or None."""
    for rank, row in enumerate(matrix, 1):
        if any(row):
            return rank
    return None


def recall_at_k(matrices: Sequence[Sequence[Sequence[bool]]], k: int) -> float:
    """Share of questions with at least one hit among their top ``k`` passages.

    >>> recall_at_k([[[False], [True]], [[False], [False]]], 2)
    0.5
    """
    if not matrices:
        return float("nan")
    found = sum(1 for m in matrices if any(any(row) for row in m[:k]))
    return found / len(matrices)


def full_recall_at_k(matrices: Sequence[Sequence[Sequence[bool]]], k: int) -> float:
    """Share of questions whose every evidence item is hit within the top ``k`` (the strict variant).

    >>> full_recall_at_k([[[True, False], [False, False]], [[True, False], [False, True]]], 2)
    0.5
    """
    if not matrices:
        return float("nan")
    done = 0
    for m in matrices:
        top = m[:k]
        n_items = len(m[0]) if m else 0
        if n_items and all(any(row[i] for row in top) for i in range(n_items)):
            done += 1
    return done / len(matrices)


def mean_reciprocal_rank(matrices: Sequence[Sequence[Sequence[bool]]], k: int = 10) -> float:
    """Mean over questions of 1/rank of the first hit within the top ``k`` (0 when none).

    >>> mean_reciprocal_rank([[[False], [True]], [[True]], [[False]]])
    0.5
    """
    if not matrices:
        return float("nan")
    total = 0.0
    for m in matrices:
        rank = _first_rank(m[:k])
        total += 1.0 / rank if rank else 0.0
    return total / len(matrices)


def ndcg_at_k(matrix: Sequence[Sequence[bool]], k: int = 10) -> float:
    """nDCG@k of one ranking with binary gains credited once per evidence item.

    A passage gains 1 when it is the first to hit some evidence item not hit before (so ten
    chunks of the same paragraph do not count ten times); the ideal ranking hits every
    evidence item at ranks 1..n.

    >>> round(ndcg_at_k([[False, False], [True, False], [True, True]]), 4)
    0.6934
    """
    n_items = len(matrix[0]) if matrix else 0
    if n_items == 0:
        return 0.0
    seen: set[int] = set()
    dcg = 0.0
    for rank, row in enumerate(matrix[:k], 1):
        new = [i for i, hit in enumerate(row) if hit and i not in seen]
        if new:
            seen.update(new)
            # One passage may cover two items (two quotes in one paragraph): credit each.
            dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_items, k) + 1))
    return min(1.0, dcg / ideal)


def mean_ndcg(matrices: Sequence[Sequence[Sequence[bool]]], k: int = 10) -> float:
    """Mean of :func:`ndcg_at_k` over questions."""
    if not matrices:
        return float("nan")
    return sum(ndcg_at_k(m, k) for m in matrices) / len(matrices)


def normalise(text: str) -> str:
    """Lower-case, fold typographic quotes/dashes, drop ``[n]`` markers, collapse whitespace.

    >>> normalise("  The  Council’s [2] plan\\n")
    "the council's plan"
    """
    text = _MARKER.sub(" ", text.translate(_FOLD))
    return _SPACE.sub(" ", text).strip().lower()


def fact_in(text: str, fact: str) -> bool:
    """True when ``fact`` occurs in ``text`` (both normalised); a number must not be part of a longer one.

    Words match as substrings ("adult" in "adults services"), but "9" does not match "2019" or
    "COVID-19", nor "32" match "320".

    >>> fact_in("In 2019, 9 files", "9"), fact_in("In 2019", "9"), fact_in("adults services", "adult")
    (True, False, True)
    """
    t, f = normalise(text), normalise(fact)
    if not f:
        return False
    pattern = (r"(?<!\d)" if f[0].isdigit() else "") + re.escape(f) + (r"(?!\d)" if f[-1].isdigit() else "")
    return re.search(pattern, t) is not None


def facts_present(answer: str, facts: Iterable[Sequence[str]]) -> bool:
    """True when ``answer`` contains every fact (each a list of accepted alternatives).

    >>> facts_present("Inspected 12-23 October 2020.", [["October 2020"], ["12", "twelve"]])
    True
    >>> facts_present("Inspected in October.", [["October 2020"]])
    False
    """
    return all(any(fact_in(answer, alt) for alt in alts) for alts in facts)


def abstention_scores(unanswerable: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of abstaining, unanswerable questions being the positive class.

    Also the two rates the product targets: answered rate on answerable questions and
    abstained rate on unanswerable ones (the latter equals recall).

    >>> abstention_scores([True, True, False, False], [True, False, True, False])
    {'abstention_precision': 0.5, 'abstention_recall': 0.5, 'answered_rate_answerable': 0.5, 'abstained_rate_unanswerable': 0.5}
    """
    pairs = list(zip(unanswerable, abstained, strict=True))
    tp = sum(1 for u, a in pairs if u and a)
    predicted = sum(1 for _, a in pairs if a)
    positives = sum(1 for u, _ in pairs if u)
    answerable = [a for u, a in pairs if not u]
    nan = float("nan")
    return {
        "abstention_precision": tp / predicted if predicted else nan,
        "abstention_recall": tp / positives if positives else nan,
        "answered_rate_answerable": (sum(1 for a in answerable if not a) / len(answerable)) if answerable else nan,
        "abstained_rate_unanswerable": tp / positives if positives else nan,
    }


def citation_valid(source_text: str, start: int, end: int, quote: str) -> bool:
    """True when ``quote`` is exactly the source text at ``start:end`` (and not empty).

    >>> citation_valid("abc def", 4, 7, "def"), citation_valid("abc def", 3, 7, "def")
    (True, False)
    """
    return bool(quote) and 0 <= start <= end <= len(source_text) and source_text[start:end] == quote


def citation_on_gold(citation: tuple[str, int, int], evidence: Sequence[tuple[str, Sequence[Span]]]) -> bool:
    """True when a citation ``(source, start, end)`` overlaps any gold evidence span of its question.

    >>> citation_on_gold(("a", 10, 20), [("a", [(15, 40)])]), citation_on_gold(("b", 10, 20), [("a", [(15, 40)])])
    (True, False)
    """
    src, start, end = citation
    return any(src == e_src and any(overlap((start, end), span) > 0 for span in spans) for e_src, spans in evidence)


def out_of_time(cited_sources: Iterable[str], in_time: Iterable[str]) -> bool:
    """True when an answer cites any report outside the time its question asks about.

    ``in_time`` holds the reports of that time ("in 2018": the 2018 reports of the council asked
    about; "the latest inspection": its newest report). An abstention cites nothing, so it is
    never out of time: the answered rate of the same questions says whether it answered.

    >>> out_of_time(["w-2018.txt"], ["w-2018.txt"]), out_of_time(["w-2018.txt", "w-2020.txt"], ["w-2018.txt"])
    (False, True)
    """
    allowed = set(in_time)
    return any(src not in allowed for src in cited_sources)


def council_scores(cited: Iterable[str], expected: Iterable[str]) -> tuple[float | None, float | None]:
    """(precision, recall) of the councils an answer cites against those whose reports answer a
    "which councils" question (names compared case-insensitively). Precision is None when the
    answer cites no council, recall None when no council is expected.

    >>> council_scores(["Wrexham", "Cardiff"], ["Wrexham"]), council_scores([], ["Cardiff"])
    ((0.5, 1.0), (None, 0.0))
    """
    got = {c.lower() for c in cited}
    want = {c.lower() for c in expected}
    precision = len(got & want) / len(got) if got else None
    recall = len(got & want) / len(want) if want else None
    return precision, recall


_CITE_N = re.compile(r"\[(\d+)\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def dated_lines(answer: str, must_name: Mapping[int, tuple[str, str]]) -> tuple[int, int]:
    """(labelled, total) over the answer's lines that cite a report whose council has several.

    ``must_name`` maps a citation number to the council and year its line must name (only the
    citations of councils with several reports: their lines would otherwise read as current).
    A line is labelled when the text before its first ":" names the council and the year of every
    such report it cites, or, for a list item, when the heading it is listed under (the last line
    above it that cites nothing and ends with ":") does. So "Wrexham, Jun 2016: ... [1]" and a
    "- ... [1]" under "Wrexham, Jun 2016 › Strengths:" both count; "Wrexham: ... [1]" does not.

    >>> need = {1: ("Wrexham", "2016"), 2: ("Wrexham", "2020")}
    >>> dated_lines("Wrexham, Oct 2020: fine [2]\\nWrexham: not fine [1]\\nNo citation here.", need)
    (1, 2)
    >>> dated_lines("Wrexham, Jun 2016 › Strengths:\\n- a [1]\\n- b [1] [2]", need)
    (1, 2)
    """
    labelled = total = 0
    heading = ""
    for line in answer.splitlines():
        cited = [int(n) for n in _CITE_N.findall(line)]
        if not cited:
            if line.rstrip().endswith(":"):
                heading = line
            continue
        needed = [must_name[n] for n in cited if n in must_name]
        if not needed:
            continue
        total += 1
        body = _BULLET.sub("", line)
        own = body.split(":", 1)[0] if ":" in body else ""
        labels = [own] + ([heading] if _BULLET.match(line) else [])
        if any(all(c.lower() in label.lower() and y in label for c, y in needed) for label in labels):
            labelled += 1
    return labelled, total


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks (numpy's default).

    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 95)
    (2.5, 3.85)
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 12)


def threshold_sweep(
    answerable_scores: Sequence[float | None],
    unanswerable_scores: Sequence[float | None],
    answerable_target: float = 0.95,
    unanswerable_target: float = 0.9,
    answerable_correct: Sequence[bool | None] | None = None,
) -> dict:
    """Answered/abstained rates for every useful abstention threshold, and the best one.

    The answerer abstains when ``score < threshold``; a score of None abstains at any threshold.
    Candidate thresholds are the midpoints between consecutive distinct scores (plus one below
    and one above all of them). The best threshold meets both targets with the widest margin;
    when none meets both, it is the one whose worse rate, relative to its target, is highest.
    With ``answerable_correct`` (the never-abstaining answer had every fact; None for a question
    with no facts to check, left out), each point also gets the fact accuracy the answerer would
    have at that threshold.

    >>> s = threshold_sweep([0.8, 0.9], [0.1, 0.2])
    >>> s["best"]["threshold"], s["best"]["answered_rate_answerable"], s["best"]["meets_targets"]
    (0.5, 1.0, True)
    >>> [p["answered_rate_answerable"] for p in threshold_sweep([0.8, None], [0.1])["points"]]
    [0.5, 0.5, 0.0]
    """
    nan = float("nan")
    scores = sorted({s for s in (*answerable_scores, *unanswerable_scores) if s is not None})
    if not scores:
        return {"points": [], "best": None, "targets": [answerable_target, unanswerable_target]}
    candidates = [scores[0] - 1.0]
    candidates += [(a + b) / 2 for a, b in zip(scores, scores[1:])]
    candidates.append(scores[-1] + 1.0)
    n_ans, n_un = len(answerable_scores), len(unanswerable_scores)
    points = []
    for t in candidates:
        answers = [s is not None and s >= t for s in answerable_scores]
        answered = sum(answers) / n_ans if n_ans else nan
        abstained = sum(1 for s in unanswerable_scores if s is None or s < t) / n_un if n_un else nan
        point = {
            "threshold": round(t, 6),
            "answered_rate_answerable": answered,
            "abstained_rate_unanswerable": abstained,
            "meets_targets": bool(
                (not n_ans or answered >= answerable_target) and (not n_un or abstained >= unanswerable_target)
            ),
        }
        if answerable_correct is not None:
            checked = [(a, c) for a, c in zip(answers, answerable_correct, strict=True) if c is not None]
            if checked:
                point["fact_accuracy"] = sum(a and c for a, c in checked) / len(checked)
        points.append(point)

    def margin(p: dict) -> float:
        a, u = p["answered_rate_answerable"], p["abstained_rate_unanswerable"]
        a = 1.0 if math.isnan(a) else a
        u = 1.0 if math.isnan(u) else u
        if p["meets_targets"]:
            return 1.0 + min(a - answerable_target, u - unanswerable_target)
        return min(a / answerable_target, u / unanswerable_target)

    best_value = max(margin(p) for p in points)
    tied = [p for p in points if margin(p) == best_value]
    # Ties (a range of equally good thresholds): take the middle one, furthest from both edges.
    best = tied[len(tied) // 2]
    return {"points": points, "best": best, "targets": [answerable_target, unanswerable_target]}
