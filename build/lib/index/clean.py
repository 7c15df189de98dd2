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


def _furniture(text: str) -> set[str]:
    """Lines repeated at page edges: running headers and footers."""
    pages = text.split(PAGE_BREAK)
    if len(pages) < 3:
        return set()
    edges: Counter[str] = Counter()
    for page in pages:
        lines = [ln.strip() for ln in page.splitlines() if ln.strip()]
        for ln in set(lines[:2] + lines[-2:]):
            if len(ln) < 100:
                edges[ln] += 1
    return {ln for ln, n in edges.items() if n >= max(3, len(pages) // 2)}


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
        lambda ln: not _PAGE_NUMBER.match(ln) and ln.strip() not in furniture
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
    m = m.sub(r"(?<=[a-z,])\n(?=[a-z])", " ")
    m = m.sub(r"\n{3,}", "\n\n")
    m = m.sub(r"[ ]{2,}", " ")
    return m
