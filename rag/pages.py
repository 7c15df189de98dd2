"""The PDF pages a span of a report comes from.

A PDF's source text is its pages joined by a form feed (``index.load``), so the page of a source
offset is the number of form feeds before it, plus one. Other formats have no pages: DOCX, HTML,
Markdown and text give None, whatever characters their text holds.

>>> text = "Page one.\\n\\f\\nPage two runs\\n\\f\\non to three."
>>> page_range("r.pdf", text, 0, 9)
(1, 1)
>>> page_range("r.pdf", text, text.index("two"), text.index("three") + 5)
(2, 3)
>>> page_range("r.txt", text, 0, 9) is None
True
"""

from __future__ import annotations

from typing import Callable

PAGE_BREAK = "\f"


def has_pages(report_id: str) -> bool:
    """Whether a report's offsets have pages: it was read from a PDF (its id is its file name)."""
    return report_id.lower().endswith(".pdf")


def page_range(report_id: str, text: str | Callable[[], str], start: int, end: int) -> tuple[int, int] | None:
    """(first, last) page, 1-based, of the source span ``[start, end)`` of a PDF report; None for
    other formats. ``text`` is the report's source text, or a function giving it (only called
    for a PDF)."""
    if not has_pages(report_id):
        return None
    if callable(text):
        text = text()
    first = text.count(PAGE_BREAK, 0, start) + 1
    return first, first + text.count(PAGE_BREAK, start, max(start, end - 1))


def page_fields(report_id: str, text: str | Callable[[], str], start: int, end: int) -> dict:
    """``page`` (the first page) and ``pages`` ((first, last)) of a span, as keyword arguments of
    :class:`rag.types.Passage` and :class:`rag.types.Citation`; both None without pages."""
    pages = page_range(report_id, text, start, end)
    return {"page": pages[0] if pages else None, "pages": pages}


def page_label(pages: tuple[int, int] | None) -> str:
    """How a page range is cited: "p. 7", "pp. 7-8", or "" without pages.

    >>> page_label((7, 7)), page_label((7, 8)), page_label(None)
    ('p. 7', 'pp. 7-8', '')
    """
    if not pages:
        return ""
    first, last = pages
    return f"p. {first}" if first == last else f"pp. {first}-{last}"
