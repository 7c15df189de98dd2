"""Retrieval, answers, follow-ups, the public API and the CLI, on the real model and index."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys

import pytest

from conftest import CARDIFF, REPO, WREXHAM, make_outdated
from rag.errors import EmptyQuestionError, QuestionTooLongError


@pytest.fixture
def ask(built_index, settings, embeddings):
    from rag import query

    def _ask(q, **kw):
        return query(q, index_dir=built_index, settings=settings, embeddings=embeddings, **kw)

    return _ask


def test_public_api_is_pinned():
    import rag

    assert rag.__all__ == ["Answer", "Citation", "Passage", "as_retriever", "chain", "query", "retrieve"]


def test_a_question_naming_a_council_is_scoped_to_its_report(built_index, settings, embeddings):
    from rag import retrieve

    hits = retrieve("What did inspectors find about direct payments in Cardiff?", k=5, index_dir=built_index, settings=settings, embeddings=embeddings)
    assert [p.source for p in hits] == [CARDIFF] * 5
    assert "direct payments" in hits[0].text


def test_a_comparison_retrieves_from_each_named_report(built_index, settings, embeddings):
    from rag import retrieve

    hits = retrieve("How do Wrexham and Cardiff compare on staff supervision?", k=6, index_dir=built_index, settings=settings, embeddings=embeddings)
    assert [p.source for p in hits] == [WREXHAM, CARDIFF] * 3


def test_filters_restrict_the_reports_searched(built_index, settings, embeddings):
    from rag import retrieve

    for filters in ({"authority": "Wrexham"}, {"authority": "Wrexham County Borough Council"}, {"source": WREXHAM}):
        hits = retrieve("supervision of practitioners", k=4, filters=filters, index_dir=built_index, settings=settings, embeddings=embeddings)
        assert {p.source for p in hits} == {WREXHAM}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_retrieval_mode_finds_the_case_file_count(mode, built_index, settings, embeddings):
    from rag import retrieve

    hits = retrieve("How many case files were reviewed in Cardiff?", k=5, mode=mode, index_dir=built_index, settings=settings, embeddings=embeddings)
    assert any("reviewed 50 case files" in p.text for p in hits)


def test_fact_answer_quotes_the_report_with_a_verbatim_citation(ask, built_index, settings):
    from index import source_text

    ans = ask("How many case files were reviewed in Cardiff?")
    assert not ans.abstained
    # The sentence that gives the count is the whole answer: no neighbouring sentences as context.
    assert ans.text == "In total we reviewed 50 case files and followed 14 of these with interviews with social workers and family members. [1]"
    assert len(ans.citations) == 1
    c = ans.citations[0]
    assert (c.n, c.source, c.authority, c.section) == (1, CARDIFF, "Cardiff Council", ("Method",))
    assert source_text(CARDIFF, built_index, settings)[c.start : c.end] == c.quote
    assert "[1]" in ans.text
    assert c.passage.start <= c.start < c.end <= c.passage.end


@pytest.mark.parametrize(
    "question, fact, source",
    [
        ("What must Wrexham improve about carers' assessments?", "carers", WREXHAM),
        ("Is Wrexham children's services still inadequate?", "remain inadequate", WREXHAM),
        ("How many people responded to the survey for parents and carers of disabled children in Cardiff?", "65", CARDIFF),
        ("When will CIW re-inspect Wrexham?", "within 12 months", WREXHAM),
    ],
)
def test_answers_state_the_fact_and_cite_its_report(ask, question, fact, source, built_index, settings):
    from index import source_text

    ans = ask(question)
    assert not ans.abstained and fact in ans.text, ans.text
    assert ans.citations[0].source == source
    for c in ans.citations:
        assert f"[{c.n}]" in ans.text
        assert source_text(c.source, built_index, settings)[c.start : c.end] == c.quote


def test_comparison_answer_covers_both_councils(ask):
    ans = ask("How do Wrexham and Cardiff compare on staff supervision?")
    assert [line.split(":")[0] for line in ans.text.splitlines()] == ["Wrexham", "Cardiff"]
    assert {c.source for c in ans.citations} == {WREXHAM, CARDIFF}


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "How much did Cardiff Council spend on agency social workers in 2020?",
        # The report speaks of the CEO many times but never names them: a "who is" question wants a name.
        "Who is the chief executive of Wrexham?",
    ],
)
def test_questions_the_reports_do_not_answer_are_declined(ask, question):
    ans = ask(question)
    assert ans.abstained, ans.text
    assert ans.text.startswith("The reports do not say.")
    assert ans.citations == () and len(ans.passages) == 5


def test_follow_up_is_resolved_against_the_history(ask):
    first = ask("What must Wrexham improve about carers' assessments?")
    ans = ask("And in Cardiff?", history=[("What must Wrexham improve about carers' assessments?", first.text)])
    assert ans.resolved_question == "What must Cardiff improve about carers' assessments?"
    assert {c.source for c in ans.citations} == {CARDIFF}
    assert "carers" in ans.text


def test_bad_questions_raise_plain_errors(ask, settings):
    with pytest.raises(EmptyQuestionError):
        ask("   \n ")
    with pytest.raises(QuestionTooLongError) as exc:
        ask("why " * 400)
    assert str(exc.value) == f"The question is 1599 characters long, over the limit of {settings.max_question_chars}: shorten it to the point you want answered."


def test_langchain_retriever_and_chain(built_index, settings, embeddings):
    from rag import Answer, as_retriever, chain

    docs = as_retriever(built_index, k=3, settings=settings, embeddings=embeddings).invoke("occupational therapy waiting times in Wrexham")
    assert [d.metadata["source"] for d in docs] == [WREXHAM] * 3
    assert "occupational therapy" in docs[0].page_content.lower()
    ans = chain(built_index, settings=settings, embeddings=embeddings).invoke({"question": "How many case files were reviewed in Cardiff?"})
    assert isinstance(ans, Answer) and "50" in ans.text


def test_default_index_is_built_on_first_use(tmp_path, monkeypatch, embeddings):
    from rag import query
    from rag.settings import get_settings

    monkeypatch.setenv("AROLWG_INDEX_DIR", str(tmp_path / "auto"))
    ans = query("Is Wrexham children's services still inadequate?", settings=get_settings(), embeddings=embeddings)
    assert "inadequate" in ans.text
    assert (tmp_path / "auto" / "CURRENT").read_text() == "gen-000001"


def _cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_cli_ask_json(built_index):
    r = _cli("ask", "How many case files were reviewed in Cardiff?", "--json", "--index", str(built_index))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["abstained"] is False and "50" in data["text"]
    assert data["citations"][0]["source"] == CARDIFF


def test_cli_errors_are_one_sentence_without_traceback(tmp_path, built_index):
    r = _cli("ask", "  ", "--index", str(built_index))
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "arolwg: The question is empty: type a question about the inspection reports.\n")
    r = _cli("ask", "Who was inspected?", "--index", str(tmp_path / "missing"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("arolwg: There is no Arolwg index at")


def test_cli_help_explains_each_command():
    r = _cli("--help")
    assert r.returncode == 0
    for cmd in ("index", "ask", "eval", "chat"):
        assert cmd in r.stdout
    r = _cli("ask", "--help")
    assert "--json" in r.stdout and "--council" in r.stdout and "AROLWG_" in _cli("--help").stdout


def test_a_question_naming_no_council_stays_with_the_conversations_council(ask):
    history = [("Is Wrexham children's services still inadequate?", "...")]
    ans = ask("When will CIW come back?", history=history)
    assert ans.resolved_question == "When will CIW come back in Wrexham?"
    assert ans.passages and {p.source for p in ans.passages} == {WREXHAM}


def test_each_council_of_a_comparison_is_searched_as_deeply_as_one_council(built_index, settings, embeddings):
    from rag.api import get_store
    from rag.retrieval import retrieve_scoped

    store = get_store(built_index, settings=settings, embeddings=embeddings)
    r = retrieve_scoped(store, embeddings, "How do Wrexham and Cardiff compare on staff supervision?", k=5)
    assert [len(g) for g in r.groups] == [5, 5]
    assert [{p.source for p in g} for g in r.groups] == [{WREXHAM}, {CARDIFF}]
    # The list shown interleaves the councils and keeps to k passages.
    assert [p.source for p in r.passages] == [WREXHAM, CARDIFF, WREXHAM, CARDIFF, WREXHAM]


def test_an_answer_from_several_councils_says_whose_words_each_line_is(ask):
    ans = ask("What did the inspectors say about advocacy?")
    by_council = {"Wrexham": WREXHAM, "Cardiff": CARDIFF}
    lines = ans.text.splitlines()
    assert sorted(line.split(": ")[0] for line in lines) == ["Cardiff", "Wrexham"]
    for line in lines:
        council = line.split(": ")[0]
        # Every citation on a council's line quotes that council's report.
        cited = {c.source for c in ans.citations if f"[{c.n}]" in line}
        assert cited == {by_council[council]}, line
    # Numbering still follows reading order.
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert ans.text.index("[1]") < ans.text.index(f"[{len(ans.citations)}]")


def test_an_answer_from_one_named_council_has_no_label(ask):
    ans = ask("What did CIW find about advocacy in Wrexham?")
    assert not ans.abstained
    assert not ans.text.startswith(("Wrexham:", "Cardiff:"))
    assert {c.source for c in ans.citations} == {WREXHAM}


def test_a_council_filter_leaves_the_answer_unlabelled(ask):
    ans = ask("What did the inspectors say about advocacy?", filters={"authority": "Cardiff"})
    assert not ans.abstained
    assert not ans.text.startswith("Cardiff:")
    assert {c.source for c in ans.citations} == {CARDIFF}


def test_a_broad_question_lists_the_findings_under_the_reports_own_heading(ask, built_index, settings):
    from index import source_text

    ans = ask("What are the strengths of Wrexham adult services?")
    assert not ans.abstained and ans.score == 1.0
    # Every finding the report files under an adult services "Strengths" heading, in report order.
    assert [(c.source, c.section[0].split(":")[0], c.section[-1]) for c in ans.citations] == [
        (WREXHAM, "Adult Social Services", "Strengths")
    ] * 12
    assert [c.start for c in ans.citations] == sorted(c.start for c in ans.citations)
    for c in ans.citations:
        assert source_text(c.source, built_index, settings)[c.start : c.end] == c.quote
        assert f"- {' '.join(c.quote.split())} [{c.n}]" in ans.text.splitlines()
    assert ans.notice == 'Listed from the reports\' own "Strengths" headings: the first sentence of each finding (12).'


def test_a_long_outline_is_spread_over_every_area_and_says_what_it_left_out(ask):
    ans = ask("What are Wrexham's strengths?")
    assert len(ans.citations) == 16
    areas = {(c.section[0].split(":")[0], c.section[1]) for c in ans.citations}
    assert len(areas) == 8  # children's and adult services, four principles each
    assert "(16 of 29: name a service or a principle" in ans.notice


@pytest.mark.parametrize(
    "question",
    [
        "What must Wrexham improve about carers' assessments?",  # narrower than a section
        "What are Cardiff's strengths?",  # the Cardiff report is prose: no "Strengths" headings
        "What must Cardiff adult services improve?",  # nor service-area headings to narrow a list by
    ],
)
def test_questions_an_outline_does_not_answer_go_to_the_ordinary_answerer(ask, question):
    ans = ask(question)
    assert ans.notice == ""
    assert not any(line.startswith("- ") for line in ans.text.splitlines())


def test_a_report_without_improvement_headings_lists_its_must_and_should_sentences(ask, built_index, settings):
    from index import source_text

    ans = ask("What must Cardiff improve?")
    assert ans.notice.startswith('Listed from the report\'s "must" and "should" sentences')
    assert ans.citations and {c.source for c in ans.citations} == {CARDIFF}
    for c in ans.citations:
        assert re.search(r"\b(must|should)\b", c.quote), c.quote
        assert source_text(CARDIFF, built_index, settings)[c.start : c.end] == c.quote
    # Every "must"/"should" sentence outside the preamble is listed (12 in the Cardiff report).
    assert ans.notice.endswith("(12).") and len(ans.citations) == 12


def test_an_outline_over_two_councils_lists_each_in_its_own_words(ask):
    ans = ask("What needs to improve in each council?")
    heads = [line for line in ans.text.splitlines() if not line.startswith("- ")]
    assert {h.split(" › ")[0] for h in heads} == {"Cardiff", "Wrexham"}
    assert {c.source for c in ans.citations} == {CARDIFF, WREXHAM}
    assert sum(c.source == CARDIFF for c in ans.citations) == sum(c.source == WREXHAM for c in ans.citations) == 8


def test_the_default_index_chunked_by_an_older_arolwg_is_updated_on_first_use(tmp_path, monkeypatch, embeddings):
    from index import build_index
    from index.chunking import CHUNKER_VERSION
    from rag import query
    from rag.settings import get_settings

    monkeypatch.setenv("AROLWG_INDEX_DIR", str(tmp_path / "auto"))
    build_index(settings=get_settings(), embeddings=embeddings)
    make_outdated(tmp_path / "auto")
    ans = query("What type of inspection did CIW carry out in each council?", settings=get_settings(), embeddings=embeddings)
    assert (tmp_path / "auto" / "CURRENT").read_text() == "gen-000002"
    gen = json.loads((tmp_path / "auto" / "gen-000002" / "manifest.json").read_text())
    assert (gen["chunker"], sorted(gen["reports"])) == (CHUNKER_VERSION, [CARDIFF, WREXHAM])
    assert "Risk Based Inspection and Adults Services Performance Evaluation Inspection" in ans.text


def test_an_index_named_explicitly_is_never_changed_behind_the_users_back(tmp_path, embeddings, settings):
    import subprocess

    from index import build_index, list_reports
    from rag import query
    from rag.errors import OutdatedIndexError

    mine = tmp_path / "mine"
    build_index(index_dir=mine, settings=settings, embeddings=embeddings)
    make_outdated(mine)
    with pytest.raises(OutdatedIndexError) as exc:
        query("How many case files were reviewed in Cardiff?", index_dir=mine, settings=settings, embeddings=embeddings)
    assert str(exc.value) == (
        f"The index at {mine} was written by an older Arolwg: upgrade it with "
        f"`arolwg index --index {mine} --upgrade` (every report it holds is kept)."
    )
    assert (mine / "CURRENT").read_text() == "gen-000001"
    # The command the sentence gives upgrades it in place, keeping its reports.
    done = _cli("index", "--index", str(mine), "--upgrade")
    assert done.returncode == 0, done.stderr
    assert [r.report_id for r in list_reports(mine, settings)] == [CARDIFF, WREXHAM]
    ans = query("How many case files were reviewed in Cardiff?", index_dir=mine, settings=settings, embeddings=embeddings)
    assert "50 case files" in ans.text