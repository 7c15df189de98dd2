"""Questions across the corpus (issue 12 item 5): "Which councils ...?", "How many councils ...?",
"In which reports ...?", "... across Wales": every council searched on its own, answered as a list
of one cited line per council whose reports answer, with a count.

Run on a real index of the dated test corpus (eval/corpus.py: the two bundled reports and
SYNTHETIC earlier versions of them) with the real embedding model."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from index.text import terms
from index.types import ReportMeta
from rag.across import search_each as _search_each
from rag.scope import MAX_COMPARED, across_match, scope_question


def _councils(ans) -> set[str]:
    return {c.authority for c in ans.citations}


@pytest.mark.parametrize(
    "question, phrase",
    [
        ("Which councils have problems recruiting social workers?", "Which councils"),
        ("How many councils' reports mention advocacy?", "How many councils'"),
        ("In which reports were children found at immediate risk of harm?", "In which reports"),
        ("In which local authorities is hospital discharge a priority?", "In which local authorities"),
        ("What do reports across Wales say about carers?", "across Wales"),
        ("Which council's reports mention the IAA?", "Which council's"),
    ],
)
def test_questions_across_the_corpus_are_recognised(question, phrase):
    assert across_match(question).group() == phrase


@pytest.mark.parametrize(
    "question",
    [
        "Which services improved in Wrexham?",
        "What inspection methods were used?",
        "What does the report say about supervision?",
        "Which areas need improvement?",
        "How do the two councils compare on supervision?",
    ],
)
def test_other_questions_are_not(question):
    assert across_match(question) is None


def _metas(n: int) -> dict[str, ReportMeta]:
    names = ["Cardiff Council", "Wrexham County Borough Council", "Swansea Council", "Powys County Council",
             "Conwy County Borough Council", "Ceredigion County Council", "Gwynedd Council", "Newport City Council"]
    return {f"r{i}.txt": ReportMeta(f"r{i}.txt", "", names[i], "", "", "") for i in range(n)}


def test_every_council_is_a_group_of_its_own_beyond_the_comparison_cap():
    reports = _metas(8)
    assert len(reports) > MAX_COMPARED
    sc = scope_question("Which councils have problems recruiting social workers?", reports)
    assert sc.across and len(sc.groups) == 8 and sorted(sc.labels) == sorted(m.authority for m in reports.values())
    assert all(len(g) == 1 for g in sc.groups)
    assert sc.text == "have problems recruiting social workers?"



def test_each_council_is_every_council_side_by_side_however_many():
    reports = _metas(8)
    sc = scope_question("What did CIW find about supervision in each council?", reports)
    assert (sc.comparison, sc.across, sc.note) == (True, False, "")
    assert sorted(sc.labels) == sorted(m.authority for m in reports.values())
    assert sc.text == "What did find about supervision ?"
    # "The two councils" of eight cannot say which two: all are shown, and the answer says so.
    two = scope_question("How do the two councils compare on supervision?", reports)
    assert two.groups == sc.groups
    assert two.note == (
        "The question asks about “the two councils”, but the reports searched are of 8 councils: "
        "each is shown. Name the councils to compare only those."
    )
    # Of exactly two, nothing to say.
    assert scope_question("How do the two councils compare on supervision?", _metas(2)).note == ""


def test_the_reports_as_a_whole_are_each_councils_answer():
    reports = _metas(3)
    sc = scope_question("What do the reports say about staff supervision?", reports)
    assert (sc.across, sorted(sc.labels), sc.text) == (True, sorted(m.authority for m in reports.values()), "What say about staff supervision?")
    assert scope_question("What did the inspections find about advocacy?", reports).across
    # Of one council, an ordinary question; naming a council, or "each council", decides as before.
    assert scope_question("What do the reports say about staff supervision?", _metas(1)).groups == (("r0.txt",),)
    assert not scope_question("What do the reports say about Cardiff's staff supervision?", reports).across
    each = scope_question("What do the reports say about supervision in each council?", reports)
    assert (each.across, each.comparison) == (False, True)


def test_what_the_reports_say_lists_each_council_that_answers(ask):
    ans = ask("What do the reports say about staff supervision?")
    assert not ans.abstained
    lines = ans.text.splitlines()
    assert lines[0] == "2 of the 2 councils' reports answer this:"
    assert [line.split(",")[0] for line in lines[1:]] == ["- Cardiff", "- Wrexham"]
    assert _councils(ans) == {"Cardiff Council", "Wrexham County Borough Council"}
    assert all("supervision" in line.lower() for line in lines[1:])


def test_a_named_council_or_filter_is_not_a_question_across_the_corpus():
    reports = _metas(3)
    assert not scope_question("Which services in Cardiff have problems recruiting?", reports).across
    sc = scope_question("Which councils have problems recruiting?", reports, {"authority": ["Cardiff", "Swansea"]})
    assert sc.across and sorted(sc.labels) == ["Cardiff Council", "Swansea Council"]


def test_batched_search_finds_what_each_council_search_finds(dated_index, settings, embeddings):
    import numpy as np

    from index.store import open_store
    from rag.across import search_each
    from rag.retrieval import search

    store = open_store(dated_index, settings)
    # Each council's latest report: the SYNTHETIC copies repeat passages word for word, whose
    # ties either search may order its own way.
    sc = scope_question("Which councils offer direct payments?", store.reports, {"latest": True})
    assert sc.across and len(sc.groups) == 2
    qvec = np.asarray(embeddings.embed_query(sc.search_text), dtype="float32")
    batched = search_each(store, sc.search_text, qvec, 5, sc.groups)
    for g, got in zip(sc.groups, batched):
        one = search(store, sc.search_text, qvec, 5, list(g))
        # The same passages, then the head of each ranking that fusion left out; a fused score may
        # differ by a rank where two passages tie in one ranking.
        assert {p.chunk_id for p in got[: len(one)]} == {p.chunk_id for p in one}
        assert [p.score for p in got[: len(one)]] == pytest.approx([p.score for p in one], abs=1e-3)
        rankings = [
            store.dense_search(qvec.tolist(), 30, list(g)),
            store.sentence_search(qvec, 30, list(g)),
            store.keyword_search(terms(sc.search_text), 30, list(g)),
        ]
        heads = {store.chunks[r[0][0]].id for r in rankings if r}
        assert {p.chunk_id for p in got[len(one) :]} == heads - {p.chunk_id for p in one}
    # A comparison of many councils (not listed): each group's top k alone, as search finds it.
    for g, got in zip(sc.groups, search_each(store, sc.search_text, qvec, 5, sc.groups, listed=False)):
        one = search(store, sc.search_text, qvec, 5, list(g))
        assert {p.chunk_id for p in got} == {p.chunk_id for p in one}
        assert [p.score for p in got] == pytest.approx([p.score for p in one], abs=1e-3)


def test_copies_of_a_passage_score_alike_in_the_answer_wherever_they_are_placed(dated_index, settings, embeddings):
    """The SYNTHETIC reports repeat passages word for word: every sentence of the answer's
    candidates is scored on its own, so each copy scores exactly as the others (one product of
    every candidate row rounds a row by its place: 5 of these 12 placements when tried). Retrieval
    keeps one copy (test below); a comparison of a council's reports scores each."""
    from index.store import open_store
    from rag.answer import score_sentences
    from rag.retrieval import retrieve_scoped, to_passage

    store = open_store(dated_index, settings)
    r = retrieve_scoped(store, embeddings, "How do Wrexham and Cardiff compare on the timeliness of hospital discharge?", k=5)
    by_text: dict[str, list[int]] = {}
    for pos, c in enumerate(store.chunks):
        if store.reports[c.report_id].authority.startswith("Wrexham") and len(store.sent_rows[c.id]) > 1:
            by_text.setdefault(c.text, []).append(pos)
    best = max((ps for ps in by_text.values() if len(ps) == 3), key=lambda ps: float(store.gen.chunk_vector(ps[0]) @ r.qvec))
    three = [to_passage(store, p, score=0.0, similarity=round(float(store.gen.chunk_vector(p) @ r.qvec), 6)) for p in best]
    others = [to_passage(store, i, score=0.0, similarity=0.0) for i in range(1, 16)]
    for shift in range(12):
        groups = ((*others[:shift], three[0]), (*others[shift : shift + 3], three[1]), (three[2],))
        scores: dict[str, set[float]] = {}
        for x in score_sentences(store, replace(r, groups=groups), r.scope.search_text):
            if x.passage.text == three[0].text:
                scores.setdefault(store.gen.sentences[x.row].text, set()).add(x.score)
        assert len(scores) > 1 and [len(v) for v in scores.values()] == [1] * len(scores), shift


