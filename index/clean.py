"""Repair text-extraction damage while remembering where every character came from.

Extracted report text breaks sentences across blank lines and page breaks, hyphenates words at
line ends, and repeats page headers and numbers. Cleaning fixes that, but citations must point at
the report's own words, so every cleaned character keeps its offset in the source text: a span of
the cleaned text maps back to a span of the source with :meth:`Mapped.source_span`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable

PAGE_BREAK = "\f"


@dataclass(frozen=True)
class Mapped:
    """Cleaned text plus, for each of its characters, the offset of its source character."""

    text: str
    pos: tuple[int, ...]

    @classmethod
    def identity(cls, text: str) -> "Mapped":
        return cls(text, tuple(range(len(text))))

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Map the cleaned span ``[start, end)`` to the source span that holds the same words."""
        if end <= start:
            p = self.pos[start] if start < len(self.pos) else (self.pos[-1] + 1 if self.pos else 0)
            return p, p
        return self.pos[start], self.pos[end - 1] + 1

    def sub(self, pattern: str | re.Pattern, repl: str | Callable[[re.Match], str], flags: int = 0) -> "Mapped":
        """``re.sub`` that keeps offsets: inserted characters map to the start of their match."""
        rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        out: list[str] = []
        pos: list[int] = []
        last = 0
        for m in rx.finditer(self.text):
            out.append(self.text[last : m.start()])
            pos.extend(self.pos[last : m.start()])
            r = repl(m) if callable(repl) else repl
            if r:
                anchor = self.pos[m.start()] if m.start() < len(self.pos) else (self.pos[-1] + 1 if self.pos else 0)
                # Keep a replaced character's own offset when it survives (e.g. group 1 kept).
                out.append(r)
                pos.extend([anchor] * len(r))
            last = m.end()
        out.append(self.text[last:])
        pos.extend(self.pos[last:])
        return Mapped("".join(out), tuple(pos))

    def drop_lines(self, keep: Callable[[str], bool]) -> "Mapped":
        """Remove whole lines for which ``keep(line)`` is false (with their newline)."""
        out: list[str] = []
        pos: list[int] = []
        i = 0
        for line in self.text.splitlines(keepends=True):
            j = i + len(line)
            if keep(line.rstrip("\n")):
                out.append(line)
                pos.extend(self.pos[i:j])
            i = j
        return Mapped("".join(out), tuple(pos))


_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*$", re.I)
_TERMINAL = ".!?:;\"'”’)]"


def _normalise_chars(m: Mapped) -> Mapped:
    """NFKC each character (ligatures, non-breaking spaces) and unify line ends."""
    out: list[str] = []
    pos: list[int] = []
    for ch, p in zip(m.text, m.pos):
        if ch == "\r":
            continue  # "\r\n" -> "\n"; a lone "\r" is rare enough in reports to drop
        n = unicodedata.normalize("NFKC", ch) if ord(ch) > 127 else ch
        if ch in "\u00a0\u2007\u202f\t":
            n = " "
        if ch == "\u00ad":  # soft hyphen: invisible in the PDF, noise in the text
            n = ""
        out.append(n)
        pos.extend([p] * len(n))
    return Mapped("".join(out), tuple(pos))


def _shape(line: str) -> str:
    """A line with its numbers blanked, so a running footer matches itself on every page
    ("Cardiff Council inspection - Page 3 of 12" and "... Page 4 of 12" have one shape)."""
    return re.sub(r"\d+", "#", " ".join(line.split()))


def _edge_furniture(pages: list[list[str]], least: int) -> set[str]:
    """Running headers and footers: lines repeated at page edges (two lines at the top and at the
    bottom of a page) on at least ``least`` pages. A page's first and last lines also count by
    their shape (:func:`_shape`), for a footer that carries the page number; lines further in
    must repeat exactly. Returns lines (whitespace-normalised) and shapes; see :func:`_is_furniture`."""
    edges: Counter[str] = Counter()
    for lines in pages:
        lines = [ln.strip() for ln in lines if ln.strip() and len(ln.strip()) < 100]
        # Lines with words only: a bare number is a page number, or a table cell (handled apart).
        keys = {" ".join(ln.split()) for ln in lines[:2] + lines[-2:] if re.search(r"[^\W\d_]", ln)}
        keys |= {_shape(ln) for ln in lines[:1] + lines[-1:] if re.search(r"[^\W\d_]", ln) and re.search(r"\d", ln)}
        edges.update(keys)
    return {key for key, n in edges.items() if n >= least}


