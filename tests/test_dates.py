"""Dates as report metadata, time in questions, and answers that say which report (issue 12, items 1-3).

The multi-report tests use the dated test corpus of eval/corpus.py: the two bundled reports and
SYNTHETIC earlier versions of them (Wrexham 2016 and 2018, Cardiff 2017), made in a temporary folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import CARDIFF, REPORTS, WREXHAM
from index.clean import clean_text
from index.load import load_file
from index.meta import dates_span, detect_meta, find_dates, normalise_dates
from index.types import ReportMeta

W16, W18, C17 = "synthetic-wrexham-2016-06.txt", "synthetic-wrexham-2018-03.txt", "synthetic-cardiff-2017-12.txt"
WX, CF = "Wrexham County Borough Council", "Cardiff Council"


# ---------------------------------------------------------------- dates as metadata


@pytest.mark.parametrize(
    "name, dates, start, end, said",
    [
        (WREXHAM, "12-23 October 2020", "2020-10-12", "2020-10-23", "12 and 23 of October 2020"),
        (CARDIFF, "23 November - 3 December 2020", "2020-11-23", "2020-12-03", "23 November to 3 December 2020"),
    ],
)
def test_the_bundled_reports_dates_are_normalised_and_found_where_they_are_written(name, dates, start, end, said):
    loaded = load_file(REPORTS / name)
    meta = detect_meta(name, loaded.source_text, clean_text(loaded.source_text).text)
    assert (meta.dates, meta.start, meta.end, meta.year) == (dates, start, end, 2020)
    a, b = dates_span(loaded.source_text, meta.dates)
    assert loaded.source_text[a:b] == said


@pytest.mark.parametrize(
    "text, shown, start, end",
    [
        ("Fieldwork took place from 23rd November 2020 to 3rd December 2020.", "23 November - 3 December 2020", "2020-11-23", "2020-12-03"),
        ("We visited from 14 December 2021 until 12 January 2022.", "14 December 2021 - 12 January 2022", "2021-12-14", "2022-01-12"),
        ("Inspected 12–23 October 2020 by a team of four.", "12-23 October 2020", "2020-10-12", "2020-10-23"),
        ("between the 2nd and the 6th of March, 2015", "2-6 March 2015", "2015-03-02", "2015-03-06"),
        ("Dates of inspection: 12/10/2020 - 23/10/2020", "12-23 October 2020", "2020-10-12", "2020-10-23"),
        ("The review ran from September to November 2019.", "September - November 2019", "2019-09", "2019-11"),
        ("Inspection visit: 5 March 2018.", "5 March 2018", "2018-03-05", "2018-03-05"),
        ("Published in June 2017, this report ...", "June 2017", "2017-06", "2017-06"),
    ],
)
def test_odd_date_formats_are_read(text, shown, start, end):
    found = find_dates(text)
    assert (found.dates, found.start, found.end) == (shown, start, end)
    assert normalise_dates(found.dates)[:2] == (start, end)  # what is stored reads back the same


@pytest.mark.parametrize("text", ["No date at all.", "Section 31 of the 2014 Act.", "From 31 February to 3 March 2020 we"])
def test_no_date_or_an_impossible_one_is_no_date(text):
    found = find_dates(text)
    assert found is None or found.start != "2020-02-31"
    if found is None:
        assert detect_meta("x.txt", text, text).dates == "" and detect_meta("x.txt", text, text).year is None


def test_metadata_stored_before_the_normalised_fields_still_gives_them():
    # A manifest written by an older Arolwg has only the display string: start, end and year follow from it.
    old = {"report_id": "r.txt", "title": "t", "authority": CF, "kind": "k", "dates": "23 November - 3 December 2020", "sha256": "x"}
    meta = ReportMeta(**{k: v for k, v in old.items() if k in ReportMeta.__dataclass_fields__})
    assert (meta.start, meta.end, meta.year) == ("2020-11-23", "2020-12-03", 2020)
    assert (ReportMeta("u", "", CF, "", "", "").start, ReportMeta("u", "", CF, "", "", "").year) == ("", None)
    assert "start" not in ReportMeta.__dataclass_fields__  # derived, so list_reports' ReportInfo(**asdict(meta)) still works


# ---------------------------------------------------------------- time filters and time words


def _meta(rid: str, authority: str, dates: str) -> ReportMeta:
    return ReportMeta(rid, "", authority, "", dates, "")


REPS = {
    m.report_id: m
    for m in [
        _meta("w16", WX, "12-23 June 2016"),
        _meta("w18", WX, "12-23 March 2018"),
        _meta("w20", WX, "12-23 October 2020"),
        _meta("c17", CF, "23 November - 3 December 2017"),
        _meta("c20", CF, "23 November - 3 December 2020"),
        _meta("cx", CF, ""),  # no date found in its text
    ]
}


@pytest.mark.parametrize(
    "filters, ids",
    [
        ({"year": 2016}, ["w16"]),
        ({"year": [2017, 2018]}, ["c17", "w18"]),
        ({"year": "2020"}, ["c20", "w20"]),
        ({"month": "2020-10"}, ["w20"]),
        ({"month": "2020-12"}, ["c20"]),  # 23 November - 3 December overlaps December
        ({"since": "2018"}, ["c20", "w18", "w20"]),
        ({"since": "2020-11"}, ["c20"]),
        ({"before": "2018"}, ["c17", "w16"]),
        ({"latest": True}, ["c20", "w20"]),
        ({"previous": True}, ["c17", "w18"]),
        ({"before": "2019", "latest": True}, ["c17", "w18"]),  # the latest of those before 2019
        # "in 2020, compared with the previous inspection": the 2020 report and the one before it
        ({"year": 2020, "previous": True}, ["c17", "c20", "w18", "w20"]),
        ({"year": 2018, "previous": True}, ["w16", "w18"]),
        ({"year": 2016, "previous": True}, ["w16"]),  # nothing before it: the 2016 report alone
        ({"since": "2019", "previous": True}, ["c17", "c20", "w18", "w20"]),
        # "compared with the previous inspection": each council's latest and the one before it
        ({"latest": True, "previous": True}, ["c17", "c20", "w18", "w20"]),
        ({"authority": "Wrexham", "latest": True}, ["w20"]),
        ({"latest": False}, sorted(REPS)),
    ],
)
def test_time_filters_allow_the_reports_of_that_time(filters, ids):
    from rag.scope import allowed_reports

    assert allowed_reports(REPS, filters) == ids


@pytest.mark.parametrize(
    "question, filters, text",
    [
        ("What did CIW find in Cardiff in 2016?", {"year": [2016]}, "What did CIW find in Cardiff?"),
        ("What did CIW find in Cardiff in October 2020?", {"month": ["2020-10"]}, "What did CIW find in Cardiff?"),
        ("Since 2018, what has CIW found about supervision in Wrexham?", {"since": "2018"}, "what has CIW found about supervision in Wrexham?"),
        ("What did inspectors find before 2019 about supervision?", {"before": "2019"}, "What did inspectors find about supervision?"),
        ("What did CIW find in Wrexham after 2018?", {"since": "2019"}, "What did CIW find in Wrexham?"),
        ("What did CIW find in Wrexham between 2016 and 2018?", {"since": "2016", "before": "2019"}, "What did CIW find in Wrexham?"),
        ("What did CIW find in Wrexham in 2016 and 2018?", {"year": [2016, 2018]}, "What did CIW find in Wrexham?"),
        ("What did the latest Wrexham inspection find about advocacy?", {"latest": True}, "What did Wrexham find about advocacy?"),
        ("What did the most recent report say about carers?", {"latest": True}, "What did say about carers?"),
        ("What did CIW say about Wrexham at its last inspection?", {"latest": True}, "What did CIW say about Wrexham?"),
        ("When was Wrexham last inspected?", {"latest": True}, "When was Wrexham inspected?"),
        ("What did the previous inspection of Wrexham find?", {"previous": True}, "What did Wrexham find?"),
        ("What did the earlier Cardiff report say about carers?", {"previous": True}, "What did Cardiff say about carers?"),
        ("What did the 2016 inspection of Wrexham find?", {"year": [2016]}, "What did Wrexham find?"),
        # What the latest report says has changed since the one before: its words stay searched.
        ("What has Wrexham improved since CIW's previous inspection?", {"latest": True}, "What has Wrexham improved since CIW's previous inspection?"),
    ],
)
def test_a_questions_time_words_are_a_filter_and_leave_the_search_text(question, filters, text):
    from rag.timescope import time_words

    t = time_words(question)
    assert (t.filters, t.text) == (filters, text)
    assert time_words(f"Tell me {t.phrase}").filters == filters  # the canonical words read back alike


@pytest.mark.parametrize(
    "question",
    [
        "What does the Social Services and Well-being (Wales) Act 2014 require?",
        "What did the letter of 2019-2020 say?",
        "In what year did CIW previously inspect Wrexham's adult services?",  # asks the report, not which report
        "What did inspectors find about the previous year's monitoring?",
    ],
)
def test_other_years_and_words_are_not_time_scope(question):
    from rag.timescope import time_words

    assert time_words(question) is None


def test_scope_keeps_the_named_councils_reports_of_that_time_or_says_there_are_none():
    from rag.scope import scope_question

    s = scope_question("What did CIW find about advocacy in Wrexham in 2018?", REPS)
    assert (s.groups, s.labels, s.text, s.unanswered) == ((("w18",),), (WX,), "What did find about advocacy in ?", "")
    s = scope_question("What did the latest inspections of each council find?", REPS)
    assert s.groups == (("c20",), ("w20",))
    s = scope_question("What did CIW find in Cardiff in 2016?", REPS)
    assert s.unanswered.startswith("No indexed report of Cardiff is dated in 2016 (the indexed ones are of 23 November - 3 December 2020; "
                                   "23 November - 3 December 2017)")
    assert s.groups == (("c17", "c20", "cx"),)  # the closest passages come from its other reports
    s = scope_question("How do Wrexham and Cardiff compare on supervision in 2016?", REPS)
    assert (s.groups, s.unanswered) == ((("w16",),), "")
    assert s.note.startswith("No indexed report of Cardiff is dated in 2016")
    assert scope_question("What did the previous Wrexham inspection find?", {"w20": REPS["w20"]}).unanswered.startswith(
        "No report of Wrexham older than its latest is indexed"
    )
    assert scope_question("What was found?", REPS, {"year": 2015}).unanswered.startswith("No indexed report is dated in 2015")


def test_a_month_no_report_is_of_is_the_date_of_an_event_in_that_years_reports():
    from rag.scope import scope_question

    # Wrexham's October 2020 report tells of a meeting in February 2020.
    s = scope_question("Who did CIW meet in Wrexham in February 2020?", REPS)
    assert (s.groups, s.time, s.unanswered) == ((("w20",),), {"year": [2020]}, "")
    assert "February 2020" in s.text


def test_follow_ups_keep_and_change_the_time_as_they_do_the_council():
    from rag.followup import resolve

    first = ("How many case files did CIW review in Wrexham in 2018?", "...")
    assert resolve("And in 2016?", [first], REPS) == "How many case files did CIW review in Wrexham in 2016?"
    assert resolve("And in Cardiff?", [first], REPS) == "How many case files did CIW review in Cardiff in 2018?"
    assert resolve("What about the latest inspection?", [first], REPS) == "How many case files did CIW review in Wrexham at its latest inspection?"
    # A question that names no council stays with the conversation's council and time ...
    assert resolve("How many staff supervision files did inspectors read?", [first], REPS) == (
        "How many staff supervision files did inspectors read in Wrexham in 2018?"
    )
    # ... unless it names its own time.
    assert resolve("How many staff supervision files did inspectors read in 2020?", [first], REPS) == (
        "How many staff supervision files did inspectors read in 2020 in Wrexham?"
    )
    assert resolve("And in 2016?", [first, ("And in Cardiff?", "...")], REPS) == "How many case files did CIW review in Cardiff in 2016?"


@pytest.mark.parametrize(
    "filters",
    [{"year": 2016}, {"year": [2016, "2018"]}, {"month": "2020-10"}, {"since": "2018"}, {"before": "2019-04"},
     {"latest": True}, {"previous": False}, {"authority": "Cardiff", "since": 2018}],
)
def test_the_api_accepts_time_filters(filters):
    from rag.api import check_filters

    assert check_filters(filters) == filters


@pytest.mark.parametrize(
    "filters, says",
    [
        ({"year": "last year"}, "'year' must be a year such as 2016"),
        ({"year": True}, "'year' must be a year such as 2016"),
        ({"month": "October"}, "'month' must be a month such as \"2020-10\""),
        ({"since": "2018-13"}, "'since' must be a year, month or day"),
        ({"latest": "yes"}, "'latest' must be true or false"),
    ],
)
def test_the_api_refuses_bad_time_filters_in_a_sentence(filters, says):
    from rag.api import check_filters
    from rag.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=re.escape(says)):
        check_filters(filters)


def test_lines_are_labelled_by_report_date_newest_first_when_a_council_has_several():
    from rag.scope import Scope
    from rag.timescope import line_groups

    rows = {1: "w16", 2: "w20", 3: "c20", 4: "w20"}
    one = Scope((("w16", "w18", "w20"),), (WX,), "q")
    assert line_groups(one, REPS, [[1, 2, 4]], rows.get) == ([[2, 4], [1]], ["Wrexham, Oct 2020", "Wrexham, Jun 2016"])
    every = Scope((tuple(REPS),), ("",), "q")
    assert line_groups(every, REPS, [[1, 3, 2]], rows.get) == ([[2], [1], [3]], ["Wrexham, Oct 2020", "Wrexham, Jun 2016", "Cardiff, Nov-Dec 2020"])
    single = {"w20": REPS["w20"], "c20": REPS["c20"]}  # one report per council: as before, council names only
    assert line_groups(Scope((("w20", "c20"),), ("",), "q"), single, [[2, 3]], rows.get) == ([[2], [3]], ["Wrexham", "Cardiff"])
    assert line_groups(Scope((("w20",),), (WX,), "q"), single, [[2]], rows.get) == ([[2]], [""])


# ---------------------------------------------------------------- on the bundled reports


def test_when_questions_are_answered_from_the_dates_at_their_span(store, built_index, settings, embeddings):
    from rag import query

    for question, source, dates in [
        ("When did the inspection of Wrexham take place?", WREXHAM, "12-23 October 2020"),
        ("Between which dates were inspectors in Cardiff?", CARDIFF, "23 November - 3 December 2020"),
    ]:
        ans = query(question, index_dir=built_index, settings=settings, embeddings=embeddings)
        [c] = ans.citations
        text = store.source_text(source)
        a, b = dates_span(text, dates)
        assert (c.source, c.dates, c.quote) == (source, dates, text[c.start : c.end])
        assert c.start <= a < b <= c.end  # the sentence the dates were read from
        assert ans.text.startswith(f"{'Wrexham' if source == WREXHAM else 'Cardiff'}, {dates}: ")
    both = query("When were the Wrexham and Cardiff inspections carried out?", index_dir=built_index, settings=settings, embeddings=embeddings)
    assert [c.source for c in both.citations] == [WREXHAM, CARDIFF]
    # Other dates are not the inspection's: the ordinary answerer takes them.
    other = query("When did CIW formally meet Wrexham's chief executive?", index_dir=built_index, settings=settings, embeddings=embeddings)
    assert "February 2020" in other.text and not other.text.startswith("Wrexham, 12-23 October 2020")


def test_citations_carry_their_reports_dates(built_index, settings, embeddings):
    from rag import query

    ans = query("How many case files were reviewed in Cardiff?", index_dir=built_index, settings=settings, embeddings=embeddings)
    assert ans.citations[0].dates == "23 November - 3 December 2020"
    assert ans.to_dict()["citations"][0]["passage"]["dates"] == "23 November - 3 December 2020"


def test_with_one_report_per_council_time_words_change_nothing_they_need_not(built_index, settings, embeddings):
    from rag import query

    kw = dict(index_dir=built_index, settings=settings, embeddings=embeddings)
    plain = query("How many case files were reviewed in Cardiff?", **kw)
    latest = query("How many case files were reviewed in Cardiff at its latest inspection?", **kw)
    assert latest.text == plain.text and not latest.notice
    gone = query("How many case files were reviewed in Cardiff in 2016?", **kw)
    assert gone.abstained and "No indexed report of Cardiff is dated in 2016" in gone.text


# ---------------------------------------------------------------- on the dated corpus


def test_the_dated_corpus_is_labelled_synthetic_and_dated(dated_index, settings):
    from index import list_reports

    infos = {r.report_id: r for r in list_reports(dated_index, settings)}
    assert {rid: normalise_dates(r.dates)[:2] for rid, r in infos.items()} == {
        CARDIFF: ("2020-11-23", "2020-12-03"),
        WREXHAM: ("2020-10-12", "2020-10-23"),
        C17: ("2017-11-23", "2017-12-03"),
        W16: ("2016-06-12", "2016-06-23"),
        W18: ("2018-03-12", "2018-03-23"),
    }
    for rid in (C17, W16, W18):
        assert "SYNTHETIC TEST REPORT" in infos[rid].title


def test_time_scoped_questions_cite_only_reports_of_that_time(ask):
    cases = [
        ("How many children's case files did inspectors review in Wrexham in 2018?", {W18}, "33"),
        ("Did CIW find children at immediate risk of harm in Wrexham in 2016?", {W16}, "four children"),
        ("How many case files were reviewed in Cardiff in 2017?", {C17}, "66"),
        ("Before 2019, what did CIW find about independent advocacy for children in Wrexham?", {W16, W18}, "advocacy"),
        ("What did the latest Wrexham inspection find about children at immediate risk of harm?", {WREXHAM}, "32"),
        ("What did the previous inspection of Wrexham find about children at immediate risk of harm?", {W18}, "one child"),
        ("How many case files did CIW review in Cardiff at its previous inspection?", {C17}, "66"),
    ]
    for question, allowed, fact in cases:
        ans = ask(question)
        assert ans.citations and {c.source for c in ans.citations} <= allowed, question
        assert fact in ans.text, question


def test_filters_scope_by_time_as_the_questions_words_do(ask):
    files, children = "How many case files were reviewed?", "How many children's case files did inspectors review?"
    for question, filters, allowed in [
        (files, {"year": 2017}, {C17}),
        (files, {"latest": True}, {WREXHAM, CARDIFF}),
        (files, {"since": "2018"}, {W18, WREXHAM, CARDIFF}),
        (children, {"before": "2019", "authority": "Wrexham"}, {W16, W18}),
    ]:
        ans = ask(question, filters=filters)
        assert ans.citations and {c.source for c in ans.citations} <= allowed, filters


def test_an_unqualified_question_searches_every_report_of_the_council_newest_first_each_line_dated(ask):
    ans = ask("How many children's case files did inspectors review in Wrexham?")
    lines = ans.text.splitlines()
    assert len(lines) >= 2
    labels = [line.split(":")[0] for line in lines]
    assert all(re.fullmatch(r"Wrexham, [A-Z][a-z]{2} 20\d\d", lab) for lab in labels)
    years = [int(lab[-4:]) for lab in labels]
    assert years == sorted(years, reverse=True)
    assert ans.notice.startswith("This answer draws on 3 reports of Wrexham (2016-2020)")


def test_a_when_question_lists_each_report_newest_first(ask, dated_index, settings):
    from index.build import source_text

    ans = ask("When did the inspection of Wrexham take place?")
    assert [line.split(":")[0] for line in ans.text.splitlines()] == [
        "Wrexham, 12-23 October 2020", "Wrexham, 12-23 March 2018", "Wrexham, 12-23 June 2016",
    ]
    for c in ans.citations:
        text = source_text(c.source, dated_index, settings)
        assert c.quote == text[c.start : c.end] and c.dates in c.quote.replace(" and ", "-").replace(" of ", " ")
    assert [c.source for c in ask("When was Cardiff last inspected?").citations] == [CARDIFF]


@pytest.mark.parametrize(
    "question, filters, text",
    [
        ("And in the previous one?", {"previous": True}, "And?"),
        ("What about the latest one?", {"latest": True}, "What about?"),
        # Set against the latest: both are asked about ...
        ("How does Cardiff's plan compare with the previous inspection?", {"previous": True, "latest": True},
         "How does Cardiff's plan compare with?"),
        ("Is advocacy better than at the earlier one?", {"previous": True, "latest": True}, "Is advocacy better than?"),
        # ... but not a previous report that compares itself with something else.
        ("Which year did Wrexham's previous report compare itself with?", {"previous": True},
         "Which year did Wrexham compare itself with?"),
        ("How many staff answered in 2020, compared with the previous inspection?", {"year": [2020], "previous": True},
         "How many staff answered, compared with?"),
        # A council's possessive goes with the inspection it qualified.
        ("What did Wrexham's latest inspection find about advocacy?", {"latest": True}, "What did Wrexham find about advocacy?"),
        ("How many files were reviewed in Cardiff’s 2020 inspection?", {"year": [2020]}, "How many files were reviewed in Cardiff?"),
    ],
)
def test_time_words_of_one_inspection_and_of_two(question, filters, text):
    from rag.timescope import phrase_of, time_words

    got = time_words(question)
    assert (got.filters, got.text) == (filters, text)
    assert time_words(f"What did CIW find {phrase_of(filters)}?").filters == filters  # read back alike


def test_a_follow_up_asks_the_previous_one(ask):
    first = "How many children's case files did inspectors review in Wrexham's latest inspection?"
    ans = ask("And in the previous one?", history=[(first, ask(first).text)])
    assert ans.resolved_question == "How many children's case files did inspectors review in Wrexham at its previous inspection?"
    assert not ans.abstained and {c.source for c in ans.citations} == {W18}


def test_follow_ups_change_the_time_and_keep_the_council(ask):
    first = "How many children's case files did inspectors review in Wrexham in 2018?"
    ans = ask("And in 2016?", history=[(first, ask(first).text)])
    assert ans.resolved_question == "How many children's case files did inspectors review in Wrexham in 2016?"
    assert {c.source for c in ans.citations} == {W16}


def test_no_report_of_that_time_is_an_abstention_that_says_so(ask):
    ans = ask("What did CIW find in Cardiff in 2016?")
    assert ans.abstained and not ans.citations
    assert "No indexed report of Cardiff is dated in 2016" in ans.text
    assert ans.passages  # the closest passages of its other reports are still shown


def test_outline_lists_are_headed_by_report_and_date(ask):
    ans = ask("What are the strengths of Wrexham adult services?")
    heads = [line for line in ans.text.splitlines() if not line.startswith("- ")]
    assert heads[0].startswith("Wrexham, Oct 2020 › ")
    assert all(re.match(r"Wrexham, [A-Z][a-z]{2} 20\d\d › ", h) for h in heads)


# ---------------------------------------------------------------- eval: the corpus, its questions and the metric


def test_the_corpus_builder_refuses_the_repository_and_rewrites_findings(tmp_path):
    from eval.corpus import VARIANTS, make_dated_corpus, variant_text

    with pytest.raises(ValueError, match="outside the repository"):
        make_dated_corpus(REPORTS.parent.parent / "eval" / "results" / "corpus")
    for v in VARIANTS:
        text = variant_text(v)
        assert "SYNTHETIC TEST REPORT (not a real CIW report)" in text.splitlines()[:6] or text.startswith("SYNTHETIC")
        for old, new in v.changes:
            assert old not in text and new in text


def test_corpus_questions_all_load_and_are_of_the_time_kinds(tmp_path):
    from eval.corpus import make_dated_corpus
    from eval.dataset import load_qa

    make_dated_corpus(tmp_path)
    qa = load_qa(Path(__file__).resolve().parent.parent / "eval" / "corpus_qa.jsonl", {p.name: p.read_text() for p in tmp_path.iterdir()})
    assert not qa.skipped and not qa.warnings
    kinds = {q.kind for q in qa.questions}
    assert kinds == {"time-scope", "latest", "unanswerable", "which", "changed"}
    # Time questions (and what changed since a time) are scored by in_time, which questions by councils.
    assert all(q.in_time is not None for q in qa.questions if q.kind != "which")
    assert all(q.councils is not None for q in qa.questions if q.kind == "which")
    assert sum(q.kind in ("time-scope", "latest") for q in qa.questions) >= 20


def test_the_out_of_time_metric_and_its_aggregate():
    from eval import metrics as M
    from eval.dataset import QAItem
    from eval.runner import QuestionResult, _score, aggregate

    assert M.out_of_time([], []) is False
    item = QAItem("t", 1, "q?", "", (), (), "time-scope", (), in_time=(W18,))
    good = QuestionResult("default", "t", "time-scope", False, citations=[{"source": W18, "start": 0, "end": 1, "quote": "x"}])
    bad = QuestionResult("default", "t", "time-scope", False, citations=[{"source": WREXHAM, "start": 0, "end": 1, "quote": "x"}])
    for r in (good, bad):
        _score(item, r, {W18: "x", WREXHAM: "x"})
    assert (good.out_of_time, bad.out_of_time) == (False, True)
    assert aggregate([good, bad])["in_time_rate"] == 0.5
    assert "in_time_rate" not in aggregate([QuestionResult("default", "u", "fact", False)])
    assert json.loads(json.dumps(bad.to_dict()))["out_of_time"] is True


# ---------------------------------------------------------------- CLI and web chat


def test_cli_time_flags_become_filters(monkeypatch, capsys):
    from rag import cli

    seen = {}

    def fake_query(question, **kw):
        seen.update(kw["filters"] or {})
        raise cli.ArolwgError("stop here")

    monkeypatch.setattr("rag.api.query", fake_query)
    assert cli.main(["ask", "q?", "--council", "Cardiff", "--year", "2017", "--since", "2016", "--before", "2019-04", "--latest"]) == 2
    assert seen == {"authority": "Cardiff", "year": 2017, "since": "2016", "before": "2019-04", "latest": True}
    with pytest.raises(SystemExit):
        cli.main(["ask", "q?", "--year", "20x6"])
    assert "must be a year such as 2016" in capsys.readouterr().err


def test_the_chat_date_filter_and_the_reports_tab():
    from ui import handlers as H
    from ui.render import reports_table_html

    assert H.AskOptions(council="Cardiff Council", when="latest").filters() == {"authority": "Cardiff Council", "latest": True}
    assert H.AskOptions(when="2017").filters() == {"year": 2017}
    assert H.AskOptions(report=WREXHAM, when="2017").filters() == {"source": WREXHAM}  # a report is one date already
    assert H.AskOptions().filters() is None
    assert H.when_choices(list(REPS.values())) == [
        ("Any date", ""), ("Latest of each council", "latest"), ("2020", "2020"), ("2018", "2018"), ("2017", "2017"), ("2016", "2016"),
    ]
    html = reports_table_html([REPS["cx"], REPS["c20"]])
    assert "Not found in the text" in html and "23 November - 3 December 2020" in html


def test_the_notice_names_a_few_councils_and_counts_many():
    from rag.dates import NAMED_IN_NOTICE, scope_notice
    from rag.scope import Scope

    names = ["Cardiff Council", "Wrexham County Borough Council", "Swansea Council", "Powys County Council"]
    reps = {f"{a}-{y}": _meta(f"{a}-{y}", a, f"June {y}") for a in names for y in (2016, 2019)}
    reps["Gwynedd Council-2020"] = _meta("Gwynedd Council-2020", "Gwynedd Council", "June 2020")  # one report: not counted

    def notice(councils):
        groups = tuple(tuple(r for r, m in reps.items() if m.authority == a) for a in councils)
        return scope_notice(Scope(groups, tuple(councils), "supervision"), reps)

    few = names[:NAMED_IN_NOTICE]
    assert notice(few) == (
        "This answer draws on 2 reports of Cardiff (2016-2019) and 2 reports of Swansea (2016-2019) and "
        "2 reports of Wrexham (2016-2019): each line names the report's date, newest first. "
        "Ask about “the latest inspection” or a year (“in 2018”) to narrow it."
    )
    assert notice([*names, "Gwynedd Council"]) == (
        "This answer draws on 8 reports of 4 councils (2016-2019): each line names the report's date, newest first. "
        "Ask about “the latest inspection” or a year (“in 2018”) to narrow it."
    )