def test_a_passage_only_the_keywords_rank_first_is_searched(dated_index, settings, embeddings):
    import numpy as np

    from index.store import open_store
    from rag.across import search_each

    store = open_store(dated_index, settings)
    # "Signs of Safety" is a name: the keyword ranking puts its passage first, the dense and
    # sentence rankings do not, and fused by rank it falls outside each council's top k.
    sc = scope_question("Which councils mention Signs of Safety?", store.reports)
    qvec = np.asarray(embeddings.embed_query(sc.search_text), dtype="float32")
    for g, got in zip(sc.groups, search_each(store, sc.search_text, qvec, 5, sc.groups)):
        first = store.keyword_search(terms(sc.search_text), 1, list(g))
        assert store.chunks[first[0][0]].id in {p.chunk_id for p in got}


def test_framing_words_the_reports_never_use_cost_no_evidence(store):
    from rag.answer import evidence_score

    # "mention" frames the question; no report uses it, and it asks nothing of them.
    assert "mention" not in store.idf()
    assert evidence_score(store, "Which reports mention advocacy?", "", 0.6, []) == 0.6
    # A word of what is asked that no report holds still costs evidence.
    assert evidence_score(store, "Which reports mention advocacy zorblats?", "", 0.6, []) < 0.5


def test_a_council_whose_reports_answer_is_listed_alone(ask):
    ans = ask("Which councils offer direct payments?")
    assert not ans.abstained
    assert _councils(ans) == {"Cardiff Council"}
    lines = ans.text.splitlines()
    assert lines[0] == "1 of the 2 councils' reports answer this:"
    assert len(lines) == 2 and lines[1].startswith("- Cardiff, ") and "direct payments" in lines[1]
    assert re.search(r"\[1\]", lines[1])


