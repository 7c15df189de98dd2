"""A real-looking CIW inspection report as a multi-page PDF, written by fpdf2, for the tests.

It has what published CIW PDFs have: a running header and a footer with the page number on every
page, a title page, a heading hierarchy (service area > principle > "Strengths" / "What needs to
improve"), numbered findings, a word hyphenated at a line end, a sentence broken across a page
break and a table. The council is real (the detector must recognise it) but the report is not:
every page says it is a test fixture, and no figure in it is a real one.

>>> facts = make_ciw_pdf(Path("/tmp/ceredigion.pdf"))  # doctest: +SKIP
>>> facts.pages_of(facts.broken_sentence)              # doctest: +SKIP
(3, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

COUNCIL = "Ceredigion County Council"
TITLE = "Inspection of Ceredigion County Council social services"
HEADER = "Care Inspectorate Wales | Arolygiaeth Gofal Cymru"
FOOTER = "CIW inspection report: Ceredigion County Council (test fixture) - Page {n} of {nb}"
DATES = "14-18 March 2022"

# The sentence cut by a page break: its first half ends page 3, its second half starts page 4.
BROKEN_HEAD = "The local authority has recently appointed a dedicated team of occupational therapists who"
BROKEN_TAIL = "are reducing the waiting list for adaptations to the homes of disabled adults in Aberaeron."
BROKEN_SENTENCE = f"{BROKEN_HEAD} {BROKEN_TAIL}"
# A numbered finding, and the page it is printed on.
FINDING = "Supervision of social workers in the Aberystwyth children's team is not recorded consistently."
# A word hyphenated at a line end ("safe-" / "guarding"), rejoined by cleaning.
HYPHEN_HEAD = "Managers described the arrangements for multi-agency safe-"
HYPHEN_TAIL = "guarding meetings in Cardigan as well established and timely."
# The table (Method, page 5): its cells must be searchable.
TABLE = (
    ("Evidence gathered", "Number"),
    ("Children's case files read", "41"),
    ("Foster carers surveyed", "17"),
    ("Hafan respite centre visits", "3"),
)
# Paragraphs that fill the page before the broken sentence, so that it ends the page.
FILLER = (
    "Carers in the north of the county said that respite care was harder to arrange than in the south, "
    "and several had waited more than a month for a short break.",
    "The first point of contact team answered most calls on the day and gave people clear information about "
    "community groups, day opportunities and the help available from third sector partners.",
    "Practitioners used the What Matters conversation well, and the records inspectors read showed that people's "
    "personal outcomes were written in their own words.",
    "Direct payments were offered to people at their assessment, although few people in rural areas found "
    "personal assistants to employ.",
    "Occupational therapy assessments were thorough, and people described the equipment they received as "
    "making daily life safer and easier.",
    "Reablement staff worked closely with the community health teams of Hywel Dda University Health Board, "
    "which helped people return home from hospital sooner.",
    "Advocacy was offered to people at safeguarding meetings, and the minutes inspectors read recorded their views.",
    "Social workers said their caseloads were manageable and that senior managers were visible and approachable.",
    "Care homes in the county reported a stable workforce, although domiciliary care providers struggled to "
    "recruit staff who could drive between remote villages.",
    "The local authority's quality assurance framework includes regular audits of adult case files, and the "
    "findings of those audits are reported to the corporate management team.",
    "People with learning disabilities spoke warmly of the supported employment scheme run with a local college.",
    "Safeguarding enquiries were completed within statutory timescales in the cases inspectors read.",
)


@dataclass(frozen=True)
class ReportFacts:
    """What the fixture holds, and where: for the tests' expectations."""

    path: Path
    page_texts: tuple[str, ...] = field(repr=False)  # pypdf's text of each page: the ground truth

    def pages_of(self, phrase: str) -> tuple[int, int]:
        """The first and last page (1-based) holding words of ``phrase``: its first and last five
        words are looked up in the PDF's own pages, as a reader would."""
        words = phrase.split()
        head, tail = " ".join(words[:5]), " ".join(words[-5:])

        def page_of(bit: str) -> int:
            for i, text in enumerate(self.page_texts, 1):
                if bit in " ".join(text.split()):
                    return i
            raise AssertionError(f"{bit!r} is on no page of {self.path.name}")

        return page_of(head), page_of(tail)


