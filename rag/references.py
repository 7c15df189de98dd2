"""Citations written out for a reader without Arolwg: report, council, date, page and quote.

What ``arolwg ask`` prints under an answer and what "Copy answer with sources" copies. Built from
the structured :class:`rag.types.Answer` and its citations (never from the answer's text), plus the
index's metadata of each report for its inspection dates.

>>> from rag.types import Answer, Citation, Passage
>>> p = Passage("c1", "ceredigion.pdf", "Inspection of Ceredigion social services", "Ceredigion County Council",
...             ("Prevention",), "x", 0, 40, 1.0, page=4, pages=(4, 4))
>>> c = Citation(1, p.source, p.title, p.authority, p.section, "Supervision is  not\\nrecorded.", 10, 38, p,
...              page=4, pages=(4, 4))
>>> print(reference(c, {"ceredigion.pdf": {"dates": "14-18 March 2022"}}))
[1] Inspection of Ceredigion social services (Ceredigion County Council, 14-18 March 2022) — Prevention, p. 4 — ceredigion.pdf
    “Supervision is not recorded.”
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rag.pages import page_label
from rag.types import Answer, Citation, Passage

Reports = Mapping[str, Any]  # report id -> its metadata (ReportInfo, ReportMeta or a dict with "dates")


def _dates(item: Citation | Passage, reports: Reports | None) -> str:
    """The report's inspection dates: the citation's own, else from the index's report metadata."""
    own = getattr(item, "dates", "")
    if own:
        return str(own)
    meta = (reports or {}).get(item.source)
    if meta is None:
        return ""
    return str((meta.get("dates") if isinstance(meta, Mapping) else getattr(meta, "dates", "")) or "")


def where(item: Citation | Passage, reports: Reports | None = None) -> str:
    """Which report, and where in it: "Title (Council, dates) — Section › Sub, p. 7 — file.pdf".

    The council and the dates are left out when the title already says them; the page is given
    for PDF reports only ("pp. 7-8" when the words run on to the next page).
    """
    title = item.title or item.source
    extra = [x for x in (item.authority, _dates(item, reports)) if x and x not in title]
    head = title + (f" ({', '.join(extra)})" if extra else "")
    place = ", ".join(x for x in (" \u203a ".join(s for s in item.section if s), page_label(item.pages)) if x)
    return " \u2014 ".join(x for x in (head, place, item.source) if x)


def as_read(quote: str) -> str:
    """A quote as a reader reads it: on one line, a word hyphenated at a line end (or a page
    end) joined again, as the answer shows it.

    >>> as_read("multi-agency safe-\\nguarding\\n\\f\\nmeetings")
    'multi-agency safeguarding meetings'
    """
    return " ".join(re.sub(r"(?<=[a-z])-[ \t]*\n\s*(?=[a-z])", "", quote).split())


def reference(c: Citation, reports: Reports | None = None) -> str:
    """One citation: ``[n]``, where its words are (:func:`where`), then the quote on its own line."""
    return f"[{c.n}] {where(c, reports)}\n    \u201c{as_read(c.quote)}\u201d"


def sources_text(answer: Answer, reports: Reports | None = None) -> str:
    """"Sources:" and every citation of an answer ("" when it has none)."""
    if not answer.citations or answer.abstained:
        return ""
    return "Sources:\n" + "\n".join(reference(c, reports) for c in answer.citations)


def answer_with_sources(answer: Answer, reports: Reports | None = None) -> str:
    """The answer as plain text with its citations, for an email, a paper or a committee report."""
    lines = [answer.text.strip()]
    if answer.notice:
        lines = [f"({answer.notice})", *lines]
    sources = sources_text(answer, reports)
    if sources:
        lines += ["", sources]
    return "\n".join(lines)