def test_both_councils_listed_each_line_cited_and_dated(ask):
    ans = ask("In which councils is timely hospital discharge a priority?")
    assert not ans.abstained
    assert _councils(ans) == {"Cardiff Council", "Wrexham County Borough Council"}
    lines = ans.text.splitlines()
    assert lines[0] == "2 of the 2 councils' reports answer this:"
    # The index holds several reports of each council: every line names its report's date.
    for line in lines[1:]:
        assert re.match(r"- (Cardiff|Wrexham), [A-Z][a-z]{2}(-[A-Z][a-z]{2})? \d{4}: .*\[\d+\]$", line), line
    assert "hospital discharge" in ans.text


def test_a_comparison_of_more_councils_than_the_cap_is_one_batched_search_with_the_same_lines(ask, monkeypatch):
    import rag.across
    import rag.retrieval

    question = "How do the two councils compare on supervision?"
    small = ask(question)
    # The dated index holds two councils; with the cap under two, their comparison is searched
    # in one batch, as a comparison of twenty councils is.
    batched = []
    monkeypatch.setattr(rag.retrieval, "MAX_COMPARED", 1)
    monkeypatch.setattr(rag.across, "search_each", lambda *a, **k: batched.append(1) or _search_each(*a, **k))
    big = ask(question)
    assert batched == [1] and not small.abstained and not big.abstained
    assert _councils(big) == _councils(small) == {"Cardiff Council", "Wrexham County Borough Council"}
    # Each council's line is its own: labelled with it, its report's date, and citing it alone.
    for line in big.text.splitlines():
        council = re.match(r"(Cardiff|Wrexham), [A-Z][a-z]{2}(?:-[A-Z][a-z]{2})? \d{4}: ", line).group(1)
        cited = {c.authority for c in big.citations if f"[{c.n}]" in line}
        assert cited and all(a.startswith(council) for a in cited), line


def test_no_council_listed_when_none_answers(ask):
    ans = ask("Which councils have closed their public libraries?")
    assert ans.abstained and not ans.citations
    assert "None of the 2 councils' reports" in ans.text


def test_time_words_scope_the_councils_searched(ask):
    ans = ask("Which councils offered direct payments in 2020?")
    assert not ans.abstained
    assert {c.source for c in ans.citations} <= {"ciw-cardiff-2020-12.txt", "ciw-wrexham-2020-10.txt"}


def test_council_scores_and_their_aggregate():
    from eval.metrics import council_scores
    from eval.runner import QuestionResult, aggregate, per_kind

    assert council_scores(["Cardiff"], ["Cardiff", "Wrexham"]) == (1.0, 0.5)
    assert council_scores(["cardiff"], []) == (0.0, None)
    rs = [
        QuestionResult("default", "w1", "which", True, council_precision=1.0, council_recall=0.5),
        QuestionResult("default", "w2", "which", True, council_precision=0.5, council_recall=1.0),
        QuestionResult("default", "f1", "fact", True),
    ]
    out = aggregate(rs)
    assert out["council_precision"] == 0.75 and out["council_recall"] == 0.75
    assert per_kind(rs)["which"]["council_recall"] == 0.75 and "council_recall" not in per_kind(rs)["fact"]


