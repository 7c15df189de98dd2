"""Types of the indexing pipeline: a loaded report and its chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class ReportMeta:
    """What Arolwg detected about a report from its text."""

    report_id: str  # the file name, e.g. "ciw-cardiff-2020-12.txt"
    title: str
    authority: str  # e.g. "Cardiff Council"
    kind: str  # e.g. "Risk based inspection"
    dates: str  # e.g. "23 November - 3 December 2020"
    sha256: str  # of the source text
    # Who dated the inspection: "" when the dates were read from the text (or none were found),
    # "hand" when a user set them (``index.set_report_dates``): shown so, never passed off as
    # the report's own words.
    dated_by: str = ""

    @property
    def dates_shown(self) -> str:
        """The dates as a reader should see them: "12-23 October 2020", or "... (dated by hand)"."""
        return f"{self.dates} (dated by hand)" if self.dates and self.dated_by == "hand" else self.dates

    # The dates normalised, derived from ``dates`` (so metadata stored by any Arolwg has them):
    # ISO start and end ("2020-11-23"; "2020-10" or "2020" when the report gives no day or
    # month), and the year the inspection started; "" and None when no date was found.
    @cached_property
    def _normalised(self) -> tuple[str, str, int | None]:
        # Cached on the instance (a frozen dataclass has a __dict__ that cached_property writes
        # to directly): a notice over a thousand reports reads every report's year per question.
        from index.meta import normalise_dates

        return normalise_dates(self.dates)

    @property
    def start(self) -> str:
        return self._normalised[0]

    @property
    def end(self) -> str:
        return self._normalised[1]

    @property
    def year(self) -> int | None:
        return self._normalised[2]


@dataclass(frozen=True, slots=True)  # slots: a large index holds tens of thousands in memory
class Chunk:
    """A passage of a report: ``text`` is cleaned, ``start``/``end`` index the source text."""

    id: str
    report_id: str
    section: tuple[str, ...]
    text: str
    start: int
    end: int

    @staticmethod
    def make_id(report_id: str, section: tuple[str, ...], text: str, start: int) -> str:
        """Content-hash id: same report, place and words give the same id on every run."""
        h = hashlib.sha256("\x1f".join([report_id, *section, str(start), text]).encode("utf-8"))
        return h.hexdigest()[:32]
