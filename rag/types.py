"""Core value types passed between retrieval, answering, the UI and the eval runner."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of a report.

    ``start``/``end`` index the report's source text (``source_text(source)``), so
    ``text`` can be shown in place; ``score`` is the fused retrieval score (higher is better)
    and ``similarity`` the cosine similarity of the question to the passage. For a PDF report,
    ``page`` is the page (1-based) the passage starts on and ``pages`` its (first, last) pages;
    both are None for formats without pages (DOCX, HTML, text).
    """

    chunk_id: str
    source: str
    title: str
    authority: str
    section: tuple[str, ...]
    text: str
    start: int
    end: int
    score: float
    similarity: float = 0.0
    page: int | None = None
    pages: tuple[int, int] | None = None
    dates: str = ""  # its report's inspection dates as shown, e.g. "12-23 October 2020" ("" if not found)


@dataclass(frozen=True)
class Citation:
    """One ``[n]`` marker of an answer: the verbatim words of a report that back it.

    ``quote == source_text(source)[start:end]`` always holds. For a PDF report, ``page`` is the
    page (1-based) the quote starts on and ``pages`` its (first, last) pages, e.g. (7, 8) for a
    sentence that runs on to the next page; both are None for DOCX, HTML and text.
    """

    n: int
    source: str
    title: str
    authority: str
    section: tuple[str, ...]
    quote: str
    start: int
    end: int
    passage: Passage
    page: int | None = None
    pages: tuple[int, int] | None = None

    @property
    def dates(self) -> str:
        """The inspection dates of the report quoted, as shown ("23 November - 3 December 2020")."""
        return self.passage.dates


@dataclass(frozen=True)
class Answer:
    """An answer with its citations.

    ``text`` holds ``[n]`` markers naming ``citations``. ``abstained`` is true when the reports
    do not support an answer; ``passages`` then still holds the closest passages found.
    ``backend`` names what produced the text (``"extractive"`` or the LLM backend);
    ``unsupported`` lists answer sentences no cited passage supports (LLM answers only);
    ``notice`` is a plain sentence for the user (e.g. why an LLM answer was replaced).
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    passages: tuple[Passage, ...] = ()
    resolved_question: str = ""
    backend: str = "extractive"
    unsupported: tuple[str, ...] = ()
    notice: str = ""
    score: float = 0.0  # the evidence score the abstention threshold is compared with
    timings: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of_lines(
        cls, question: str, lines: list[str], citations: list[Citation], *, passages, resolved_question: str, score: float, notice: str = ""
    ) -> Answer:
        """An answer given as lines of cited text (the extractive answerer's, a list across councils, dates)."""
        return cls(
            question=question, text="\n".join(lines), citations=tuple(citations), abstained=False, passages=tuple(passages),
            resolved_question=resolved_question or question, notice=notice, score=score,
        )

    def to_dict(self) -> dict:
        """A JSON-ready dict (for ``arolwg ask --json`` and the web API)."""
        from dataclasses import asdict

        return asdict(self)