# ---------------------------------------------------------------- what changed (issue 12 item 4)


def _dated_metas() -> dict[str, ReportMeta]:
    rows = [("w16.txt", "Wrexham County Borough Council", "6 - 10 June 2016"), ("w18.txt", "Wrexham County Borough Council", "5 - 9 March 2018"),
            ("w20.txt", "Wrexham County Borough Council", "12 - 23 October 2020"), ("c20.txt", "Cardiff Council", "23 November - 3 December 2020")]
    return {r: ReportMeta(r, "", a, "", d, "") for r, a, d in rows}


def test_a_change_question_is_one_group_per_report_oldest_first():
    from rag.changes import asks_change

    reports = _dated_metas()
    assert asks_change("What has changed in Wrexham since 2016?") and not asks_change("What must improve in Wrexham?")
    sc = scope_question("What has changed in Wrexham since 2016?", reports)
    assert sc.groups == (("w16.txt",), ("w18.txt",), ("w20.txt",)) and sc.comparison
    sc = scope_question("What has improved in Wrexham since the last inspection?", reports)
    assert sc.groups == (("w18.txt",), ("w20.txt",))
    # A council with one report has nothing to set side by side.
    assert scope_question("What has changed in Cardiff?", reports).groups == (("c20.txt",),)


def test_a_comparison_word_about_one_council_compares_its_reports():
    """'better', 'more or fewer', 'compared with' about one council with several reports compare its
    inspections, as 'what has changed' does; about two councils they compare the councils."""
    reports = _dated_metas()
    sc = scope_question("Has Wrexham got better at keeping children safe from harm since 2016?", reports)
    assert (sc.groups, sc.changed, sc.text) == ((("w16.txt",), ("w18.txt",), ("w20.txt",)), True, "Has got at keeping children safe from harm")
    sc = scope_question("Did inspectors look at more or fewer case files in Wrexham in 2020 than in 2016?", reports)
    assert (sc.groups, sc.changed) == ((("w16.txt",), ("w20.txt",)), True)
    sc = scope_question("How does Wrexham's 2020 report on advocacy compare with the previous inspection?", reports)
    assert (sc.groups, sc.changed) == ((("w18.txt",), ("w20.txt",)), True)
    assert not scope_question("How do Wrexham and Cardiff compare on supervision?", reports).changed
    assert not scope_question("What must Wrexham improve about carers' assessments?", reports).changed


def test_the_search_text_of_a_change_question_is_its_topic():
    from rag.changes import topic

    reports = _dated_metas()
    sc = scope_question("How has advocacy for children in Wrexham changed since 2016?", reports)
    assert (sc.groups, sc.text, sc.overall) == ((("w16.txt",), ("w18.txt",), ("w20.txt",)), "advocacy for children", False)
    sc = scope_question("What has improved in Wrexham's children's services since the last inspection?", reports)
    assert (sc.groups, sc.text, sc.overall) == ((("w18.txt",), ("w20.txt",)), "children's services", False)
    # No topic: each report's summary is searched, ranked by the question's change words.
    sc = scope_question("What has changed in Wrexham since 2016?", reports)
    assert (sc.text, sc.overall) == ("What has changed?", True)
    sc = scope_question("What has improved in Wrexham since the last inspection?", reports)
    assert (sc.groups, sc.text, sc.overall) == ((("w18.txt",), ("w20.txt",)), "What has improved?", True)
    assert [topic(q) for q in ("What progress has been made overall?", "What has got worse in ?", "How have waiting lists changed?")] == [
        "", "", "waiting lists"]


def _lines(ans) -> list[tuple[str, list[str]]]:
    """(label, sources cited) of each answer line."""
    by_n = {c.n: c.source for c in ans.citations}
    return [(line.split(":")[0], [by_n[int(n)] for n in re.findall(r"\[(\d+)\]", line)]) for line in ans.text.splitlines()]


