"""The web chat's handlers and rendering, called directly on the real model and a real index."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from rag.types import Answer, Citation, Passage
from ui import handlers as H
from ui import render

from conftest import NEW_REPORT, REPORTS, WREXHAM, make_outdated

REPO = Path(__file__).resolve().parent.parent
CARDIFF = "ciw-cardiff-2020-12.txt"
WREXHAM = "ciw-wrexham-2020-10.txt"
CASE_FILES_Q = "How many case files were reviewed in the Cardiff inspection?"
CASE_FILES_QUOTE = (
    "In total we reviewed 50 case files and followed 14 of these with interviews with social workers and family members."
)
BUDGET_Q = "What is Wrexham County Borough Council's total social services budget?"


@pytest.fixture(scope="module")
def engine(built_index, embeddings):
    return H.Engine(index_dir=built_index, embeddings=embeddings)


@pytest.fixture
def writable_engine(built_index, embeddings, tmp_path):
    """An engine over a private copy of the index, so adding and removing reports is safe."""
    copy = tmp_path / "index"
    shutil.copytree(built_index, copy)
    return H.Engine(index_dir=copy, embeddings=embeddings)


def run_ask(engine, question, state=None, options=H.AskOptions(), **kw):
    updates = list(H.ask(engine, question, state or H.ChatState(), options, pace=0, **kw))
    return updates, updates[-1]


# ---------------------------------------------------------------- rendering


def _passage(start=0, end=60, text="", source="r.txt", section=("Summary", "Well-being")):
    return Passage("c1", source, "A <report>", "Cardiff Council", section, text, start, end, 1.0, 0.5)


def test_excerpt_highlights_the_exact_span_and_escapes_html():
    source = "Intro. <b>Staff</b> feel safe & supported. Next line\nends here."
    p = _passage(0, len(source))
    start = source.index("<b>Staff</b>")
    end = source.index(" Next")
    c = Citation(1, "r.txt", "A <report>", "Cardiff Council", p.section, source[start:end], start, end, p)
    assert render.excerpt_html(source, p, c) == (
        "Intro. <mark>&lt;b&gt;Staff&lt;/b&gt; feel safe &amp; supported.</mark> Next line<br>ends here."
    )


def test_citations_sharing_a_passage_are_marked_in_one_card():
    source = "Intro. First point here. Middle. Second point here. End."
    p = _passage(0, len(source))

    def cite(n, quote):
        i = source.index(quote)
        return Citation(n, "r.txt", "A <report>", "Cardiff Council", p.section, quote, i, i + len(quote), p)

    c1, c2 = cite(1, "Second point here."), cite(2, "First point here.")
    out = render.sources_html([c1, c2], 2, lambda s: source)
    assert out.count('class="arolwg-src"') == 1
    assert (
        '<div class="arolwg-excerpt">Intro. <mark id="arolwg-src-2-2">First point here.</mark>'
        '<sup class="arolwg-mark-n">2</sup> Middle. <mark id="arolwg-src-2-1">Second point here.</mark>'
        '<sup class="arolwg-mark-n">1</sup> End.</div>'
    ) in out
    assert '<span class="arolwg-n">1</span><span class="arolwg-n">2</span><span class="arolwg-title">A &lt;report&gt;</span>' in out
    assert '<span class="arolwg-council">Cardiff Council</span><span class="arolwg-path">Summary \u203a Well-being</span>' in out
    assert out.startswith('<details class="arolwg-sources" open><summary>Sources (2)</summary>')


def test_excerpt_falls_back_to_the_passage_text_without_source():
    p = _passage(text="Before. The quote here. After.")
    c = Citation(1, "r.txt", "t", "a", (), "The quote here.", 10, 25, p)
    assert render.excerpt_html(None, p, c) == "Before. <mark>The quote here.</mark> After."


def test_long_context_is_trimmed_but_the_quote_is_whole():
    source = "word " * 400 + "THE QUOTE." + " tail" * 400
    start = source.index("THE QUOTE.")
    p = _passage(0, len(source))
    c = Citation(1, "r.txt", "t", "a", (), "THE QUOTE.", start, start + 10, p)
    out = render.excerpt_html(source, p, c)
    assert "<mark>THE QUOTE.</mark>" in out
    assert out.startswith("\u2026") and out.endswith("\u2026")
    assert len(out) < 2 * render.MAX_CONTEXT + 40


def test_markers_become_links_to_their_source_cards():
    assert render.link_markers("A [1] <i>b</i> [2] [7]", 3, known=[1, 2]) == (
        'A <a class="arolwg-cite" href="#arolwg-src-3-1" title="Source 1">[1]</a> &lt;i&gt;b&lt;/i&gt; '
        '<a class="arolwg-cite" href="#arolwg-src-3-2" title="Source 2">[2]</a> [7]'
    )


@pytest.mark.parametrize(
    "text",
    ["", "One.", "One [1]. Two? Three!", "Mr. Smith said \u201cno.\u201d Then left [2]. ", "no end"],
)
def test_streaming_pieces_join_back_to_the_text(text):
    pieces = render.split_for_streaming(text)
    assert "".join(pieces) == text
    assert all(pieces)


def test_split_is_by_sentence():
    assert render.split_for_streaming("One [1]. Two? Three") == ["One [1]. ", "Two? ", "Three"]


def test_plain_copy_has_the_answer_and_every_citation():
    p = _passage(text="x")
    c1 = Citation(1, "r.txt", "A report", "Cardiff Council", ("Summary", "Well-being"), "Staff  feel\nsafe.", 0, 16, p)
    c2 = Citation(2, "w.txt", "Wrexham County Borough Council: report", "Wrexham County Borough Council", (), "Yes.", 0, 4, p)
    ans = Answer("q", "Staff feel safe. [1] Yes. [2]", (c1, c2), False)
    # Each citation: where its words are (title, council and dates unless the title has them,
    # section path, page for a PDF, file), then the quote on its own line.
    assert render.answer_plain(ans, {"r.txt": {"dates": "May 2022"}}) == (
        "Staff feel safe. [1] Yes. [2]\n\nSources:\n"
        "[1] A report (Cardiff Council, May 2022) \u2014 Summary \u203a Well-being \u2014 r.txt\n"
        "    \u201cStaff feel safe.\u201d\n"
        "[2] Wrexham County Borough Council: report \u2014 w.txt\n"
        "    \u201cYes.\u201d"
    )


def test_source_card_shows_pages_beside_the_path_and_links_the_pdf_at_its_page():
    source = "First page.\n\f\nWe read 50 files and\n\f\nmet 14 families. Next."
    p = Passage("c1", "my report (2).pdf", "A report", "Cardiff Council", ("Method",), "x", 0, len(source), 1.0,
                page=1, pages=(1, 3))
    start, end = source.index("We read"), source.index(" Next")
    c = Citation(1, p.source, p.title, p.authority, p.section, source[start:end], start, end, p, page=2, pages=(2, 3))
    out = render.sources_html([c], 1, lambda s: source, lambda rid: True)
    assert '<span class="arolwg-path">Method</span><span class="arolwg-page">pp. 2-3</span>' in out
    assert ('<a class="arolwg-open" href="original/my%20report%20%282%29.pdf#page=2" target="_blank" rel="noopener">'
            "Open the PDF at pp. 2-3 \u2197</a>") in out
    # No copy kept (or no way to know): no link, the page still shows.
    for has in (None, lambda rid: False):
        out = render.sources_html([c], 1, lambda s: source, has)
        assert "arolwg-open" not in out and "pp. 2-3" in out


def test_source_card_of_other_formats_offers_the_original_as_a_download():
    p = _passage(0, 10, "Staff feel", source="w <1>.docx")
    c = Citation(1, p.source, p.title, p.authority, p.section, "Staff feel", 0, 10, p)
    out = render.sources_html([c], 1, lambda s: "Staff feel", lambda rid: True)
    assert '<a class="arolwg-open" href="original/w%20%3C1%3E.docx" download="w &lt;1&gt;.docx">Download the original (DOCX)</a>' in out
    assert "arolwg-page" not in out and "#page" not in out
    closest = render.closest_html([p], 1, lambda s: "Staff feel", lambda rid: True)
    assert 'href="original/w%20%3C1%3E.docx"' in closest


def test_reports_table_links_each_original_for_download():
    class R:
        report_id, title, authority, kind, dates, n_chunks = "a b.pdf", "T", "Cardiff Council", "Risk", "2020", 7

    out = render.reports_table_html([R()], lambda rid: True)
    assert '<a class="arolwg-download" href="original/a%20b.pdf" download="a b.pdf"' in out
    assert "arolwg-download" not in render.reports_table_html([R()], lambda rid: False)


def test_original_route_serves_only_what_the_index_holds(engine, tmp_path):
    from ui.originals import original_response

    ok = original_response(engine, CARDIFF)
    assert ok.status_code == 200 and ok.media_type.startswith("text/plain")
    assert ok.headers["content-disposition"].startswith("attachment")  # never shown inline
    assert Path(ok.path).read_text(encoding="utf-8") == (REPORTS / CARDIFF).read_text(encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("not a report")
    for bad in ("nope.pdf", "../" + CARDIFF, str(outside), "/etc/passwd", ""):
        assert original_response(engine, bad).status_code == 404


def test_reports_table_escapes_and_totals():
    class R:
        report_id, title, authority, kind, dates, n_chunks = "a<b>.txt", "T & co", "Cardiff Council", "Risk", "2020", 7

    out = render.reports_table_html([R()])
    assert "T &amp; co" in out and "a&lt;b&gt;.txt" in out and "<b>" not in out
    assert "1 report, 7 passages indexed." in out
    assert "No reports are indexed yet" in render.reports_table_html([])


# ---------------------------------------------------------------- answers, real index


def test_answer_renders_every_citation_highlighted_in_its_passage(engine):
    ans = engine.ask(CASE_FILES_Q)
    assert not ans.abstained and ans.citations
    out = render.answer_html(ans, 4, engine.source_text)
    assert "\n" not in out  # one line: the chat's Markdown must not reflow it
    marks = dict(re.findall(r'<mark id="arolwg-src-4-(\d+)">(.*?)</mark>', out))
    assert marks == {str(c.n): render.esc(c.quote) for c in ans.citations}
    for c in ans.citations:
        assert f'href="#arolwg-src-4-{c.n}"' in out
        assert html.escape(render.heading_path(c.section)) in out
        assert html.escape(c.title) in out
        assert engine.source_text(c.source)[c.start : c.end] == c.quote
    # Each card shows its passage's own source text around the quotes, verbatim.
    cards = re.findall(r'<div class="arolwg-excerpt">(.*?)</div>', out)
    assert 1 <= len(cards) <= len(ans.citations)
    source = render.esc(engine.source_text(CARDIFF))
    for card in cards:
        plain = re.sub(r'<sup class="arolwg-mark-n">\d+</sup>|</?mark[^>]*>', "", card).strip("\u2026")
        assert plain in source
    assert CASE_FILES_QUOTE in [c.quote for c in ans.citations]


def test_abstention_is_shown_as_such_with_the_closest_passages(engine):
    ans = engine.ask(BUDGET_Q)
    assert ans.abstained and ans.passages
    out = render.answer_html(ans, 1, engine.source_text)
    assert "Not in the reports" in out
    assert f"Closest passages found ({len(ans.passages)})" in out
    assert out.count('class="arolwg-src arolwg-near"') == len(ans.passages)
    assert "<mark" not in out  # nothing was cited, so nothing is highlighted


def test_ask_streams_then_shows_the_answer_with_sources(engine):
    updates, last = run_ask(engine, "  " + CASE_FILES_Q + " ")
    first = updates[0]
    assert [m["role"] for m in first.messages] == ["user", "assistant"]
    assert html.escape(CASE_FILES_Q, quote=True) in first.messages[0]["content"]
    assert "Searching the reports" in first.messages[1]["content"]
    assert first.state == H.ChatState()  # the state changes only once the answer is complete

    ans = engine.ask(CASE_FILES_Q)
    streaming = [u for u in updates if "arolwg-streaming" in u.messages[-1]["content"]]
    assert len(streaming) >= 2
    assert last.messages[-1]["content"] == render.answer_html(ans, 1, engine.source_text, engine.has_original)
    # The card links the report's original, which the index keeps (a text file: a download).
    assert f'href="original/{CARDIFF}" download="{CARDIFF}">Download the original (TXT)</a>' in last.messages[-1]["content"]
    assert last.state.history == ((CASE_FILES_Q, ans.text),)
    assert last.copy_text == render.answer_plain(ans, engine.report_meta())
    assert "23 November - 3 December 2020" in last.copy_text and CASE_FILES_QUOTE in last.copy_text
    assert last.state.copies == (last.copy_text,)
    assert last.warning == ""


def test_extractive_answer_arrives_sentence_by_sentence(engine):
    question = "How do the two councils compare on carers' assessments?"
    ans = engine.ask(question)
    sentences = render.split_for_streaming(ans.text)
    assert len(sentences) >= 2
    updates, _ = run_ask(engine, question)
    shown = [
        # A council's line ends in <br>: read it back as the newline it stands for.
        re.sub(r"<[^>]+>", "", u.messages[-1]["content"].replace("<br>", "\n"))
        for u in updates
        if "arolwg-streaming" in u.messages[-1]["content"]
    ]
    expected = [html.escape("".join(sentences[: i + 1]), quote=True) for i in range(len(sentences))]
    assert shown[-len(expected) :] == expected


def test_llm_tokens_stream_as_they_arrive(engine):
    """A fake LLM stream on top of the real query(): each token shows up as it comes."""
    from rag import query

    tokens = ["In total ", "we reviewed ", "50 case files ", "[1]."]

    def streaming_query(question, on_token=None, **kw):
        ans = query(question, **kw)
        for t in tokens:
            time.sleep(0.08)
            on_token(t)
        return ans

    eng = H.Engine(index_dir=engine.index_dir, embeddings=engine.embeddings, query_fn=streaming_query)
    updates, last = run_ask(eng, CASE_FILES_Q)
    partial = [re.sub(r"<[^>]+>", "", u.messages[-1]["content"]) for u in updates[1:-1]]
    assert partial == ["In total ", "In total we reviewed ", "In total we reviewed 50 case files ",
                       "In total we reviewed 50 case files [1]."]
    assert '<mark id="arolwg-src-1-1">' in last.messages[-1]["content"]


def test_follow_up_uses_the_conversation(engine):
    _, first = run_ask(engine, CASE_FILES_Q)
    _, second = run_ask(engine, "How many of those were followed up with interviews?", first.state)
    assert len(second.state.history) == 2 and len(second.messages) == 4
    assert second.messages[:2] == first.messages
    assert "14" in second.state.history[1][1]
    assert "Understood as:" in second.messages[-1]["content"]
    # Without the conversation, the same words give a different reading.
    _, alone = run_ask(engine, "How many of those were followed up with interviews?")
    assert "Understood as:" not in alone.messages[-1]["content"]


def test_sessions_never_share_state(engine):
    a, b = H.ChatState(), H.ChatState()
    _, after_a = run_ask(engine, CASE_FILES_Q, a)
    assert a == H.ChatState() and b == H.ChatState()  # inputs are never changed in place
    _, after_b = run_ask(engine, "When did CIW carry out its risk based inspection of Cardiff?", b)
    assert after_a.state.history[0][0] == CASE_FILES_Q
    assert [q for q, _ in after_b.state.history] == ["When did CIW carry out its risk based inspection of Cardiff?"]


def test_new_conversation_clears_everything():
    assert H.new_conversation() == (H.ChatState(), [], "")


def test_council_and_report_filters_narrow_the_sources(engine):
    question = "What must improve about supervision?"
    _, cardiff = run_ask(engine, question, options=H.AskOptions(council="Cardiff Council"))
    ans_c = engine.ask(question, filters={"authority": "Cardiff Council"})
    assert ans_c.citations and {c.source for c in ans_c.citations} == {CARDIFF}
    assert cardiff.messages[-1]["content"] == render.answer_html(ans_c, 1, engine.source_text, engine.has_original)

    options = H.AskOptions(council="Cardiff Council", report=WREXHAM)  # the report wins
    assert options.filters() == {"source": WREXHAM}
    ans_w = engine.ask(question, filters=options.filters())
    assert ans_w.citations and {c.source for c in ans_w.citations} == {WREXHAM}
    assert H.AskOptions().filters() is None


def test_filter_choices_come_from_the_index(engine):
    reports = engine.reports()
    assert H.council_choices(reports) == [
        ("All councils", ""),
        ("Cardiff Council", "Cardiff Council"),
        ("Wrexham County Borough Council", "Wrexham County Borough Council"),
    ]
    assert H.report_choices(reports, "Cardiff Council") == [
        ("All reports", ""),
        ("Cardiff Council: Risk based inspection (23 November - 3 December 2020)", CARDIFF),
    ]
    assert [v for _, v in H.report_choices(reports)] == ["", CARDIFF, WREXHAM]


# ---------------------------------------------------------------- errors are plain sentences


def test_empty_question_only_warns(engine):
    state = H.ChatState(messages=({"role": "user", "content": "x"},))
    updates = list(H.ask(engine, "   ", state))
    assert len(updates) == 1
    assert updates[0].state is state and updates[0].messages == list(state.messages)
    assert updates[0].warning == "Type a question about the inspection reports first."


def test_a_too_long_question_is_a_plain_sentence_in_the_chat(engine):
    from rag.errors import QuestionTooLongError

    question = "why " * 400
    _, last = run_ask(engine, question)
    expected = str(QuestionTooLongError(len(question.strip()), engine.settings.max_question_chars))
    assert last.warning == expected
    assert last.messages[-1]["content"] == render.error_html(expected)
    assert last.state.history == ()  # a failed question is not something to follow up on


def test_a_missing_index_is_explained(tmp_path, embeddings):
    from rag.errors import IndexMissingError

    eng = H.Engine(index_dir=tmp_path / "nowhere", embeddings=embeddings)
    _, last = run_ask(eng, CASE_FILES_Q)
    assert last.warning == str(IndexMissingError(tmp_path / "nowhere"))
    assert eng.reports() == []


def test_an_unexpected_failure_shows_no_traceback(caplog):
    def broken(*a, **k):
        raise RuntimeError("secret internals at 0xdeadbeef")

    eng = H.Engine(index_dir="/nonexistent", query_fn=broken, embeddings=object())
    _, last = run_ask(eng, "Anything?")
    assert last.warning == H.UNEXPECTED
    assert "deadbeef" not in last.messages[-1]["content"] and "Traceback" not in last.messages[-1]["content"]
    assert "secret internals" in caplog.text  # but the log has the details


# ---------------------------------------------------------------- reports tab




def test_upload_makes_a_report_searchable_at_once_and_remove_drops_it(writable_engine, tmp_path):
    eng = writable_engine
    before = {r.report_id for r in eng.reports()}
    path = tmp_path / "upload" / "ciw-powys-2021-03.txt"
    path.parent.mkdir()
    path.write_text(NEW_REPORT, encoding="utf-8")
    progress = []
    message = H.upload_reports(eng, [str(path)], progress=lambda d, t, m: progress.append((d, t, m)))
    assert message == "Added **ciw-powys-2021-03.txt**."
    assert progress and progress[-1][0] == progress[-1][1]
    reports = {r.report_id: r for r in eng.reports()}
    assert set(reports) == before | {"ciw-powys-2021-03.txt"}
    assert reports["ciw-powys-2021-03.txt"].authority == "Powys County Council"
    assert reports["ciw-powys-2021-03.txt"].n_chunks >= 1

    _, last = run_ask(eng, "Where did Powys open a new respite centre for disabled children?")
    assert "Llandrindod Wells" in last.copy_text
    assert "ciw-powys-2021-03.txt" in last.messages[-1]["content"]

    path.write_text(NEW_REPORT.replace("February 2021", "January 2021"), encoding="utf-8")
    # An upload never silently replaces a report: a new version is kept beside the indexed one,
    # and replacing it is removing the old one, then uploading the new.
    assert H.upload_reports(eng, [str(path)]).startswith(
        "Added **ciw-powys-2021-03 (2).txt**. **ciw-powys-2021-03.txt** has the same name as an indexed report"
    )
    assert H.remove_report(eng, "ciw-powys-2021-03 (2).txt") == "Removed **ciw-powys-2021-03 (2).txt**."
    assert H.remove_report(eng, "ciw-powys-2021-03.txt") == "Removed **ciw-powys-2021-03.txt**."
    assert H.upload_reports(eng, [str(path)]) == "Added **ciw-powys-2021-03.txt**."
    assert H.upload_reports(eng, [str(path)]) == "Already indexed and unchanged: ciw-powys-2021-03.txt."
    _, again = run_ask(eng, "When did Powys open a new respite centre for disabled children?")
    assert "January 2021" in again.copy_text and "February 2021" not in again.copy_text

    assert H.remove_report(eng, "ciw-powys-2021-03.txt") == "Removed **ciw-powys-2021-03.txt**."
    assert {r.report_id for r in eng.reports()} == before
    _, after = run_ask(eng, "Where did Powys open a new respite centre for disabled children?")
    assert "ciw-powys-2021-03.txt" not in after.messages[-1]["content"]
    assert H.remove_report(eng, "ciw-powys-2021-03.txt") == "**ciw-powys-2021-03.txt** is not in the index, so nothing was removed."


def test_a_bad_upload_gets_a_plain_message_and_changes_nothing(writable_engine, tmp_path):
    eng = writable_engine
    before = [(r.report_id, r.sha256, r.n_chunks) for r in eng.reports()]
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01\x02")
    message = H.upload_reports(eng, [str(bad)])
    assert message.startswith("**broken.pdf** was not added: ")
    assert "Traceback" not in message and message.endswith(".")
    assert [(r.report_id, r.sha256, r.n_chunks) for r in eng.reports()] == before
    _, last = run_ask(eng, CASE_FILES_Q)
    assert CASE_FILES_QUOTE in last.copy_text


def test_upload_and_remove_need_a_choice(engine):
    assert H.upload_reports(engine, []) == "Choose one or more report files (PDF, DOCX, TXT or HTML) first."
    assert H.upload_reports(engine, None) == "Choose one or more report files (PDF, DOCX, TXT or HTML) first."
    assert H.remove_report(engine, "") == "Pick a report to remove first."


# ---------------------------------------------------------------- evaluation tab


def test_evaluation_runs_on_an_uploaded_set_and_gives_a_table_and_chart(engine, tmp_path):
    lines = (REPO / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    picked = [json.loads(x) for x in lines if json.loads(x)["id"] in ("wx-fact-01", "wx-fact-03")]
    unanswerable = next(json.loads(x) for x in lines if json.loads(x)["kind"] == "unanswerable")
    qa = tmp_path / "mini.jsonl"
    qa.write_text("\n".join(json.dumps(x) for x in [*picked, unanswerable]) + "\n{not json\n", encoding="utf-8")
    calls = []
    out = H.run_evaluation(engine, str(qa), ["default"], progress=lambda d, t, m: calls.append((d, t)), out_dir=tmp_path / "out")
    assert out.message.startswith("Ran **default** on 3 questions (2 answerable)")
    assert "1 line of the Q&A set could not be used and was skipped." in out.message
    assert out.table.splitlines()[0] == "| metric | default |"
    assert "| recall@5 | " in out.table and "| fact accuracy | " in out.table
    assert "stage " not in out.table
    assert out.chart and Path(out.chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(Path(f).suffix for f in out.files) == [".json", ".md"]
    assert calls and calls[-1][0] == calls[-1][1]


def test_evaluation_needs_a_configuration(engine):
    assert H.run_evaluation(engine, None, []).message == "Pick at least one configuration to run."


# ---------------------------------------------------------------- app, settings, CLI


def test_build_app_does_no_heavy_work(tmp_path):
    from ui.app import build_app

    demo = build_app(index_dir=tmp_path / "not-built-yet")
    engine = demo.arolwg_engine
    assert engine._embeddings is None  # the model is loaded on first use, not at build time
    assert not (tmp_path / "not-built-yet").exists()
    names = {d.api_name for d in demo.fns.values() if d.api_name}
    assert {"ask", "new_conversation", "upload_reports", "remove_report", "set_report_dates", "clear_report_dates", "evaluate"} <= names


def test_llm_mode_is_offered_only_when_configured(tmp_path):
    from rag.settings import get_settings
    from ui.app import build_app

    def modes(settings):
        demo = build_app(settings, index_dir=tmp_path)
        radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "arolwg-mode")
        return [v for _, v in radio.choices]

    assert modes(get_settings()) == ["extractive"]
    assert modes(get_settings(llm="openai", llm_base_url="http://127.0.0.1:9")) == ["extractive", "llm"]


def test_auth_setting():
    from rag.errors import AuthSettingError
    from ui.app import launch_kwargs, parse_auth
    from rag.settings import get_settings

    assert parse_auth("ann:s3cret, bob:pa:ss") == [("ann", "s3cret"), ("bob", "pa:ss")]
    assert parse_auth("") is None and parse_auth(None) is None
    for bad in ("ann", ":pw", "ann:", "ann:pw,,"):
        with pytest.raises(AuthSettingError):
            parse_auth(bad)
    assert launch_kwargs(get_settings())["auth"] is None  # off by default
    assert launch_kwargs(get_settings(auth="ann:pw"))["auth"] == [("ann", "pw")]


def test_auth_from_the_environment(monkeypatch):
    from rag.settings import get_settings
    from ui.app import launch_kwargs

    monkeypatch.setenv("AROLWG_AUTH", "team:correct horse")
    assert launch_kwargs(get_settings())["auth"] == [("team", "correct horse")]


def test_cli_flags():
    from rag.cli import build_parser

    args = build_parser().parse_args(
        ["chat", "--host", "0.0.0.0", "--port", "8001", "--index", "/tmp/i", "--reports", "/tmp/r", "--auth", "a:b"]
    )
    assert (args.host, args.port, str(args.index), str(args.reports), args.auth) == ("0.0.0.0", 8001, "/tmp/i", "/tmp/r", "a:b")
    defaults = build_parser().parse_args(["chat"])
    assert (defaults.host, defaults.port, defaults.index, defaults.auth) == (None, None, None, None)


def test_cli_rejects_a_malformed_password_before_any_work(tmp_path, capsys):
    from rag.cli import main

    assert main(["chat", "--index", str(tmp_path / "i"), "--auth", "nopassword"]) == 2
    assert capsys.readouterr().err.strip() == (
        "arolwg: The web chat password setting (AROLWG_AUTH or --auth) is malformed: write it as "
        "user:password, with commas between several accounts."
    )
    assert not (tmp_path / "i").exists()


def test_ensure_index_builds_a_missing_index_once(tmp_path, embeddings):
    from index import list_reports
    from rag.settings import get_settings
    from ui.app import ensure_index

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "ciw-powys-2021-03.txt").write_text(NEW_REPORT, encoding="utf-8")
    settings = get_settings(reports_dir=reports, index_dir=tmp_path / "index")
    ensure_index(settings)
    infos = list_reports(settings.index_dir, settings=settings)
    assert [r.report_id for r in infos] == ["ciw-powys-2021-03.txt"]
    gen = (settings.index_dir / "CURRENT").read_text()
    ensure_index(settings)  # an existing index is left alone
    assert (settings.index_dir / "CURRENT").read_text() == gen


@pytest.mark.parametrize("question", H.EXAMPLES)
def test_every_example_offered_is_answered_by_the_bundled_reports(question, built_index, settings, embeddings):
    from rag import query

    ans = query(question, index_dir=built_index, settings=settings, embeddings=embeddings)
    assert not ans.abstained and ans.citations, ans.text


def test_ensure_index_brings_an_older_index_up_to_date_and_keeps_uploaded_reports(tmp_path, embeddings):
    from index import build_index, list_reports, source_text, update_index
    from index.chunking import CHUNKER_VERSION
    from rag.settings import get_settings
    from ui.app import ensure_index

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "ciw-powys-2021-03.txt").write_text(NEW_REPORT, encoding="utf-8")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copy(REPORTS / WREXHAM, uploads / WREXHAM)  # added through the Reports tab, not in the folder
    settings = get_settings(reports_dir=reports, index_dir=tmp_path / "index")
    build_index(settings=settings, embeddings=embeddings)
    update_index(add=[uploads / WREXHAM], settings=settings, embeddings=embeddings)
    shutil.rmtree(uploads)  # the uploaded file itself is gone; only the index holds it
    make_outdated(settings.index_dir)
    before = (settings.index_dir / "CURRENT").read_text()

    ensure_index(settings)

    assert (settings.index_dir / "CURRENT").read_text() != before
    gen = settings.index_dir / (settings.index_dir / "CURRENT").read_text().strip()
    assert json.loads((gen / "manifest.json").read_text())["chunker"] == CHUNKER_VERSION
    assert [r.report_id for r in list_reports(settings.index_dir, settings=settings)] == ["ciw-powys-2021-03.txt", WREXHAM]
    # Chunked afresh: the Wrexham title is one sentence now, its span still verbatim.
    from rag.api import get_store

    store = get_store(settings.index_dir, settings=settings, embeddings=embeddings)
    title = next(s for s in store.gen.sentences if s.text.startswith("Report of Children's Services Risk"))
    assert title.text == "Report of Children's Services Risk\nBased Inspection and\nAdults Services Performance\nEvaluation Inspection"
    assert source_text(WREXHAM, settings.index_dir, settings)[title.start : title.end] == (
        "Report of Children's Services Risk\nBased Inspection\nand\nAdults Services Performance\nEvaluation Inspection"
    )
