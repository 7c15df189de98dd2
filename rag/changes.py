"""'What changed' questions: "What has changed in Cardiff since 2016?", "What has improved in
Wrexham since the last inspection?".

Such a question compares one council's reports over time. :func:`change_scope` turns the scope of
the council(s) named into one group per report, oldest first, so each report is searched on its
own and the answer is a comparison, report by report in date order, each line cited and labelled
with council and date, as comparisons between councils are answered. "since the last (previous)
inspection" compares a council's latest report with the one before it; a year ("since 2016") keeps
the reports of that time, as for any question.
"""

from __future__ import annotations

import re
from dataclasses import replace

from index.types import ReportMeta
from rag.timescope import newest_first, report_label

_CHANGED = re.compile(
    r"\b(?:what|how\s+much|in\s+what\s+ways?)\s+(?:has|have|had)\s+(?:[\w'’]+\s+){0,3}?"
    r"(?:changed?|improved?|got\s+(?:better|worse)|deteriorated|progressed|moved\s+on)\b"
    r"|\bhow\s+(?:has|have)\s+(?:[\w'’]+\s+){0,4}?(?:changed|improved|progressed|developed)\b"
    r"|\bwhat\s+(?:progress|improvements?|changes?)\s+(?:has|have|had|did|does|is|are|was|were)\b",
    re.I,
)
_SINCE_LAST = re.compile(
    r"\s*\bsince\s+(?:(?:the|its|their|CIW's|CIW’s)\s+)?(?:last|previous|earlier|prior|latest|most\s+recent)\s+"
    r"(?:inspection|report|visit)s?\b",
    re.I,
)


def asks_change(question: str) -> bool:
    """Does the question ask what changed over time?

    >>> asks_change("What has changed in Cardiff since 2016?"), asks_change("What has improved in Wrexham since the last inspection?")
    (True, True)
    >>> asks_change("What must improve about supervision in Wrexham?")
    False
    """
    return bool(_CHANGED.search(question))


def since_last(question: str) -> tuple[str, bool]:
    """The question without "since the last inspection", and whether it said so."""
    new = _SINCE_LAST.sub("", question)
    return new, new != question


def change_scope(scope, reports: dict[str, ReportMeta], *, last_two: bool = False):
    """The scope with each named council's reports as groups of their own, oldest first (only the
    latest two of each council when ``last_two``); unchanged when no council with several reports
    in scope is named, or the scope says why it cannot be answered."""
    if scope.across or scope.unanswered or not any(scope.labels):
        return scope
    groups: list[tuple[str, ...]] = []
    labels: list[str] = []
    for g in scope.groups:
        ids = newest_first(reports, g)
        if last_two:
            ids = ids[:2]
        for rid in reversed(ids):  # oldest first
            groups.append((rid,))
            labels.append(report_label(reports[rid]))
    if len(groups) == len(scope.groups):
        return scope  # one report per council: nothing to set side by side
    return replace(scope, groups=tuple(groups), labels=tuple(labels), changed=True)