def test_each_report_line_is_its_own_finding_on_the_topic_oldest_first(ask):
    from eval.corpus import _ADVOCACY, CHANGES

    ans = ask("How has advocacy for children in Wrexham changed since 2016?")
    w16, w18, w20 = "synthetic-wrexham-2016-06.txt", "synthetic-wrexham-2018-03.txt", "ciw-wrexham-2020-10.txt"
    assert [(label, set(src)) for label, src in _lines(ans)] == [
        ("Wrexham, Jun 2016", {w16}), ("Wrexham, Mar 2018", {w18}), ("Wrexham, Oct 2020", {w20})], ans.text
    # Each line leads with what that report says of advocacy: the finding the variants rewrite.
    firsts = {c.source: c.quote for c in reversed(ans.citations)}
    advocacy = {name: new for name, changes in CHANGES.items() for old, new in changes if old == _ADVOCACY}
    assert firsts == {w16: advocacy[w16], w18: advocacy[w18], w20: _ADVOCACY}
    assert ans.notice == "Each report is searched on its own and its lines are shown side by side, oldest first."


def test_each_inspection_of_a_council_is_a_line_of_its_own_newest_first(ask):
    """"... in each inspection?" of a council with several reports: every report answers on its own
    line (the best sentences of all three had left out 2018's count)."""
    ans = ask("How many case files were reviewed in Wrexham in each inspection?")
    w16, w18, w20 = "synthetic-wrexham-2016-06.txt", "synthetic-wrexham-2018-03.txt", "ciw-wrexham-2020-10.txt"
    assert [(label, set(src)) for label, src in _lines(ans)] == [
        ("Wrexham, Oct 2020", {w20}), ("Wrexham, Mar 2018", {w18}), ("Wrexham, Jun 2016", {w16})], ans.text
    firsts = {c.source: c.quote for c in reversed(ans.citations)}
    assert [re.search(r"In the (\d+) children's case files", firsts[r])[1] for r in (w20, w18, w16)] == ["32", "33", "46"]
    # With both councils named, each council's reports in turn; a change question keeps its own scope.
    both = ask("How many children's case files did inspectors review in Wrexham and Cardiff in each inspection?")
    assert [label for label, _ in _lines(both)] == [
        "Wrexham, Oct 2020", "Wrexham, Mar 2018", "Wrexham, Jun 2016", "Cardiff, Nov-Dec 2020", "Cardiff, Nov-Dec 2017"]
    change = ask("Cardiff supervision records - better or worse between the two inspections?")
    assert change.notice == "Each report is searched on its own and its lines are shown side by side, oldest first."
    # A follow-up asking for each inspection stays with Wrexham (it had become "in each council").
    follow = ask("And in each inspection?", history=[("How many case files were reviewed in Wrexham?", "...")])
    assert [label for label, _ in _lines(follow)] == ["Wrexham, Oct 2020", "Wrexham, Mar 2018", "Wrexham, Jun 2016"], follow.text
    # A count is a count per inspection: Cardiff's two reports (before, 2017's 66 alone, the 2020
    # sentence left out as the same words), and both of Wrexham's since 2017 (before, 2020's alone).
    cardiff = ask("How many children's case files were reviewed in Cardiff?")
    assert [(label, set(src)) for label, src in _lines(cardiff)] == [
        ("Cardiff, Nov-Dec 2020", {"ciw-cardiff-2020-12.txt"}), ("Cardiff, Nov-Dec 2017", {"synthetic-cardiff-2017-12.txt"})], cardiff.text
    since = ask("Since 2017, how many children's case files did inspectors review in Wrexham?")
    assert [(label, set(src)) for label, src in _lines(since)] == [("Wrexham, Oct 2020", {w20}), ("Wrexham, Mar 2018", {w18})], since.text


def test_passages_repeated_word_for_word_in_a_councils_reports_are_retrieved_once(ask, dated_index, settings, embeddings):
    """Wrexham's three reports repeat passages word for word: five passages of them were about
    two findings, copies, and left out the one that gives the count; the copy kept is the newest."""
    import numpy as np

    from index.store import open_store
    from rag.retrieval import search

    store = open_store(dated_index, settings)
    wrexham = [r for r, m in store.reports.items() if m.authority.startswith("Wrexham")]
    q = "How many case files were reviewed?"
    got = search(store, q, np.asarray(embeddings.embed_query(q), dtype="float32"), 5, wrexham)
    assert len({p.text for p in got}) == len(got) == 5
    ans = ask("How many case files were reviewed in Wrexham?")
    assert not ans.abstained, ans.text
    assert _lines(ans)[0] == ("Wrexham, Oct 2020", ["ciw-wrexham-2020-10.txt"] * len(_lines(ans)[0][1]))
    assert "In the 32 children's case files we reviewed" in ans.citations[0].quote