BODY: list[tuple[str, str]] = [
    # (kind, text): kind is h0/h1/h2 (heading levels), p (paragraph), n (numbered finding),
    # "break" (a new page), "broken" (the sentence cut by a page break), "hyphen", "table".
    ("h0", "Introduction"),
    ("p", "This report sets out the findings of the performance evaluation inspection of Ceredigion County Council "
          "social services carried out by Care Inspectorate Wales from 14 to 18 March 2022. It is a test fixture "
          "written for Arolwg's tests: the findings below are invented."),
    ("p", "Inspectors considered the experiences of people who need care and support and of carers, and how well the "
          "local authority meets its duties under the Social Services and Well-being (Wales) Act 2014."),
    ("break", ""),
    ("h0", "Children's services"),
    ("h1", "Well-being"),
    ("h2", "Strengths"),
    ("n", "1. Children and young people told inspectors that their social workers listened to them and visited them regularly."),
    ("n", "2. The Teulu Cryf family support service in Lampeter offers help quickly, often within two working days of a referral."),
    ("h2", "What needs to improve"),
    ("n", "3. Care and support plans for children looked after do not always record the child's own views and wishes."),
    ("p", "Inspectors read the plans of children placed with foster carers outside the county and found the same gaps "
          "in several of them, although the plans were reviewed on time."),
    ("break", ""),
    ("h1", "Prevention"),
    ("h2", "Strengths"),
    ("n", "4. Early help hubs in Aberystwyth and Cardigan give families advice before their needs become critical."),
    ("hyphen", ""),
    ("h2", "What needs to improve"),
    ("n", f"5. {FINDING} Team managers agreed that reflective supervision had lapsed during the winter."),
    ("n", "6. Return home interviews for young people who go missing are not always offered within 72 hours."),
    ("h0", "Adult services"),
    ("h1", "People - voice and choice"),
    ("p", "People who use adult services said they were treated with dignity and that staff spoke with them in Welsh "
          "when they asked to. Carers praised the information they were given at the first point of contact."),
    ("broken", ""),
    ("p", "Waiting times fell from nine months to four months between April 2021 and February 2022."),
    ("h2", "What needs to improve"),
    ("n", "7. The local authority should make sure that every carer is offered an assessment of their own needs."),
    ("break", ""),
    ("h0", "Method"),
    ("p", "Inspectors gathered the following evidence during the inspection week:"),
    ("table", ""),
    ("p", "Inspectors also met the Director of Social Services, senior managers and elected members."),
    ("h0", "Next steps"),
    ("p", "Care Inspectorate Wales will monitor the local authority's progress through its usual performance review "
          "meetings with Ceredigion County Council."),
]


def make_ciw_pdf(path: Path) -> ReportFacts:
    """Write the fixture to ``path``; returns what it holds and, from pypdf, each page's text."""
    from fpdf import FPDF
    from pypdf import PdfReader

    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=22)
    pdf.alias_nb_pages()
    pdf.set_margins(20, 15, 20)

    def header() -> None:
        pdf.set_font("Helvetica", "I", 8)
        pdf.cell(0, 6, HEADER, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)

    def footer() -> None:
        pdf.set_y(-15)
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 8, FOOTER.format(n=pdf.page_no(), nb="{nb}"), align="C")

    pdf.header = header
    pdf.footer = footer

    # Title page
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.ln(30)
    pdf.multi_cell(0, 10, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=13)
    pdf.ln(6)
    pdf.multi_cell(0, 7, f"Performance evaluation inspection, {DATES}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(0, 7, "Published by Care Inspectorate Wales. A test fixture: not a real report.", new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()

    def para(text: str, size: int = 11, style: str = "", after: float = 3) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(after)

    for kind, text in BODY:
        if kind == "h0":
            para(text, 16, "B", 2)
        elif kind == "h1":
            para(text, 13, "B", 2)
        elif kind == "h2":
            para(text, 11, "B", 1)
        elif kind in ("p", "n"):
            para(text)
        elif kind == "break":
            pdf.add_page()
        elif kind == "hyphen":
            pdf.set_font("Helvetica", size=11)
            pdf.cell(0, 5.5, HYPHEN_HEAD, new_x="LMARGIN", new_y="NEXT")
            pdf.cell(0, 5.5, HYPHEN_TAIL, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif kind == "broken":
            # Fill the page to its last line, end it mid-sentence, and go on on the next page.
            pdf.set_font("Helvetica", size=11)
            fillers = iter(FILLER)
            while pdf.get_y() + 4 * 5.5 < pdf.page_break_trigger:
                pdf.multi_cell(0, 5.5, next(fillers), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            pdf.multi_cell(0, 5.5, BROKEN_HEAD, new_x="LMARGIN", new_y="NEXT")
            pdf.add_page()
            para(BROKEN_TAIL)
        elif kind == "table":
            pdf.set_font("Helvetica", size=11)
            with pdf.table(col_widths=(110, 40), width=150, text_align=("LEFT", "RIGHT"), first_row_as_headings=True) as table:
                for row in TABLE:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
            pdf.ln(4)
    pdf.output(str(path))
    reader = PdfReader(str(path))
    return ReportFacts(path=Path(path), page_texts=tuple(p.extract_text() or "" for p in reader.pages))
