"""Load and check a Q&A set (JSON Lines), locating every evidence quote in its report.

A line that cannot be used (bad JSON, missing keys, a report the index does not hold, a quote
not found in its report) is skipped with a message naming its line; the rest is still used.

>>> from pathlib import Path; import tempfile
>>> p = Path(tempfile.mkdtemp()) / "qa.jsonl"
>>> _ = p.write_text('{"id": "q1", "question": "Who?", "facts": ["Ann"], '
...                  '"evidence": [{"source": "r.txt", "quote": "Ann leads"}], "kind": "fact"}\\nnot json\\n')
>>> qa = load_qa(p, {"r.txt": "Here Ann leads the team."})
>>> [q.id for q in qa.questions], qa.questions[0].evidence[0].spans, [s.line for s in qa.skipped]
(['q1'], ((5, 14),), [2])
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import EvalSetError

log = logging.getLogger(__name__)

KINDS = ("fact", "finding", "judgement", "paraphrase", "comparison", "unanswerable", "followup", "time-scope", "latest", "which", "changed")


@dataclass(frozen=True)
class Evidence:
    """A gold quote and every place (span in the report's source text) it occurs."""

    source: str
    quote: str
    spans: tuple[tuple[int, int], ...]
    exact: bool = True  # False: found only after allowing different whitespace


@dataclass(frozen=True)
class QAItem:
    """One usable question of the set."""

    id: str
    line: int
    question: str
    answer: str
    facts: tuple[tuple[str, ...], ...]  # each fact: accepted alternatives
    evidence: tuple[Evidence, ...]
    kind: str
    history: tuple[tuple[str, str], ...]
    # The reports of the time a question asks about ("in 2018", "the latest inspection"): a
    # citation of any other report is out of time. None: the question asks about no time.
    in_time: tuple[str, ...] | None = None
    # The councils (short names) whose reports answer a "which councils" question: an answer is
    # scored by the set of councils it cites (precision and recall). None: not such a question.
    councils: tuple[str, ...] | None = None

    @property
    def answerable(self) -> bool:
        """A question is answerable when it has gold evidence."""
        return bool(self.evidence)

    def gold(self) -> list[tuple[str, tuple[tuple[int, int], ...]]]:
        """Evidence as ``(source, spans)`` pairs, the form :mod:`eval.metrics` takes."""
        return [(e.source, e.spans) for e in self.evidence]


@dataclass(frozen=True)
class Skipped:
    """A line left out of the run, and why (a plain sentence)."""

    line: int
    id: str
    reason: str

    def message(self, path: object) -> str:
        """The sentence shown to the user, naming the file and line."""
        who = f" (id {self.id})" if self.id else ""
        return f"{path}, line {self.line}{who}: {self.reason}; skipped."


@dataclass
class QASet:
    """The usable questions of a file plus the lines skipped."""

    path: Path
    questions: list[QAItem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def locate(text: str, quote: str) -> tuple[tuple[tuple[int, int], ...], bool]:
    """Every span where ``quote`` occurs in ``text``; ``exact`` is False when only a whitespace-tolerant match was found.

    >>> locate("a b  c a b c", "a b c")
    (((7, 12),), True)
    >>> locate("a b\\n c", "a b c")
    (((0, 6),), False)
    """
    spans = []
    start = text.find(quote)
    while start != -1 and quote:
        spans.append((start, start + len(quote)))
        start = text.find(quote, start + 1)
    if spans:
        return tuple(spans), True
    words = quote.split()
    if not words:
        return (), True
    # Quotes are written on one line while a report may wrap a sentence: allow any whitespace run.
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return tuple((m.start(), m.end()) for m in pattern.finditer(text)), False


def _facts(value: object) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        raise ValueError('"facts" must be a list')
    out = []
    for item in value:
        alts = [item] if isinstance(item, str) else item
        if not isinstance(alts, list) or not alts or not all(isinstance(a, str) and a.strip() for a in alts):
            raise ValueError('each item of "facts" must be a non-empty string or a list of them')
        out.append(tuple(alts))
    return tuple(out)


def _history(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(turn, list | tuple) and len(turn) == 2 and all(isinstance(x, str) for x in turn) for turn in value
    ):
        raise ValueError('"history" must be a list of [question, answer] pairs of strings')
    return tuple((q, a) for q, a in value)


def load_qa(path: Path | str, sources: Mapping[str, str] | Callable[[str], str | None]) -> QASet:
    """Read a Q&A JSONL file, checking each line against the reports' source texts.

    ``sources`` maps a report id to its source text (or is a function returning it, or None for
    an unknown report). Raises :class:`rag.errors.EvalSetError` when the file cannot be read or
    holds no usable question.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalSetError(f"The question set {path} does not exist: give the path of a .jsonl file.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EvalSetError(f"The question set {path} could not be read ({err}).") from None
    get = sources.get if isinstance(sources, Mapping) else sources
    texts: dict[str, str | None] = {}
    qa = QASet(path=path)
    seen: set[str] = set()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        qid = ""
        try:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise ValueError(f"not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            qid = str(obj.get("id", "") or "")
            missing = [k for k in ("id", "question", "kind") if not obj.get(k)]
            if missing:
                raise ValueError("missing " + ", ".join(f'"{k}"' for k in missing))
            if qid in seen:
                raise ValueError(f"the id {qid!r} was already used on an earlier line")
            if not isinstance(obj["question"], str):
                raise ValueError('"question" must be a string')
            kind = obj["kind"]
            if kind not in KINDS:
                raise ValueError(f'unknown kind {kind!r} (expected one of {", ".join(KINDS)})')
            facts = _facts(obj.get("facts", []))
            history = _history(obj.get("history"))
            raw_evidence = obj.get("evidence", [])
            if not isinstance(raw_evidence, list):
                raise ValueError('"evidence" must be a list')
            in_time = obj.get("in_time")
            if in_time is not None:
                if not isinstance(in_time, list) or not all(isinstance(r, str) for r in in_time):
                    raise ValueError('"in_time" must be a list of report file names')
                for rid in in_time:
                    if rid not in texts:
                        texts[rid] = get(rid)
                    if texts[rid] is None:
                        raise ValueError(f'"in_time" names the report {rid!r}, which is not in the index')
            councils = obj.get("councils")
            if councils is not None and (not isinstance(councils, list) or not all(isinstance(c, str) for c in councils)):
                raise ValueError('"councils" must be a list of council names')
            if kind == "unanswerable" and (raw_evidence or facts):
                raise ValueError("an unanswerable question cannot have evidence or facts")
            evidence = []
            for i, ev in enumerate(raw_evidence, 1):
                if not isinstance(ev, dict) or not isinstance(ev.get("source"), str) or not isinstance(ev.get("quote"), str):
                    raise ValueError(f'evidence item {i} needs a "source" and a "quote" string')
                source, quote = ev["source"], ev["quote"]
                if not quote.strip():
                    raise ValueError(f"evidence item {i} has an empty quote")
                if source not in texts:
                    texts[source] = get(source)
                text = texts[source]
                if text is None:
                    raise ValueError(f"evidence item {i} names the report {source!r}, which is not in the index")
                spans, exact = locate(text, quote)
                if not spans:
                    raise ValueError(f"evidence item {i}: the quote {_short(quote)!r} is not in {source}")
                if not exact:
                    qa.warnings.append(
                        f"{path}, line {number} (id {qid}): evidence item {i} matches {source} only "
                        "with different whitespace; used anyway."
                    )
                evidence.append(Evidence(source, quote, spans, exact))
            # A follow-up, or a question about a time no report is of, may itself be unanswerable;
            # every other kind is about something the reports say.
            if kind not in ("unanswerable", "followup", "time-scope", "latest", "which", "changed") and not evidence:
                raise ValueError(f"a {kind} question needs evidence (only unanswerable questions have none)")
            qa.questions.append(
                QAItem(
                    id=qid,
                    line=number,
                    question=obj["question"],
                    answer=str(obj.get("answer", "") or ""),
                    facts=facts,
                    evidence=tuple(evidence),
                    kind=kind,
                    history=history,
                    in_time=None if in_time is None else tuple(in_time),
                    councils=None if councils is None else tuple(councils),
                )
            )
            seen.add(qid)
        except ValueError as err:
            skip = Skipped(number, qid, str(err))
            qa.skipped.append(skip)
            log.warning(skip.message(path))
    for message in qa.warnings:
        log.warning(message)
    if not qa.questions:
        raise EvalSetError(
            f"The question set {path} has no usable question ({len(qa.skipped)} line(s) skipped): "
            "check it names reports that are in the index."
        )
    return qa


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
