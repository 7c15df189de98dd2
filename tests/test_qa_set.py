"""Sanity checks for the evaluation question/answer set in eval/qa.jsonl.

Uses only the standard library and pytest. Every failure names the
offending item id(s).
"""

import json
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
QA_PATH = REPO_ROOT / "eval" / "qa.jsonl"
REPORTS_DIR = REPO_ROOT / "index" / "reports"

WREXHAM = "ciw-wrexham-2020-10.txt"
CARDIFF = "ciw-cardiff-2020-12.txt"
REPORT_NAMES = {WREXHAM, CARDIFF}

EXPECTED_KEYS = {"id", "question", "answer", "facts", "evidence", "kind", "history"}
MIN_PER_KIND = {
    "fact": 15,
    "finding": 20,
    "judgement": 6,
    "paraphrase": 10,
    "comparison": 8,
    "unanswerable": 12,
    "followup": 12,
}
ALLOWED_KINDS = set(MIN_PER_KIND)
MIN_ITEMS = 80
QUOTE_MIN, QUOTE_MAX = 40, 300


def _load_raw_lines():
    text = QA_PATH.read_bytes().decode("utf-8")
    return [line for line in text.split("\n") if line.strip()]


def _load_items():
    return [json.loads(line) for line in _load_raw_lines()]


@pytest.fixture(scope="module")
def items():
    return _load_items()


@pytest.fixture(scope="module")
def reports():
    return {
        name: (REPORTS_DIR / name).read_bytes().decode("utf-8")
        for name in sorted(REPORT_NAMES)
    }


def _is_fact(value):
    """A fact is a non-empty string or a non-empty list of non-empty strings."""
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return bool(value) and all(isinstance(a, str) and a.strip() for a in value)
    return False


def _is_turn(value):
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(s, str) and s.strip() for s in value)
    )


def test_file_exists():
    assert QA_PATH.is_file(), f"missing {QA_PATH}"


def test_every_line_parses():
    bad = []
    for lineno, line in enumerate(_load_raw_lines(), start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {lineno}: {exc}")
            continue
        if not isinstance(obj, dict):
            bad.append(f"line {lineno}: not a JSON object")
    assert bad == []


def test_exact_keys(items):
    bad = [
        (it.get("id"), sorted(set(it) ^ EXPECTED_KEYS))
        for it in items
        if set(it) != EXPECTED_KEYS
    ]
    assert bad == []


def test_field_types(items):
    bad = []
    for it in items:
        iid = it.get("id")
        problems = []
        if not (isinstance(iid, str) and iid.strip()):
            problems.append("id")
        if not (isinstance(it["question"], str) and it["question"].strip()):
            problems.append("question")
        if not (isinstance(it["answer"], str) and it["answer"].strip()):
            problems.append("answer")
        if not isinstance(it["kind"], str):
            problems.append("kind")
        if not (isinstance(it["facts"], list) and all(_is_fact(f) for f in it["facts"])):
            problems.append("facts")
        ev = it["evidence"]
        if not (
            isinstance(ev, list)
            and all(
                isinstance(e, dict)
                and set(e) == {"source", "quote"}
                and isinstance(e["source"], str)
                and isinstance(e["quote"], str)
                for e in ev
            )
        ):
            problems.append("evidence")
        if not (isinstance(it["history"], list) and all(_is_turn(t) for t in it["history"])):
            problems.append("history")
        if problems:
            bad.append((iid, problems))
    assert bad == []


def test_ids_unique(items):
    counts = Counter(it["id"] for it in items)
    dupes = sorted(i for i, n in counts.items() if n > 1)
    assert dupes == []


def test_kinds_allowed(items):
    bad = [(it["id"], it["kind"]) for it in items if it["kind"] not in ALLOWED_KINDS]
    assert bad == []


def test_total_count(items):
    assert len(items) >= MIN_ITEMS


def test_minimum_per_kind(items):
    counts = Counter(it["kind"] for it in items)
    shortfalls = {
        kind: (counts.get(kind, 0), minimum)
        for kind, minimum in MIN_PER_KIND.items()
        if counts.get(kind, 0) < minimum
    }
    assert shortfalls == {}


def test_facts_short(items):
    """Facts are meant to be short distinctive phrases, not sentences."""
    bad = []
    for it in items:
        for f in it["facts"]:
            alts = [f] if isinstance(f, str) else f
            if any(len(a) > 60 for a in alts):
                bad.append((it["id"], f))
        if len(it["facts"]) > 3:
            bad.append((it["id"], f"{len(it['facts'])} facts"))
    assert bad == []


def test_evidence_sources_known(items):
    bad = [
        (it["id"], e["source"])
        for it in items
        for e in it["evidence"]
        if e["source"] not in REPORT_NAMES
    ]
    assert bad == []


def test_evidence_quotes_verbatim(items, reports):
    bad = []
    for it in items:
        for e in it["evidence"]:
            quote = e["quote"]
            text = reports.get(e["source"])
            if text is None:
                continue  # reported by test_evidence_sources_known
            if "\n" in quote or "\r" in quote:
                bad.append((it["id"], "newline in quote", quote[:60]))
            elif not (QUOTE_MIN <= len(quote) <= QUOTE_MAX):
                bad.append((it["id"], f"quote length {len(quote)}", quote[:60]))
            elif quote not in text:
                bad.append((it["id"], "not verbatim in " + e["source"], quote[:60]))
    assert bad == []


def test_unanswerable_empty(items):
    bad = [
        it["id"]
        for it in items
        if it["kind"] == "unanswerable" and (it["evidence"] != [] or it["facts"] != [])
    ]
    assert bad == []


def test_answerable_have_evidence_and_facts(items):
    bad = [
        it["id"]
        for it in items
        if it["kind"] != "unanswerable" and (not it["evidence"] or not it["facts"])
    ]
    assert bad == []


def test_followups_have_history(items):
    bad = [it["id"] for it in items if it["kind"] == "followup" and not it["history"]]
    assert bad == []


def test_non_followups_have_no_history(items):
    bad = [it["id"] for it in items if it["kind"] != "followup" and it["history"]]
    assert bad == []


def test_comparisons_cite_both_reports(items):
    bad = [
        (it["id"], sorted({e["source"] for e in it["evidence"]}))
        for it in items
        if it["kind"] == "comparison"
        and {e["source"] for e in it["evidence"]} != REPORT_NAMES
    ]
    assert bad == []


def test_both_reports_covered(items):
    cited = Counter(e["source"] for it in items for e in it["evidence"])
    assert set(cited) == REPORT_NAMES