def _is_furniture(line: str, furniture: set[str]) -> bool:
    return bool(furniture) and (" ".join(line.split()) in furniture or _shape(line) in furniture)


def _furniture(text: str) -> set[str]:
    """The running headers and footers of form-feed-separated pages (see :func:`_edge_furniture`)."""
    pages = text.split(PAGE_BREAK)
    if len(pages) < 3:
        return set()
    return _edge_furniture([page.splitlines() for page in pages], max(3, len(pages) // 2))


def strip_page_furniture(pages: list[str]) -> list[str]:
    """The text of each page of a PDF without its running header and footer and its page number.

    Lines are only taken from the page's edges (its first and last lines), so a table cell or a
    sentence that happens to look like a header, inside the page, stays. Used when a PDF is read,
    so a report's source text never holds them: a sentence broken across a page break is then one
    span of the report's own words, with nothing but the page break inside it.

    >>> strip_page_furniture(["CIW report\\nThe council\\nPage 1 of 3", "CIW report\\nmust act.\\nPage 2 of 3", "CIW report\\nEnd.\\n3"])
    ['The council', 'must act.', 'End.']
    """
    split = [page.split("\n") for page in pages]
    # On half of the pages at least: a title page or a full-page table may lack them.
    furniture = _edge_furniture(split, max(2, (len(pages) + 1) // 2)) if len(pages) >= 2 else set()

    def edge_furniture(line: str, outermost: bool) -> bool:
        s = line.strip()
        if not s or _is_furniture(s, furniture) or re.fullmatch(r"page\s+\d{1,4}(\s*(/|of)\s*\d{1,4})?", s, re.I):
            return True
        # A bare number is the page number only as the page's first or last line: above a
        # footer it is more likely a table's last cell.
        return outermost and bool(_PAGE_NUMBER.match(s))

    out = []
    for lines in split:
        top, bottom = 0, len(lines)
        for _ in range(3):  # a header, a blank line and a sub-header at most
            if top < bottom and edge_furniture(lines[top], not "".join(lines[:top]).strip()):
                top += 1
        for _ in range(3):
            if bottom > top and edge_furniture(lines[bottom - 1], not "".join(lines[bottom:]).strip()):
                bottom -= 1
        out.append("\n".join(lines[top:bottom]))
    return out


def clean_text(source: str) -> Mapped:
    """Clean extracted report text; the result maps back to ``source`` offsets.

    >>> m = clean_text("Managers are currently\\n\\nreviewing the service.")
    >>> m.text
    'Managers are currently reviewing the service.'
    >>> source = "Managers are currently\\n\\nreviewing the service."
    >>> source[slice(*m.source_span(0, len(m.text)))] == source
    True
    """
    m = _normalise_chars(Mapped.identity(source))
    furniture = _furniture(m.text)
    m = m.drop_lines(
        lambda ln: not _PAGE_NUMBER.match(ln) and not _is_furniture(ln, furniture)
    )
    # A page break is a paragraph break unless the sentence runs on (handled below).
    m = m.sub(r"[ ]*\f[ ]*", "\n\n")
    m = m.sub(r"[ ]+\n", "\n")
    # Hyphenation at a line end: "improve-\nment" -> "improvement".
    m = m.sub(r"(?<=[a-z])-\n\s*(?=[a-z])", "")
    # A sentence broken across blank lines: the next part starts in lower case.
    m = m.sub(
        r"(?<=[^\s" + re.escape(_TERMINAL) + r"])\n\s*\n\s*(?=[a-z(])",
        " ",
    )
    # Wrapped lines inside a paragraph (PDF extraction): join a line that does not end a
    # sentence with a following line that starts in lower case.
    # A line may also end in a number ("within 72\nhours").
    m = m.sub(r"(?<=[a-z0-9,])\n(?=[a-z])", " ")
    m = m.sub(r"\n{3,}", "\n\n")
    m = m.sub(r"[ ]{2,}", " ")
    return m