def test_each_report_splits_a_named_council_of_several_reports_only():
    reports = {
        "w16.txt": ReportMeta("w16.txt", "", "Wrexham County Borough Council", "", "June 2016", ""),
        "w20.txt": ReportMeta("w20.txt", "", "Wrexham County Borough Council", "", "October 2020", ""),
        "c20.txt": ReportMeta("c20.txt", "", "Cardiff Council", "", "November 2020", ""),
    }
    sc = scope_question("What did inspectors find about advocacy in Wrexham at each inspection?", reports)
    assert (sc.groups, sc.text) == ((("w20.txt",), ("w16.txt",)), "What did inspectors find about advocacy in?")
    # One report of the council named, or no council named (each council is then the group).
    assert scope_question("What did inspectors find in Cardiff in each report?", reports).groups == (("c20.txt",),)
    assert scope_question("What did inspectors find about advocacy in each inspection?", reports).groups == (("c20.txt",), ("w16.txt", "w20.txt"))


def test_a_change_question_with_no_topic_quotes_each_report_summary(ask):
    from rag.changes import _SUMMARY

    ans = ask("What has changed in Cardiff since 2016?")
    assert not ans.abstained
    assert [(label, set(src)) for label, src in _lines(ans)] == [
        ("Cardiff, Nov-Dec 2017", {"synthetic-cardiff-2017-12.txt"}), ("Cardiff, Nov-Dec 2020", {"ciw-cardiff-2020-12.txt"})], ans.text
    assert all(any(_SUMMARY.fullmatch(h) for h in c.section) for c in ans.citations), [c.section for c in ans.citations]


def test_a_report_with_nothing_on_the_topic_says_so(ask, dated_index, settings, embeddings):
    from rag.api import get_store
    from rag.changes import change_answer
    from rag.retrieval import retrieve_scoped

    store = get_store(dated_index, settings=settings, embeddings=embeddings)
    r = retrieve_scoped(store, embeddings, "How has advocacy for children in Wrexham changed since 2016?", k=5)
    # The oldest report found nothing on the topic: its line says so and quotes nothing.
    r = replace(r, groups=((),) + r.groups[1:])
    ans = change_answer("How has advocacy for children in Wrexham changed since 2016?", r, store)
    assert [label for label, _ in _lines(ans)] == ["Wrexham, Jun 2016", "Wrexham, Mar 2018", "Wrexham, Oct 2020"]
    assert ans.text.splitlines()[0] == "Wrexham, Jun 2016: nothing in this report answers this closely enough."
    assert "synthetic-wrexham-2016-06.txt" not in {c.source for c in ans.citations} and not ans.abstained
    # No report on the topic at all: an abstention, not a list of unrelated sentences.
    none = change_answer("How has advocacy for children in Wrexham changed since 2016?", replace(r, groups=((), (), ())), store)
    assert (none.abstained, none.citations) == (True, ())


def test_words_several_reports_of_a_council_repeat_are_ranked_newest_first(dated_index, settings, embeddings):
    import numpy as np

    from index.store import open_store
    from rag.across import search_each

    store = open_store(dated_index, settings)
    wrexham = sorted((r for r, m in store.reports.items() if m.authority.startswith("Wrexham")), key=lambda r: store.reports[r].start)
    assert [store.reports[r].year for r in wrexham] == [2016, 2018, 2020]
    # A sentence all three Wrexham reports hold word for word: three ties in every ranking.
    same = ("Advocacy support is available, however, the local authority must ensure agreement is reached and "
            "recorded on whether advocacy is needed at the earliest opportunity.")
    qvec = np.asarray(embeddings.embed_query(same), dtype="float32")
    rankings = {
        "passages": store.dense_search(qvec, 30, wrexham),
        "sentences": store.sentence_search(qvec, 3, wrexham),
        "keywords": store.keyword_search(terms(same), 30, wrexham),
    }
    for name, ranked in rankings.items():
        holding = [(store.chunks[p].report_id, s) for p, s in ranked if same in store.chunks[p].text]
        assert [r for r, _ in holding] == wrexham[::-1], name  # the 2020 report's copy first
        assert len({s for _, s in holding}) == 1, name  # ... of three equal scores
    (got,) = search_each(store, same, qvec, 1, (tuple(wrexham),), listed=False)
    assert got[0].source == wrexham[-1]
