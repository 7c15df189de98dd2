"""Split a cleaned report along its own structure into chunks and sentences.

CIW reports are organised as service area (children's / adults) > principle (People, Well-being,
Prevention, Partnerships) > "Strengths" / "What needs to improve" > numbered finding. Numbered
findings become one chunk each; prose becomes one chunk per paragraph (long ones split at sentence
ends, short neighbours merged). Every chunk keeps its heading path and its span in the source text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.clean import Mapped
from index.types import Chunk

CHUNKER_VERSION = "5"  # bump when chunking changes, so re-indexing re-chunks unchanged reports

_LIST_ITEM = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|[-•–*])\s+")
_NUMBERED = re.compile(r"^\s*\(?\d{1,2}[.)]\s+")
_TOP = re.compile(
    r"^(introduction|overview|method(ology)?|next steps?|background|conclusions?|summary of findings|"
    r"about this report|our findings|contents|recommendations)\s*:?$",
    re.I,
)
_SERVICE = re.compile(r"\b(children'?s?|adults?'?s?)\s+(social\s+)?services?\b", re.I)
_PRINCIPLE = re.compile(
    r"^(people\b.*\b(voice|choice|control)|well-?being|prevention|partnerships?(\s+and\s+integration)?|"
    r"leadership|safeguarding)\b",
    re.I,
)
_SUB = re.compile(
    r"^(strengths|what needs to improve|areas? for (improvement|development)|summary|key findings|"
    r"priorities for improvement|what we found|we asked)\b",
    re.I,
)
# A table row as PDF extraction gives it: cells on one line, the last a number ("Case files read 41").
_ROW = re.compile(r"\S\s+[(£]?\d[\d,.]*%?\)?$")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|no|nos|dr|mr|mrs|ms|st|vs|cf|para|approx|incl)\.$", re.I)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk: ``start``/``end`` index the source text."""

    chunk_id: str
    text: str
    start: int
    end: int


