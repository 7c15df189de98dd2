"""Resolve follow-up questions ("And in Cardiff?") against the conversation, without an LLM."""

from __future__ import annotations

import re
from typing import Sequence

from index.meta import short_name
from index.text import terms
from index.types import ReportMeta
from rag.scope import _EACH, _name_pattern, asks_each_report, named_authorities, strip_authorities, unindexed_authorities
from rag.timescope import TimeWords, strip_time, time_words

_ELLIPTIC = re.compile(
    r"^\s*(and|also|but|so|what about|how about|and what about|what of|same (?:for|in)|likewise|then|ok(?:ay)?)\b[\s,]*",
    re.I,
)
_REFERS = re.compile(r"\b(it|its|they|them|their|this|that|these|those|there|he|she|the same|which ones?|each|both)\b", re.I)


def is_followup(question: str) -> bool:
    """Does the question lean on the conversation (elliptical, or refers back)?"""
    if _ELLIPTIC.match(question):
        return True
    if (m := _EACH.search(question)) and len(terms(question[: m.start()] + " " + question[m.end() :])) >= 2:
        return False  # "What did each council find about supervision?" stands alone
    n = len(terms(question))
    return n <= 2 or (n <= 5 and bool(_REFERS.search(question)))


def resolve_parts(question: str, history: Sequence[tuple[str, str]] | None, reports: dict[str, ReportMeta]) -> tuple[str, str]:
    """(base, focus): the stand-alone question a follow-up builds on, and what it newly asks.

    ``focus`` is empty for a question that is not a follow-up. A chain of follow-ups keeps the
    first stand-alone question (with the latest councils) and the latest new words.
    """
    if not history:
        return question, ""
    if not is_followup(question):
        return _carry_councils(question, history, reports), ""
    earlier = [q for q, _ in history]
    base, prev_focus = resolve_parts(earlier[-1], [(q, "") for q in earlier[:-1]], reports)
    named = _councils(question, reports)
    when = time_words(question)
    rest = strip_authorities(_ELLIPTIC.sub("", question), named).strip(" ?.!,")
    rest = strip_time(rest).strip(" ?.!,") if when else rest
    rest = re.sub(r"^(in|for|at|with)\b\s*", "", rest, flags=re.I)
    if not named and _EACH.search(question):
        rest = _EACH.sub(" ", rest).strip(" ?.!,")
        if asks_each_report(question):
            # "And in each inspection?": the earlier question, of each report of its council(s).
            base = f"{base.rstrip(' ?')} in each inspection?"
        else:
            # "And in each council?": the earlier question, asked of every council.
            alone = re.sub(r"\s+(?:in|for|at|of)$", "", strip_authorities(base, named_authorities(base, reports)).rstrip(" ?"))
            base = f"{alone} in each council?"
    elif named:
        base_named = named_authorities(base, reports)
        if base_named:
            # Replace the earlier council(s) with the new one(s), keeping the question's wording.
            first = [True]

            def swap(_m: re.Match) -> str:
                if first[0]:
                    first[0] = False
                    return " and ".join(short_name(a) for a in named)
                return ""

            pat = "|".join(_name_pattern(a).pattern for a in base_named)
            base = re.sub(r"\s{2,}", " ", re.sub(pat, swap, base, flags=re.I)).strip()
        else:
            base = f"{base.rstrip(' ?')} in {' and '.join(short_name(a) for a in named)}?"
    if when is not None:
        base = _with_time(base, when)  # "And in 2016?": the earlier question, of that time
    focus = rest if rest and terms(rest) else prev_focus
    return base, focus


def _councils(question: str, reports: dict[str, ReportMeta]) -> list[str]:
    # Councils no indexed report covers count too: "And Swansea?" must not stay about Wrexham.
    return named_authorities(question, reports) + unindexed_authorities(question, reports)


def _carry_councils(question: str, history: Sequence[tuple[str, str]], reports: dict[str, ReportMeta]) -> str:
    """A stand-alone question that names no council stays with the council(s) of the conversation.

    "When will CIW come back?" after a question about Wrexham is about Wrexham, as a person
    would take it; naming a council, or "each council", starts afresh.
    """
    if _councils(question, reports) or _EACH.search(question):
        return question
    for earlier, _ in reversed(history):
        named = _councils(earlier, reports)
        if named:
            carried = f"{question.rstrip(' ?')} in {' and '.join(short_name(a) for a in named)}?"
            # ... and with its time, as the conversation last had it, unless this one names one.
            if time_words(question) is None and (when := time_words(resolve(history[-1][0], history[:-1], reports))):
                carried = _with_time(carried, when)
            return carried
        if _EACH.search(earlier):
            return question
    return question


def _with_time(question: str, when: TimeWords) -> str:
    """The question with its own time words (if any) replaced by ``when``'s."""
    return f"{strip_time(question).rstrip(' ?')} {when.phrase}?"


def resolve(question: str, history: Sequence[tuple[str, str]] | None, reports: dict[str, ReportMeta]) -> str:
    """A stand-alone question for retrieval.

    >>> from index.types import ReportMeta
    >>> reps = {r: ReportMeta(r, "", a, "", "", "") for r, a in [("w", "Wrexham County Borough Council"), ("c", "Cardiff Council")]}
    >>> resolve("And in Cardiff?", [("What must Wrexham improve about carers' assessments?", "...")], reps)
    "What must Cardiff improve about carers' assessments?"
    >>> resolve("And for adults?", [("What must Wrexham improve about carers' assessments?", "...")], reps)
    "What must Wrexham improve about carers' assessments: adults?"
    >>> resolve("And in 2016?", [("What did Wrexham find about advocacy at its latest inspection?", "...")], reps)
    'What did Wrexham find about advocacy in 2016?'
    """
    base, focus = resolve_parts(question, history, reports)
    return f"{base.rstrip(' ?')}: {focus}?" if focus else base
