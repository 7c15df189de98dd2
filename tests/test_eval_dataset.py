"""Loading a Q&A set: bad lines are skipped with a message naming the line; the rest is used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from eval.dataset import Evidence, load_qa, locate
from rag.errors import EvalSetError
from rag.settings import BUNDLED_REPORTS_DIR

WX = "ciw-wrexham-2020-10.txt"
QUOTE = "We have found some notable improvements from our previous inspection of adult services undertaken in 2018."


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in BUNDLED_REPORTS_DIR.glob("*.txt")}


def line(**kw) -> str:
    base = {"id": "q", "question": "When was adults inspected before?", "answer": "2018", "facts": ["2018"],
            "evidence": [{"source": WX, "quote": QUOTE}], "kind": "fact", "history": []}
    base.update(kw)
    return json.dumps(base)


def write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "qa.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_bad_lines_are_skipped_and_named(tmp_path, texts, caplog):
    lines = [
        line(id="good-1"),
        '{"id": "broken", "question": ',  # malformed JSON
        line(id="unknown-source", evidence=[{"source": "ciw-nowhere-2021.txt", "quote": QUOTE}]),
        line(id="bad-quote", evidence=[{"source": WX, "quote": "Inspectors praised the council's new swimming pool."}]),
        "",  # blank lines are ignored, not skipped
        line(id="good-1"),  # duplicate id
        line(id="odd-kind", kind="opinion"),
        line(id="un-with-evidence", kind="unanswerable", facts=[]),
        json.dumps({"id": "no-question", "kind": "fact"}),
        line(id="bad-facts", facts=[3]),
        line(id="bad-history", kind="followup", history=[["only a question"]]),
        line(id="un-ok", kind="unanswerable", facts=[], evidence=[]),
        line(id="follow-ok", kind="followup", history=[["Tell me about Wrexham", "..."]], facts=[["2018", "two thousand eighteen"]]),
    ]
    path = write(tmp_path, lines)
    with caplog.at_level(logging.WARNING, logger="eval.dataset"):
        qa = load_qa(path, texts)
    assert [q.id for q in qa.questions] == ["good-1", "un-ok", "follow-ok"]
    assert [(s.line, s.id, s.reason) for s in qa.skipped] == [
        (2, "", "not valid JSON (Expecting value at column 30)"),
        (3, "unknown-source", "evidence item 1 names the report 'ciw-nowhere-2021.txt', which is not in the index"),
        (4, "bad-quote", "evidence item 1: the quote \"Inspectors praised the council's new swimming pool.\" is not in " + WX),
        (6, "good-1", "the id 'good-1' was already used on an earlier line"),
        (7, "odd-kind", "unknown kind 'opinion' (expected one of fact, finding, judgement, paraphrase, comparison, "
         "unanswerable, followup, time-scope, latest, which, changed)"),
        (8, "un-with-evidence", "an unanswerable question cannot have evidence or facts"),
        (9, "no-question", 'missing "question"'),
        (10, "bad-facts", 'each item of "facts" must be a non-empty string or a list of them'),
        (11, "bad-history", '"history" must be a list of [question, answer] pairs of strings'),
    ]
    assert qa.skipped[2].message(path) == (
        f"{path}, line 4 (id bad-quote): evidence item 1: the quote \"Inspectors praised the council's new "
        f"swimming pool.\" is not in {WX}; skipped."
    )
    # Each skip was logged once, naming its line.
    logged = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.split(", line ")[1].split(" ")[0].rstrip(":") for m in logged] == ["2", "3", "4", "6", "7", "8", "9", "10", "11"]

    good = qa.questions[0]
    start = texts[WX].index(QUOTE)
    assert good.evidence == (Evidence(WX, QUOTE, ((start, start + len(QUOTE)),), True),)
    assert good.facts == (("2018",),) and good.answerable and good.line == 1
    assert qa.questions[1].answerable is False
    assert qa.questions[2].history == (("Tell me about Wrexham", "..."),)
    assert qa.questions[2].facts == (("2018", "two thousand eighteen"),)


def test_quote_with_different_line_breaks_is_used_with_a_warning(tmp_path, texts):
    rewrapped = QUOTE.replace("previous inspection", "previous\n inspection")
    qa = load_qa(write(tmp_path, [line(id="wrapped")]), {WX: texts[WX].replace(QUOTE, rewrapped)})
    (ev,) = qa.questions[0].evidence
    assert ev.exact is False and ev.spans[0][1] - ev.spans[0][0] == len(rewrapped)
    assert len(qa.warnings) == 1 and "line 1 (id wrapped)" in qa.warnings[0]


def test_locate_finds_every_occurrence():
    assert locate("abc abc", "abc") == (((0, 3), (4, 7)), True)
    assert locate("abc", "xyz") == ((), False)


def test_unusable_files_raise_one_sentence(tmp_path, texts):
    with pytest.raises(EvalSetError, match=r"does not exist"):
        load_qa(tmp_path / "missing.jsonl", texts)
    with pytest.raises(EvalSetError, match=r"has no usable question \(2 line\(s\) skipped\)"):
        load_qa(write(tmp_path, ["nonsense", line(evidence=[{"source": "x.txt", "quote": "q"}])]), texts)


def test_bundled_set_loads_clean_against_the_bundled_reports(texts):
    from eval.runner import DEFAULT_QA

    qa = load_qa(DEFAULT_QA, texts)
    assert qa.skipped == [] and qa.warnings == []
    assert len(qa.questions) >= 50
    assert {q.kind for q in qa.questions} >= {"fact", "comparison", "unanswerable", "followup"}


def test_held_out_set_loads_clean_and_shares_nothing_with_the_tuning_set(texts):
    """eval/heldout.jsonl checks generalisation: nothing in it may have been tuned on via qa.jsonl."""
    from eval.runner import DEFAULT_QA, HELDOUT_QA

    held, tuned = load_qa(HELDOUT_QA, texts), load_qa(DEFAULT_QA, texts)
    assert held.skipped == [] and held.warnings == []
    assert len(held.questions) == 53
    assert {q.question for q in held.questions}.isdisjoint(q.question for q in tuned.questions)
    held_spans = {(e.source, s) for q in held.questions for e in q.evidence for s in e.spans}
    tuned_spans = {(e.source, s) for q in tuned.questions for e in q.evidence for s in e.spans}
    assert held_spans and held_spans.isdisjoint(tuned_spans)


@pytest.fixture(scope="module")
def dated_texts(tmp_path_factory) -> dict[str, str]:
    """The dated test corpus (the bundled reports and their SYNTHETIC earlier versions) the corpus sets are asked of."""
    from eval.corpus import make_dated_corpus

    return {p.name: p.read_text(encoding="utf-8") for p in make_dated_corpus(tmp_path_factory.mktemp("dated"))}


@pytest.mark.parametrize("which", ["CORPUS_QA", "CORPUS_HELDOUT_QA"])
def test_corpus_sets_load_clean_with_every_quote_verbatim(dated_texts, which):
    """Every gold quote of eval/corpus_qa.jsonl and eval/corpus_heldout.jsonl is verbatim in its report of the
    dated corpus, every report a question's time names is in it, and each kind carries what it is scored by."""
    import eval.runner as runner

    qa = load_qa(getattr(runner, which), dated_texts)
    assert qa.skipped == [] and qa.warnings == []
    for q in qa.questions:
        for e in q.evidence:
            assert e.exact and [dated_texts[e.source][a:b] for a, b in e.spans] == [e.quote] * len(e.spans), q.id
    assert {r for q in qa.questions for r in q.in_time or ()} <= set(dated_texts)
    assert {q.kind for q in qa.questions} == {"time-scope", "latest", "changed", "which", "unanswerable"}
    # Time questions are scored by the reports of their time, which questions by the councils they name.
    assert [q.id for q in qa.questions if q.kind in ("time-scope", "latest", "changed") and q.in_time is None] == []
    assert [q.id for q in qa.questions if q.kind == "which" and q.councils is None] == []
    assert runner.uses_dated_corpus(getattr(runner, which))


def test_corpus_held_out_set_is_new(dated_texts):
    """eval/corpus_heldout.jsonl was written blind: 39 questions, none of them one of eval/corpus_qa.jsonl's."""
    from eval.runner import CORPUS_HELDOUT_QA, CORPUS_QA

    held, seen = load_qa(CORPUS_HELDOUT_QA, dated_texts), load_qa(CORPUS_QA, dated_texts)
    assert len(held.questions) == 39
    assert {q.question for q in held.questions}.isdisjoint(q.question for q in seen.questions)
    assert {q.id for q in held.questions}.isdisjoint(q.id for q in seen.questions)
