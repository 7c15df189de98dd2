"""HTML and plain-text rendering of answers, sources and reports for the web chat.

Pure functions of plain values, so they are tested without a server. Every piece of report or
user text goes through :func:`html.escape`; the only markup is the one written here.

The chat's Markdown renderer would reflow report text (a line "1) ..." becomes a list, a blank
line ends an HTML block), so each message is emitted as one line of HTML with no blank lines:
Markdown then leaves it alone.

>>> from rag.types import Passage, Citation, Answer
>>> p = Passage("c1", "r.txt", "A report", "Cardiff Council", ("Summary",), "x", 0, 23, 1.0)
>>> c = Citation(1, "r.txt", "A report", "Cardiff Council", ("Summary",), "Staff feel", 6, 16, p)
>>> excerpt_html("Most: Staff feel safe.", p, c)
'Most: <mark>Staff feel</mark> safe.'
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence

from rag.pages import page_label
from rag.references import answer_with_sources
from rag.types import Answer, Citation, Passage
from ui.originals import original_url

_MARKER = re.compile(r"\[(\d{1,3})\]")
# Sentence ends for progressive display: after . ! ? (optionally closed by a quote, bracket or
# citation markers) followed by whitespace. Splitting keeps every character, so the pieces
# joined give the text back exactly.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?:[\"'\u201d\u2019)\]]|\s*\[\d{1,3}\])*\s+")
# Context shown around a quote when its passage is very long, in characters either side.
MAX_CONTEXT = 400

SourceText = Callable[[str], "str | None"]
HasOriginal = Callable[[str], bool]  # whether the index keeps a report's original file


def esc(text: str) -> str:
    """HTML-escape text and keep its line breaks (no raw newline may reach the Markdown layer)."""
    out = html.escape(text, quote=True)
    out = out.replace("\r\n", "\n").replace("\f", "\n")
    out = re.sub(r"\n{2,}", "<br><br>", out)
    return out.replace("\n", "<br>")


def split_for_streaming(text: str) -> list[str]:
    """Pieces of ``text`` (sentence by sentence) whose concatenation is ``text`` exactly.

    >>> split_for_streaming("One [1]. Two? Three")
    ['One [1]. ', 'Two? ', 'Three']
    """
    pieces, last = [], 0
    for m in _SENTENCE_END.finditer(text):
        pieces.append(text[last : m.end()])
        last = m.end()
    if last < len(text):
        pieces.append(text[last:])
    return pieces


def anchor_id(turn: int, n: int) -> str:
    """The DOM id of citation ``n`` of answer ``turn`` (unique within a conversation)."""
    return f"arolwg-src-{turn}-{n}"


def link_markers(text: str, turn: int, known: Iterable[int] | None = None) -> str:
    """Escaped ``text`` with each ``[n]`` marker made a link to its source card.

    >>> link_markers("Yes <b> [2].", 1)
    'Yes &lt;b&gt; <a class="arolwg-cite" href="#arolwg-src-1-2" title="Source 2">[2]</a>.'
    """
    known_set = set(known) if known is not None else None

    def repl(m: re.Match) -> str:
        n = int(m.group(1))
        if known_set is not None and n not in known_set:
            return m.group(0)
        return f'<a class="arolwg-cite" href="#{anchor_id(turn, n)}" title="Source {n}">[{n}]</a>'

    return _MARKER.sub(repl, esc(text))


def heading_path(section: Sequence[str]) -> str:
    """The heading path shown under a source, e.g. ``"Summary › Well-being"``."""
    return " \u203a ".join(s for s in section if s)


def _trim_context(before: str, after: str) -> tuple[str, str]:
    # Cut long context at a word boundary so the quote stays in view.
    if len(before) > MAX_CONTEXT:
        cut = before[-MAX_CONTEXT:]
        space = cut.find(" ")
        before = "\u2026" + (cut[space + 1 :] if 0 <= space < 60 else cut)
    if len(after) > MAX_CONTEXT:
        cut = after[:MAX_CONTEXT]
        space = cut.rfind(" ")
        after = (cut[:space] if space > MAX_CONTEXT - 60 else cut) + "\u2026"
    return before, after


def excerpt_html(source: str | None, passage: Passage, citation: Citation) -> str:
    """The passage's source text with the cited quote wrapped in ``<mark>``, escaped.

    ``source`` is the report's full source text; the quote span inside the shown window is
    ``[citation.start - passage.start, citation.end - passage.start)``. Without the source text
    (or when the spans disagree) the quote is found in the cleaned passage text instead.
    """
    return excerpt_marks_html(source, passage, [citation])


def excerpt_marks_html(
    source: str | None, passage: Passage, citations: Sequence[Citation], turn: int | None = None
) -> str:
    """A passage with each of its cited quotes marked (several citations may share a passage).

    With ``turn``, each ``<mark>`` carries its citation's anchor id (the ``[n]`` link lands on the
    quote itself) and, when there are several, a small number saying which citation it is.
    """
    cits = sorted(citations, key=lambda c: (c.start, c.end))
    numbered = turn is not None and len(cits) > 1

    def mark(c: Citation, quote: str) -> str:
        ident = f' id="{anchor_id(turn, c.n)}"' if turn is not None else ""
        tag = f'<sup class="arolwg-mark-n">{c.n}</sup>' if numbered else ""
        return f"<mark{ident}>{esc(quote)}</mark>{tag}"

    # Locate each quote: in the report's source text when the spans are valid there, else in
    # the cleaned passage text. Overlapping quotes are clipped so no text is shown twice.
    if source is not None and all(0 <= c.start <= c.end <= len(source) for c in cits):
        lo = min(passage.start, *(c.start for c in cits))
        hi = max(passage.end, *(c.end for c in cits))
        text, spans = source[lo:hi], [(c, c.start - lo, c.end - lo) for c in cits]
    else:
        text, spans, pos = passage.text, [], 0
        for c in cits:
            i = text.find(c.quote, pos)
            if i < 0:  # the quote is not in the passage as cleaned: show the quotes alone
                return " \u2026 ".join(mark(c, c.quote) for c in cits)
            spans.append((c, i, i + len(c.quote)))
            pos = i + len(c.quote)
    parts, pos = [], 0
    for k, (c, a, b) in enumerate(spans):
        a = max(a, pos)
        between = text[pos:a]
        if k == 0:
            between = _trim_context(between, "")[0]
        parts.append(esc(between))
        parts.append(mark(c, text[a:b]))
        pos = max(pos, b)
    parts.append(esc(_trim_context("", text[pos:])[1]))
    return "".join(parts)


def passage_html(source: str | None, passage: Passage) -> str:
    """A passage shown without highlight (its source span, or its cleaned text as a fallback)."""
    if source is not None and 0 <= passage.start <= passage.end <= len(source):
        text = source[passage.start : passage.end]
    else:
        text = passage.text
    if len(text) > 2 * MAX_CONTEXT:
        text = text[: 2 * MAX_CONTEXT].rsplit(" ", 1)[0] + "\u2026"
    return esc(text)


def span_pages(items: Sequence[Citation | Passage]) -> tuple[int, int] | None:
    """The pages a card's quotes (or its passage) cover, first to last; None without pages."""
    ranges = [x.pages for x in items if x.pages]
    return (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None


def original_link(source: str, pages: tuple[int, int] | None, has_original: HasOriginal | None) -> str:
    """The link that opens a report's original: a PDF at the page, other formats as a download
    ("" when the index keeps no copy of it)."""
    if has_original is None or not has_original(source):
        return ""
    url = html.escape(original_url(source, pages[0] if pages else None), quote=True)
    if source.lower().endswith(".pdf"):
        label = f"Open the PDF at {page_label(pages)}" if pages else "Open the PDF"
        return f'<a class="arolwg-open" href="{url}" target="_blank" rel="noopener">{esc(label)} \u2197</a>'
    kind = source.rsplit(".", 1)[-1].upper() if "." in source else "file"
    return f'<a class="arolwg-open" href="{url}" download="{esc(source)}">Download the original ({esc(kind)})</a>'


def _source_head(
    ns: Sequence[int], title: str, authority: str, section: Sequence[str], source: str,
    pages: tuple[int, int] | None = None, has_original: HasOriginal | None = None, dates: str = "",
) -> str:
    badge = "".join(f'<span class="arolwg-n">{n}</span>' for n in ns)
    # The council is named once: in the title when the title has it, else on the line below.
    meta = [f'<span class="arolwg-council">{esc(authority)}</span>'] if authority and authority not in (title or "") else []
    if dates and dates not in (title or ""):
        meta.append(f'<span class="arolwg-dates">inspection {esc(dates)}</span>')
    path = heading_path(section)
    if path:
        meta.append(f'<span class="arolwg-path">{esc(path)}</span>')
    if pages:
        meta.append(f'<span class="arolwg-page">{esc(page_label(pages))}</span>')
    meta.append(f'<span class="arolwg-file">{esc(source)}</span>')
    link = original_link(source, pages, has_original)
    return (
        f'<div class="arolwg-src-head">{badge}<span class="arolwg-title">{esc(title or source)}</span></div>'
        f'<div class="arolwg-meta">{"".join(meta)}</div>'
        + (f'<div class="arolwg-links">{link}</div>' if link else "")
    )


def sources_html(citations: Sequence[Citation], turn: int, source_text: SourceText, has_original: HasOriginal | None = None) -> str:
    """The sources panel under an answer: each cited passage once, its quotes highlighted in it,
    with the pages of its quotes (PDFs) and a link to the report's original."""
    if not citations:
        return ""
    groups: dict[tuple, list[Citation]] = {}
    for c in citations:
        groups.setdefault((c.source, c.passage.start, c.passage.end), []).append(c)
    cards = []
    for i, cits in enumerate(groups.values(), 1):
        c = cits[0]
        body = excerpt_marks_html(source_text(c.source), c.passage, cits, turn)
        cards.append(
            f'<div class="arolwg-src" id="arolwg-card-{turn}-{i}">'
            f"{_source_head([x.n for x in cits], c.title, c.authority, c.section, c.source, span_pages(cits), has_original, c.dates)}"
            f'<div class="arolwg-excerpt">{body}</div></div>'
        )
    label = "Source" if len(citations) == 1 else f"Sources ({len(citations)})"
    return f'<details class="arolwg-sources" open><summary>{label}</summary>{"".join(cards)}</details>'


def closest_html(passages: Sequence[Passage], turn: int, source_text: SourceText, has_original: HasOriginal | None = None) -> str:
    """The closest passages offered when the answer abstains (no highlight: nothing was cited)."""
    if not passages:
        return ""
    cards = []
    for i, p in enumerate(passages, 1):
        cards.append(
            f'<div class="arolwg-src arolwg-near" id="arolwg-near-{turn}-{i}">'
            f"{_source_head((), p.title, p.authority, p.section, p.source, p.pages, has_original, p.dates)}"
            f'<div class="arolwg-excerpt">{passage_html(source_text(p.source), p)}</div></div>'
        )
    return (
        '<details class="arolwg-sources arolwg-closest" open><summary>'
        f"Closest passages found ({len(passages)})</summary>{''.join(cards)}</details>"
    )


def _notes_html(answer: Answer) -> str:
    parts = []
    if answer.notice:
        parts.append(f'<div class="arolwg-notice">{esc(answer.notice)}</div>')
    resolved = (answer.resolved_question or "").strip()
    if resolved and resolved != answer.question.strip():
        parts.append(f'<div class="arolwg-resolved">Understood as: \u201c{esc(resolved)}\u201d</div>')
    return "".join(parts)


def answer_html(answer: Answer, turn: int, source_text: SourceText, has_original: HasOriginal | None = None) -> str:
    """A finished answer: notes, text with linked markers, flagged sentences, sources panel.
    With ``has_original``, each source card links the report's original file."""
    notes = _notes_html(answer)
    if answer.abstained:
        return (
            f'<div class="arolwg-answer arolwg-abstained">{notes}'
            f'<div class="arolwg-abstain-text"><span class="arolwg-abstain-label">Not in the reports</span>'
            f"{esc(answer.text)}</div>"
            f"{closest_html(answer.passages, turn, source_text, has_original)}</div>"
        )
    text = link_markers(answer.text, turn, known=[c.n for c in answer.citations])
    flagged = ""
    if answer.unsupported:
        items = "".join(f"<li>{esc(s)}</li>" for s in answer.unsupported)
        flagged = (
            '<div class="arolwg-unsupported">These sentences are not backed by the cited '
            f"passages; check them against the sources:<ul>{items}</ul></div>"
        )
    return (
        f'<div class="arolwg-answer">{notes}<div class="arolwg-text">{text}</div>{flagged}'
        f"{sources_html(answer.citations, turn, source_text, has_original)}</div>"
    )


def partial_html(text: str, turn: int) -> str:
    """An answer still streaming in: the text so far and a cursor."""
    body = link_markers(text, turn) if text else '<span class="arolwg-searching">Searching the reports\u2026</span>'
    return f'<div class="arolwg-answer arolwg-streaming"><div class="arolwg-text">{body}<span class="arolwg-cursor"></span></div></div>'


def error_html(message: str) -> str:
    """A plain sentence shown in place of an answer when something went wrong."""
    return f'<div class="arolwg-answer arolwg-error">{esc(message)}</div>'


def question_html(question: str) -> str:
    """The user's question as shown in the chat (escaped: it is never interpreted as markup)."""
    return f'<div class="arolwg-question">{esc(question)}</div>'


def answer_plain(answer: Answer, reports=None) -> str:
    """The answer as plain text with its citations, for copying into an email or a paper: each
    with its report's title, council, dates (from ``reports``, id -> metadata), page (PDFs),
    section, file name and quote (:func:`rag.references.answer_with_sources`).

    >>> from rag.types import Answer
    >>> answer_plain(Answer("q", "The reports do not say.", (), True))
    'The reports do not say.'
    """
    return answer_with_sources(answer, reports)


def _dates_cell(dates: str, dated_by: str = "") -> str:
    """A report's inspection dates (saying so when a user set them), or a plain word that none
    could be found in its text (so it is left out by date filters and questions about a time)."""
    if dates and dated_by == "hand":
        return f'{esc(dates)} <span class="arolwg-dated-by" title="These dates were set by hand in Arolwg, not read from the report\'s text.">(dated by hand)</span>'
    if dates:
        return esc(dates)
    return '<span class="arolwg-undated" title="No inspection date was found in the report\'s text, so date filters and questions about a time leave it out until it is dated by hand (Date a report, below).">Not found in the text</span>'


def reports_table_html(reports: Sequence[object], has_original: HasOriginal | None = None) -> str:
    """The Reports tab's table: title, council, kind, dates, chunk count, file name (a link that
    downloads the original, when the index keeps it)."""
    if not reports:
        return '<p class="arolwg-empty">No reports are indexed yet: upload one below.</p>'
    rows = []
    for r in reports:
        rows.append(
            "<tr>"
            f'<td class="arolwg-title">{esc(getattr(r, "title", "") or "")}</td>'
            f'<td>{esc(getattr(r, "authority", "") or "")}</td>'
            f'<td>{esc(getattr(r, "kind", "") or "")}</td>'
            f'<td>{_dates_cell(getattr(r, "dates", "") or "", getattr(r, "dated_by", "") or "")}</td>'
            f'<td class="arolwg-num">{int(getattr(r, "n_chunks", 0) or 0)}</td>'
            f'<td class="arolwg-file">{_file_cell(getattr(r, "report_id", "") or "", has_original)}</td>'
            "</tr>"
        )
    total = sum(int(getattr(r, "n_chunks", 0) or 0) for r in reports)
    return (
        '<table class="arolwg-reports"><thead><tr><th>Report</th><th>Council</th><th>Kind</th>'
        '<th>Dates</th><th class="arolwg-num">Passages</th><th>File</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
        f'<p class="arolwg-caption">{len(reports)} report{"s" if len(reports) != 1 else ""}, '
        f"{total} passages indexed.</p>"
    )


def _file_cell(report_id: str, has_original: HasOriginal | None) -> str:
    if has_original is None or not report_id or not has_original(report_id):
        return esc(report_id)
    url = html.escape(original_url(report_id), quote=True)
    return f'<a class="arolwg-download" href="{url}" download="{esc(report_id)}" title="Download the original file">{esc(report_id)}</a>'


def finding_html(finding, source_text: SourceText, has_original: HasOriginal | None = None) -> str:
    """One finding of the Findings tab as the chat shows a source: a card with its report, heading
    path, page (PDFs), a link to the original, and its passage with the finding's sentence marked."""
    c = finding.citation
    body = excerpt_html(source_text(c.source), c.passage, c)
    kind = f'<span class="arolwg-kind">{esc(finding.kind)}</span>'
    return (
        f'<div class="arolwg-sources"><div class="arolwg-src arolwg-finding">'
        f"{_source_head([], c.title, c.authority, c.section, c.source, c.pages, has_original, c.dates)}"
        f'<div class="arolwg-meta">{kind}</div><div class="arolwg-excerpt">{body}</div></div></div>'
    )
