"""How questions are read: council names and aliases, the inspectorate's name, what a "how many"
question counts; and how reports are split: lists stay with their lead-in line. Plus the
docstring examples of the core modules, run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

from conftest import CARDIFF, WREXHAM
from index.types import ReportMeta

REPORTS = {
    WREXHAM: ReportMeta(WREXHAM, "", "Wrexham County Borough Council", "", "", ""),
    CARDIFF: ReportMeta(CARDIFF, "", "Cardiff Council", "", "", ""),
}


@pytest.mark.parametrize(
    "question, labels, missing, text",
    [
        ("Can people in the Welsh capital talk to social workers?", ("Cardiff Council",), (), "Can people in talk to social workers?"),
        ("Is the capital city council helping older people?", ("Cardiff Council",), (), "Is helping older people?"),
        ("What about Wrecsam and Caerdydd?", ("Wrexham County Borough Council", "Cardiff Council"), (), "What about and ?"),
        ("What did CIW find in Abertawe?", ("",), ("Swansea Council",), "What did find in Abertawe?"),
        # "capital" alone is a care-charging word, not a place.
        ("What is the capital limit for care charges?", ("",), (), "What is the capital limit for care charges?"),
        ("What did Care Inspectorate Wales inspectors find about Wrexham carers?", ("Wrexham County Borough Council",), (), "What did find about carers?"),
        # With nothing else to search for, the inspectorate's name stays.
        ("What is CIW?", ("",), (), "What is CIW?"),
    ],
)
def test_questions_are_scoped_by_council_names_and_aliases(question, labels, missing, text):
    from rag.scope import scope_question

    s = scope_question(question, REPORTS)
    assert (s.labels, s.missing, s.text) == (labels, missing, text)


@pytest.mark.parametrize(
    "question, what",
    [
        ("How many staff supervision files did CIW review?", {"staff", "supervis", "file"}),
        ("How many children are looked after by the council?", {"children"}),
        ("How many social services employees responded to the survey?", {"social", "servic", "employe"}),
        ("How many complaints about children's services were there?", {"complaint"}),
        ("How many of those were interviewed?", set()),
        ("What did inspectors find?", set()),
    ],
)
def test_what_a_how_many_question_counts(question, what):
    from rag.answer import counted

    assert counted(question) == what


def test_a_count_must_be_of_what_was_asked_about():
    from rag.answer import counted, has_count

    files = counted("How many staff supervision files were reviewed?")
    assert [has_count(s, files) for s in ("We reviewed 9 staff supervision files.", "We reviewed 32 case files.", "Staff supervision files were reviewed.")] == [True, False, False]


def test_a_list_stays_with_the_line_that_leads_into_it():
    from index.chunking import chunk_report
    from index.clean import clean_text

    text = "Overview\n\nWe focused on:\n\n- 1) Keeping people safe.\n\n- 2) Early help for disabled children.\n\nThe council was cooperative.\n"
    chunks, _ = chunk_report("r.txt", clean_text(text), min_chars=10)
    assert [c.text for c in chunks] == [
        "We focused on:\n\n- 1) Keeping people safe.\n\n- 2) Early help for disabled children.",
        "The council was cooperative.",
    ]


def test_an_answer_that_restates_the_question_goes_on_to_the_next_sentence(built_index, settings, embeddings):
    from rag import query

    ans = query("What is Cardiff doing to safely reduce the number of looked after children?", index_dir=built_index, settings=settings, embeddings=embeddings)
    quotes = [c.quote for c in ans.citations]
    assert quotes[0] == "Safely reducing the number of children looked after is recognised as a priority by the local authority."
    assert len(quotes) >= 2 and quotes[1].startswith("The restructure of children's services to include early help")


@pytest.mark.parametrize("module", ["rag.scope", "rag.answer", "rag.outline", "index.meta", "index.text", "index.chunking"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert (result.failed, result.attempted > 0) == (0, True)


def test_the_index_keeps_the_reports_vocabulary_embedded(store, embeddings):
    import numpy as np

    from index.vocab import vocabulary

    gen = store.gen
    assert gen.vocab == vocabulary(c.text for c in gen.chunks)
    assert {"children", "hospital", "carers"} <= set(gen.vocab)
    assert gen.vocab_vecs.shape == (len(gen.vocab), 384)
    i = gen.vocab.index("hospital")
    assert np.allclose(gen.vocab_vecs[i], embeddings.encode(["hospital"])[0], atol=1e-5)


def test_embedding_the_vocabulary_reuses_vectors_already_made(embeddings):
    import numpy as np

    from index.vocab import embed_vocabulary

    asked: list[list[str]] = []

    def encode(ws):
        asked.append(list(ws))
        return embeddings.encode(ws)

    first = embed_vocabulary(["carers", "children"], encode)
    again = embed_vocabulary(["carers", "children", "hospital"], encode, dict(zip(["carers", "children"], first)))
    assert asked == [["carers", "children"], ["hospital"]]
    assert np.array_equal(again[:2], first) and again.shape == (3, 384)


def test_question_words_the_reports_never_use_are_bridged_to_theirs(store, embeddings):
    from index.vocab import bridge

    got = bridge("Do kids get seen at the infirmary quickly?", store.gen.vocab, store.gen.vocab_vecs, embeddings.encode)
    assert [(b.word, b.neighbours[0][0]) for b in got] == [("kids", "children"), ("infirmary", "hospital")]
    # Words the reports use are searched as they are, and nothing weak is bridged.
    assert bridge("What did inspectors find about carers?", store.gen.vocab, store.gen.vocab_vecs, embeddings.encode) == []
    assert all(s >= 0.6 for b in bridge("Were the quokkas fed?", store.gen.vocab, store.gen.vocab_vecs, embeddings.encode) for _, s in b.neighbours)


def test_retrieval_searches_the_bridged_words(built_index, settings, embeddings):
    from rag.retrieval import retrieve_scoped
    from index.store import open_store

    r = retrieve_scoped(open_store(built_index, settings), embeddings, "Are Wrexham kids in care listened to?", k=5)
    assert "children" in r.scope.bridged
    assert r.scope.search_text.startswith("Are kids in care listened to? ") and "children" in r.scope.search_text


def test_an_index_missing_its_vocabulary_says_so_and_an_update_restores_it(tmp_path, built_index, settings, embeddings):
    """Every generation writes its vocabulary: one without it is damaged, and repaired by a write."""
    import shutil

    import pytest

    from index import update_index
    from rag import query
    from rag.errors import IndexDamagedError

    copy = tmp_path / "old-index"
    shutil.copytree(built_index, copy)
    for f in copy.glob("gen-*/vocab*"):
        f.unlink()
    with pytest.raises(IndexDamagedError, match=r"its vocabulary files cannot be read"):
        query("How many case files were reviewed in Cardiff?", index_dir=copy, settings=settings, embeddings=embeddings)
    update_index(copy, settings=settings, embeddings=embeddings)
    ans = query("How many case files were reviewed in Cardiff?", index_dir=copy, settings=settings, embeddings=embeddings)
    assert "50 case files" in ans.text


def test_words_about_the_form_of_a_question_are_not_bridged(store, embeddings):
    from index.vocab import bridge

    assert bridge("How do the two councils compare; how does one compare with the other?", store.gen.vocab, store.gen.vocab_vecs, embeddings.encode) == []


def test_a_name_is_two_capitalised_words_the_reports_never_write_in_lower_case(store):
    from rag.answer import has_name

    common = store.common_stems()
    sentences = [
        "Safeguarding team have a good working relationship with Betsi Cadwaladr University Health Board colleagues.",
        "The breadth of work undertaken by the Chief Executive Officer (CEO) is commendable.",
        "In February 2020, Care Inspectorate Wales met with Wrexham County Borough Council.",
        "The council appointed Gwenllian Prydderch as interim director.",
    ]
    assert [has_name(s, common) for s in sentences] == [True, False, False, True]


def test_asking_for_a_name_the_reports_do_not_give_is_declined(built_index, settings, embeddings):
    from rag import query

    ans = query("What is the name of Cardiff's cabinet member for children's services?", index_dir=built_index, settings=settings, embeddings=embeddings)
    assert (ans.abstained, ans.citations) == (True, ())


@pytest.mark.parametrize(
    "question, text",
    [
        ("How do the two councils compare on carers' assessments?", "How do compare on carers' assessments?"),
        ("What do both reports say about hospital discharge?", "What do say about hospital discharge?"),
        ("What type of inspection did CIW carry out in each council?", "What type of inspection did carry out ?"),
    ],
)
def test_each_council_is_a_comparison_of_every_council_indexed(question, text):
    from rag.scope import scope_question

    s = scope_question(question, REPORTS)
    assert (s.groups, s.labels, s.text) == (((CARDIFF,), (WREXHAM,)), ("Cardiff Council", "Wrexham County Borough Council"), text)
    # Filtered to one council, there is nothing to compare.
    assert scope_question(question, REPORTS, {"authority": "Cardiff"}).groups == ((CARDIFF,),)


def _two_reports():
    return {r: ReportMeta(r, "", a, "", "", "") for r, a in [("w", "Wrexham County Borough Council"), ("c", "Cardiff Council")]}


@pytest.mark.parametrize(
    "question, history, resolved",
    [
        # A question naming no council stays with the conversation's latest council(s).
        ("When will CIW come back?", ["Is Wrexham children's services still inadequate?"], "When will CIW come back in Wrexham?"),
        ("When will CIW come back?", ["How do Wrexham and Cardiff compare on supervision?", "And for adults?"],
         "When will CIW come back in Wrexham and Cardiff?"),
        # Naming a council, or every council, starts afresh.
        ("What did CIW find about supervision in Cardiff?", ["What must Wrexham improve?"], "What did CIW find about supervision in Cardiff?"),
        ("What did each council find about supervision?", ["What must Wrexham improve?"], "What did each council find about supervision?"),
        ("When will CIW come back?", ["How do the two councils compare on supervision?"], "When will CIW come back?"),
        # Follow-ups: every council, and a council no report covers, replace the earlier one.
        ("And in each council?", ["What must Wrexham improve about carers' assessments?"],
         "What must improve about carers' assessments in each council?"),
        ("And in each council?", ["How many case files were reviewed in Wrexham?"], "How many case files were reviewed in each council?"),
        # ... but each inspection is of the conversation's council (rag.scope sets its reports side by side).
        ("And in each inspection?", ["How many case files were reviewed in Wrexham?"],
         "How many case files were reviewed in Wrexham in each inspection?"),
        ("What about Swansea?", ["What must Wrexham improve about carers' assessments?"],
         "What must Swansea improve about carers' assessments?"),
    ],
)
def test_questions_are_resolved_against_the_conversation(question, history, resolved):
    from rag.followup import resolve

    assert resolve(question, [(q, "...") for q in history], _two_reports()) == resolved


def test_a_conversation_about_a_council_no_report_covers_stays_with_it():
    from rag.followup import resolve

    assert resolve("When will CIW come back?", [("What did CIW find in Swansea?", "...")], _two_reports()) == (
        "When will CIW come back in Swansea?"
    )