def heading_level(line: str) -> int | None:
    """0 = top section or service area, 1 = principle, 2 = sub-heading; None: not a heading."""
    s = line.strip()
    if not s or len(s) > 90 or _LIST_ITEM.match(s) or not s[0].isupper():
        return None
    if s[-1] in ".?!,;" or len(s.split()) > 12:
        return None
    if _TOP.match(s):
        return 0
    if _SUB.match(s):
        return 2
    if _PRINCIPLE.match(s):
        return 1
    if _SERVICE.search(s):
        return 0
    if s.endswith(":"):
        return None  # "We focused on:" leads into a list; it is not a heading
    return 1


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text`` (list markers left out of the first sentence)."""
    spans: list[tuple[int, int]] = []
    m = _LIST_ITEM.match(text)
    start = m.end() if m else 0
    for mm in re.finditer(r"[.!?][\"'”’)]?(?=\s+[\"'“‘(]?[A-Z0-9])|\n+", text):
        end = mm.end()
        piece = text[start:end].strip()
        if mm.group().startswith((".", "!", "?")) and (
            _ABBREV.search(text[start : mm.start() + 1]) or re.fullmatch(r"\(?\d{1,2}[.)]?", piece)
        ):
            continue
        if (
            mm.group() == "\n"
            and not re.search(r"[.!?:;][\"'”’)]?\s*$", text[start : mm.start()])
            and not _LIST_ITEM.match(text[end:])
            and not _ROW.search(text[start : mm.start()])  # a table row ends at its line's end
        ):
            continue  # one line wrapped onto the next (a title over several lines), not two sentences
        if piece:
            spans.append(_strip_span(text, start, end))
        start = end
    if text[start:].strip():
        spans.append(_strip_span(text, start, len(text)))
    return [s for s in spans if s[1] > s[0]]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    m = _LIST_ITEM.match(text[start:end])
    if m:
        start += m.end()
    return start, end


@dataclass
class _Block:
    kind: str  # "numbered" | "bullet" | "para"
    start: int  # cleaned-text offsets
    end: int
    section: tuple[str, ...]


def table_rows(lines: list[str]) -> set[int]:
    """Indexes of the lines that are rows of a table: lines ending in a number, next to another
    (blank lines between are skipped), and the heading-like line over such a run (its header
    row, "Evidence gathered  Number"). Without this, short rows read as headings and the table's
    cells would be in no passage."""
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    numeric = [bool(_ROW.search(lines[i].strip())) for i in filled]
    rows: set[int] = set()
    for k, i in enumerate(filled):
        if numeric[k] and ((k > 0 and numeric[k - 1]) or (k + 1 < len(filled) and numeric[k + 1])):
            rows.add(i)
            above = filled[k - 1] if k > 0 else None
            if above is not None and above not in rows and not numeric[k - 1] and _generic_heading(lines[above]):
                rows.add(above)
    return rows


def _generic_heading(line: str) -> bool:
    """A heading only by its shape (short, capitalised, no full stop), not a known CIW heading."""
    s = line.strip()
    return heading_level(s) == 1 and not _PRINCIPLE.match(s)


def _blocks(m: Mapped) -> list[_Block]:
    blocks: list[_Block] = []
    levels: list[str | None] = [None, None, None]
    offset = 0
    seen_top = False
    lines = m.text.split("\n")
    rows = table_rows(lines)
    for i, line in enumerate(lines):
        start, end = offset, offset + len(line)
        offset = end + 1
        s = line.strip()
        if not s:
            continue
        level = None if i in rows else heading_level(s)
        if level is not None and (seen_top or level == 0 and _TOP.match(s)):
            seen_top = True
            if level == 1 and levels[0] and _TOP.match(levels[0]):
                levels[0] = None  # a principle ends a generic section such as "Overview"
            levels[level] = s.rstrip(":").strip()
            for deeper in range(level + 1, 3):
                levels[deeper] = None
            continue
        lead = len(line) - len(line.lstrip())
        section = tuple(h for h in levels if h) if seen_top else ("Title page",)
        kind = "numbered" if _NUMBERED.match(s) else "bullet" if _LIST_ITEM.match(s) else "para"
        blocks.append(_Block(kind, start + lead, start + len(line.rstrip()), section))
    return blocks


def _windows(m: Mapped, b: _Block, max_chars: int) -> list[tuple[int, int]]:
    """Split a long block at sentence ends into pieces of at most about max_chars."""
    text = m.text[b.start : b.end]
    if len(text) <= max_chars:
        return [(b.start, b.end)]
    out: list[tuple[int, int]] = []
    cur_s: int | None = None
    cur_e = 0
    for s, e in split_sentences(text):
        if b.kind != "para" and not out and cur_s is None:
            s = 0  # keep the list marker with the first piece
        if cur_s is not None and e - cur_s > max_chars:
            out.append((b.start + cur_s, b.start + cur_e))
            cur_s = None
        if cur_s is None:
            cur_s = s
        cur_e = e
    if cur_s is not None:
        out.append((b.start + cur_s, b.start + cur_e))
    return out


def chunk_report(report_id: str, m: Mapped, *, max_chars: int = 900, min_chars: int = 250) -> tuple[list[Chunk], list[Sentence]]:
    """Chunks and their sentences for one cleaned report.

    >>> from index.clean import clean_text
    >>> chunks, _ = chunk_report("r.txt", clean_text("Introduction\\n\\nWe visited.\\n\\nWell-being\\n\\nStrengths:\\n\\n1. Good work.\\n"))
    >>> [(c.section, c.text) for c in chunks]
    [(('Introduction',), 'We visited.'), (('Well-being', 'Strengths'), '1. Good work.')]
    """
    pieces: list[tuple[int, int, tuple[str, ...]]] = []
    pending: tuple[int, int, tuple[str, ...], str] | None = None
    for b in _blocks(m):
        for s, e in _windows(m, b, max_chars):
            mergeable = b.kind != "numbered"
            # A list stays with the line that leads into it ("We focused on:"), which says
            # what the items are; apart, neither matches a question about them.
            if (
                pending
                and b.kind == "bullet"
                and pending[3] in ("para", "lead")
                and pending[2] == b.section
                and (pending[3] == "lead" or m.text[pending[0] : pending[1]].rstrip().endswith(":"))
                and e - pending[0] <= max_chars
            ):
                pending = (pending[0], e, b.section, "lead")
                continue
            if (
                pending
                and mergeable
                and pending[3] == b.kind
                and pending[2] == b.section
                and pending[1] - pending[0] < min_chars
                and e - pending[0] <= max_chars
            ):
                pending = (pending[0], e, b.section, b.kind)
                continue
            if pending:
                pieces.append(pending[:3])
            pending = (s, e, b.section, b.kind if mergeable else "numbered")
    if pending:
        pieces.append(pending[:3])

    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for s, e, section in pieces:
        text = m.text[s:e]
        src_s, src_e = m.source_span(s, e)
        cid = Chunk.make_id(report_id, section, text, src_s)
        chunks.append(Chunk(id=cid, report_id=report_id, section=section, text=text, start=src_s, end=src_e))
        for ss, se in split_sentences(text):
            a, z = m.source_span(s + ss, s + se)
            sentences.append(Sentence(chunk_id=cid, text=text[ss:se], start=a, end=z))
    return chunks, sentences
