"""PDF pages in citations (issue 14, items 1, 3 and 4): the page of every span survives cleaning,
real-looking PDFs (tests/ciw_pdf.py: running header and footer, page numbers, headings, numbered
findings, a hyphenated word, a sentence broken across a page break, a table) are cited at the right
pages with nothing of the page furniture in a quote, other formats have no pages, and the CLI and
"copy with sources" write citations a reader can follow without Arolwg."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import ciw_pdf
from index.chunking import chunk_report
from index.clean import clean_text, strip_page_furniture
from rag.pages import page_label, page_range

HEADER = "Care Inspectorate Wales | Inspection of Cardiff Council"


def page_of(text: str, offset: int) -> int:
    return text.count("\f", 0, offset) + 1


def furniture_free(quote: str) -> bool:
    """No running header, footer or page number of the fixture (or of the text below) in a quote."""
    flat = " ".join(quote.split())
    return not re.search(r"Arolygiaeth|CIW inspection report:|Page \d+ of \d+|Inspection of Cardiff Council\b", flat)


# A report's text as an older Arolwg stored it for a PDF: every page with its running header, a
# footer with its page number, and the damage the cleaner repairs.
PAGES = [
    f"{HEADER}\nIntroduction\nThis report sets out our findings about Cardiff Council's social services.\nPage 1 of 4",
    f"{HEADER}\nWell-being\nStrengths\n1. Managers are committed to improve-\nment of the service for carers.\n"
    "Inspectors found that the council's managers are currently\nPage 2 of 4",
    f"{HEADER}\nreviewing the arrangements for respite care in the city.\nThe duty team answers calls prom-\nPage 3 of 4",
    f"{HEADER}\nptly and refers people on the same day.\n2. Advocacy is offered to every child.\nPage 4 of 4",
]
SOURCE = "\n\f\n".join(PAGES)


def sentences_of(source: str, report_id: str = "r.pdf"):
    return chunk_report(report_id, clean_text(source))[1]


# ---------------------------------------------------------------- the page mapping, unit by unit


def test_page_range_is_for_pdfs_only():
    text = "one\n\f\ntwo\n\f\nthree"
    assert page_range("a.pdf", text, 0, 3) == (1, 1)
    assert page_range("A REPORT.PDF", text, text.index("two"), len(text)) == (2, 3)
    for other in ("a.docx", "a.html", "a.htm", "a.txt", "a.md"):
        assert page_range(other, text, 0, len(text)) is None  # form feeds or not, no pages
    assert page_range("a.pdf", lambda: text, 8, 8) == (2, 2)  # an empty span: the page it is at
    assert (page_label((7, 7)), page_label((7, 8)), page_label(None)) == ("p. 7", "pp. 7-8", "")


def test_every_cleaned_character_keeps_its_page():
    m = clean_text(SOURCE)
    assert HEADER not in m.text and "Page 2 of 4" not in m.text  # header and footer are gone
    for i, ch in enumerate(m.text):
        src = m.pos[i]
        if not ch.isspace():
            # A kept character maps to itself in the source, so to its own page.
            assert SOURCE[src] == ch, (i, ch, SOURCE[src])


def test_header_and_footer_removal_keeps_pages():
    sents = {s.text: s for s in sentences_of(SOURCE)}
    intro = sents["This report sets out our findings about Cardiff Council's social services."]
    assert page_range("r.pdf", SOURCE, intro.start, intro.end) == (1, 1)
    advocacy = sents["Advocacy is offered to every child."]
    assert page_range("r.pdf", SOURCE, advocacy.start, advocacy.end) == (4, 4)
    assert SOURCE[advocacy.start : advocacy.end] == "Advocacy is offered to every child."


def test_dehyphenation_keeps_pages():
    sents = {s.text: s for s in sentences_of(SOURCE)}
    # Within a page: "improve-\nment" is one word, on page 2.
    s = sents["Managers are committed to improvement of the service for carers."]
    assert page_range("r.pdf", SOURCE, s.start, s.end) == (2, 2)
    assert SOURCE[s.start : s.end] == "Managers are committed to improve-\nment of the service for carers."
    # Across a page break: "prom-" ends page 3, "ptly" starts page 4, the sentence spans both.
    s = sents["The duty team answers calls promptly and refers people on the same day."]
    assert page_range("r.pdf", SOURCE, s.start, s.end) == (3, 4)
    assert page_of(SOURCE, s.start) == 3 and page_of(SOURCE, s.end - 1) == 4


def test_sentence_joined_across_a_page_break_spans_both_pages():
    sents = {s.text: s for s in sentences_of(SOURCE)}
    s = sents["Inspectors found that the council's managers are currently reviewing the arrangements for respite care in the city."]
    assert page_range("r.pdf", SOURCE, s.start, s.end) == (2, 3)
    assert SOURCE[s.start : s.end].startswith("Inspectors found") and SOURCE[s.start : s.end].endswith("in the city.")


def test_footers_numbered_differently_on_each_page_are_recognised():
    # "Page 2 of 4" and "Page 3 of 4" are one running footer, whatever its number.
    pages = [p.replace("Page", "Cardiff Council inspection report - Page") for p in PAGES]
    assert "inspection report" not in clean_text("\n\f\n".join(pages)).text


def test_pdf_pages_lose_their_furniture_at_their_edges_only():
    pages = [
        "Title of the report\nA test fixture.",  # a title page, no header
        "Running head\nA table of counts:\nCase files 41\n17\nFooter text - Page 2",
        "Running head\nBody two.\nFooter text - Page 3",
        "Running head\nBody three.\n4",
    ]
    out = strip_page_furniture(pages)
    assert out[0] == pages[0]
    assert out[1] == "A table of counts:\nCase files 41\n17"  # a number inside the page stays
    assert out[2:] == ["Body two.", "Body three."]


# ---------------------------------------------------------------- a real-looking PDF


@pytest.fixture(scope="module")
def pdf_facts(tmp_path_factory) -> ciw_pdf.ReportFacts:
    folder = tmp_path_factory.mktemp("pdf-report")
    return ciw_pdf.make_ciw_pdf(folder / "ceredigion-2022.pdf")


def test_the_fixture_looks_like_a_ciw_pdf(pdf_facts):
    # What pypdf reads from it: header and footer (numbered) on every page, the broken sentence
    # cut between pages 4 and 5, and the finding and the table where the tests expect them.
    assert len(pdf_facts.page_texts) == 6
    for n, text in enumerate(pdf_facts.page_texts, 1):
        assert ciw_pdf.HEADER in text and f"Page {n} of 6" in text
    assert pdf_facts.pages_of(ciw_pdf.BROKEN_SENTENCE) == (4, 5)
    assert pdf_facts.pages_of(ciw_pdf.FINDING) == (4, 4)
    assert "Foster carers surveyed 17" in pdf_facts.page_texts[5]


def test_pdf_source_text_has_pages_and_no_furniture(pdf_facts):
    from index.load import load_file

    text = load_file(pdf_facts.path).source_text
    assert text.count("\f") == 5
    assert furniture_free(text)
    at = text.index("Supervision of social workers")
    assert page_of(text, at) == pdf_facts.pages_of(ciw_pdf.FINDING)[0]
    # The broken sentence: its halves on two pages, nothing but the page break between them.
    head = text.index(ciw_pdf.BROKEN_HEAD)
    tail = text.index(ciw_pdf.BROKEN_TAIL)
    assert text[head + len(ciw_pdf.BROKEN_HEAD) : tail] == "\n\f\n"
    assert (page_of(text, head), page_of(text, tail)) == (4, 5)


@pytest.fixture(scope="module")
def pdf_index(pdf_facts, tmp_path_factory, embeddings, settings):
    """An index of the fixture PDF, with the same kind of report as DOCX and HTML beside it."""
    import docx

    from index import build_index

    folder = pdf_facts.path.parent
    d = docx.Document()
    d.add_paragraph("Inspection of Torfaen County Borough Council social services")
    d.add_paragraph("Introduction")
    d.add_paragraph("Inspectors reviewed 23 case files in Pontypool and found that the duty team acted promptly.")
    d.save(folder / "torfaen.docx")
    (folder / "newport.html").write_text(
        "<html><body><main><h1>Newport City Council assurance check</h1><p>Newport City Council was inspected "
        "in June 2022. Inspectors found that the reablement service in Caerleon helped people return home from "
        "hospital quickly and safely.</p></main></body></html>"
    )
    index_dir = tmp_path_factory.mktemp("pdf-index")
    report = build_index(folder, index_dir, settings=settings, embeddings=embeddings)
    assert sorted(report.added) == ["ceredigion-2022.pdf", "newport.html", "torfaen.docx"], report.failed
    return index_dir


def ask(question, index_dir, embeddings, settings, **kw):
    from rag import query

    return query(question, index_dir=index_dir, settings=settings, embeddings=embeddings, **kw)


def test_no_quote_of_the_pdf_holds_its_header_footer_or_page_number(pdf_index, settings):
    from index.store import open_store

    store = open_store(pdf_index, settings)
    text = store.source_text("ceredigion-2022.pdf")
    spans = [(c.start, c.end) for c in store.chunks if c.report_id == "ceredigion-2022.pdf"]
    rows = {s for c in store.chunks if c.report_id == "ceredigion-2022.pdf" for s in store.sent_rows[c.id]}
    spans += [(store.gen.sentences[r].start, store.gen.sentences[r].end) for r in rows]
    assert len(spans) > 30
    for start, end in spans:
        assert furniture_free(text[start:end]), text[start:end]


def test_sentence_broken_across_a_page_break_is_one_citation_over_both_pages(pdf_index, embeddings, settings, pdf_facts):
    from rag.references import as_read

    ans = ask("Who has Ceredigion appointed to reduce the waiting list for adaptations to disabled adults' homes?",
              pdf_index, embeddings, settings)
    assert not ans.abstained
    c = next(c for c in ans.citations if "occupational therapists" in c.quote)
    assert as_read(c.quote) == ciw_pdf.BROKEN_SENTENCE  # one sentence, whole
    assert c.pages == pdf_facts.pages_of(ciw_pdf.BROKEN_SENTENCE) == (4, 5) and c.page == 4
    assert furniture_free(c.quote)
    assert ciw_pdf.BROKEN_SENTENCE in ans.text  # the answer reads it as one sentence too


def test_a_numbered_finding_is_cited_at_its_page(pdf_index, embeddings, settings, pdf_facts):
    ans = ask("What is not recorded consistently about supervision of social workers in Ceredigion?", pdf_index, embeddings, settings)
    c = ans.citations[0]
    assert c.quote == ciw_pdf.FINDING and c.source == "ceredigion-2022.pdf"
    assert (c.page, c.pages) == (pdf_facts.pages_of(ciw_pdf.FINDING)[0], pdf_facts.pages_of(ciw_pdf.FINDING))
    assert c.section == ("Children's services", "Prevention", "What needs to improve")
    assert c.passage.page == c.page and c.passage.pages[0] <= c.page <= c.passage.pages[1]


def test_a_hyphenated_word_is_found_and_cited_at_its_page(pdf_index, embeddings, settings, pdf_facts):
    ans = ask("What did managers say about multi-agency safeguarding meetings in Cardigan?", pdf_index, embeddings, settings)
    c = ans.citations[0]
    assert "safeguarding meetings in Cardigan" in ans.text
    assert c.pages == pdf_facts.pages_of(ciw_pdf.HYPHEN_HEAD + " " + ciw_pdf.HYPHEN_TAIL)


def test_table_cells_are_searchable(pdf_index, embeddings, settings, pdf_facts):
    from rag import retrieve

    for cell, value in ciw_pdf.TABLE[1:]:
        top = retrieve(f"{cell} in Ceredigion", k=3, index_dir=pdf_index, settings=settings, embeddings=embeddings)
        hit = next((p for p in top if f"{cell} {value}" in p.text), None)
        assert hit is not None, (cell, [p.text[:80] for p in top])
        assert hit.section == ("Method",) and hit.pages == (6, 6)
    ans = ask("How many foster carers were surveyed in Ceredigion?", pdf_index, embeddings, settings)
    assert "Foster carers surveyed 17" in ans.text and ans.citations[0].page == 6


def test_other_formats_have_no_pages(pdf_index, embeddings, settings):
    for question, source in (
        ("How many case files were reviewed in Pontypool?", "torfaen.docx"),
        ("What did inspectors find about the reablement service in Caerleon?", "newport.html"),
    ):
        ans = ask(question, pdf_index, embeddings, settings)
        cited = [c for c in ans.citations if c.source == source]
        assert cited, (question, ans.text)
        assert all(c.page is None and c.pages is None and c.passage.pages is None for c in cited)


# ---------------------------------------------------------------- the CLI and copied sources


def test_cli_prints_pages_and_a_followable_citation(pdf_index, capsys, monkeypatch):
    from rag.cli import main

    q = "What is not recorded consistently about supervision of social workers in Ceredigion?"
    assert main(["ask", q, "--index", str(pdf_index)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(ciw_pdf.FINDING + " [1]\n\nSources:\n[1] ")
    line, quote = out.split("Sources:\n", 1)[1].splitlines()[:2]
    # Title (with council and dates), section path and page, file; then the quote.
    assert "Ceredigion County Council" in line and "14-18 March 2022" in line
    assert "Children's services \u203a Prevention \u203a What needs to improve, p. 4" in line
    assert line.endswith("ceredigion-2022.pdf")
    assert quote == f"    \u201c{ciw_pdf.FINDING}\u201d"

    assert main(["ask", q, "--json", "--index", str(pdf_index)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["citations"][0]["page"], data["citations"][0]["pages"]) == (4, [4, 4])
    assert data["passages"][0]["pages"][0] >= 1


def test_cli_gives_pp_for_a_sentence_over_two_pages(pdf_index, capsys):
    from rag.cli import main

    assert main(["ask", "Who has Ceredigion appointed to reduce the waiting list for adaptations to disabled adults' homes?",
                 "--index", str(pdf_index)]) == 0
    out = capsys.readouterr().out
    assert "People - voice and choice, pp. 4-5" in out
    assert f"\u201c{ciw_pdf.BROKEN_SENTENCE}\u201d" in out


def test_copy_with_sources_names_report_council_date_page_and_quote(pdf_index, embeddings, settings):
    from index import list_reports
    from rag.references import answer_with_sources

    meta = {r.report_id: r for r in list_reports(pdf_index, settings=settings)}
    ans = ask("How many case files were reviewed in Pontypool?", pdf_index, embeddings, settings)
    text = answer_with_sources(ans, meta)
    body, sources = text.split("\n\nSources:\n")
    assert body == ans.text
    line, quote = sources.splitlines()[:2]
    # A DOCX: no page, but the council and (when detected) the dates; the file; the quote.
    assert "Torfaen County Borough Council" in line and "p. " not in line and line.endswith("torfaen.docx")
    assert quote.strip("\u201c\u201d ") == ans.citations[0].quote


def test_copy_uses_the_structured_citations_not_the_answer_text():
    from rag.references import answer_with_sources
    from rag.types import Answer, Citation, Passage

    p = Passage("c", "r.pdf", "Cardiff Council: risk based inspection", "Cardiff Council", ("Method",), "x", 0, 90, 1.0,
                page=7, pages=(7, 8))
    c = Citation(3, "r.pdf", p.title, p.authority, p.section, "We read\n\f\n50 files.", 10, 26, p, page=7, pages=(7, 8))
    ans = Answer("q", "Anything at all [9], even a wrong marker.", (c,), False)
    meta = {"r.pdf": {"dates": "23 November - 3 December 2020"}}
    assert answer_with_sources(ans, meta).split("\n\n")[1] == (
        "Sources:\n"
        "[3] Cardiff Council: risk based inspection (23 November - 3 December 2020) \u2014 Method, pp. 7-8 \u2014 r.pdf\n"
        "    \u201cWe read 50 files.\u201d"
    )


def test_answers_on_the_bundled_reports_have_no_pages(store, built_index, embeddings, settings):
    ans = ask("How many case files were reviewed in Cardiff?", built_index, embeddings, settings)
    assert ans.citations and all(c.page is None and c.pages is None for c in ans.citations)
    assert all(p.pages is None for p in ans.passages)
