"""A multi-report test corpus: the two bundled reports and dated SYNTHETIC variants of them.

Questions about time ("in 2016", "the latest inspection", "And in 2018?") need councils with
several reports. There are two real reports, so for tests and eval this makes earlier
inspections of the same two councils from them, on the fly, into a folder the caller gives
(never the repository or the bundled corpus):

* ``synthetic-wrexham-2016-06.txt``: the Wrexham report re-dated to June 2016;
* ``synthetic-wrexham-2018-03.txt``: the Wrexham report re-dated to March 2018;
* ``synthetic-cardiff-2017-12.txt``: the Cardiff report re-dated to November-December 2017.

Each is clearly fictional test data: its first lines say ``SYNTHETIC TEST REPORT (not a real CIW
report)`` (so its detected title says so too), every date in it is moved consistently
(:func:`eval.synthetic.shift_dates`), every count is perturbed (:func:`eval.synthetic.perturb_numbers`,
seeded) and some findings are rewritten (:data:`CHANGES`), so that the answer to "what did CIW
find in 2016?" differs from the one for 2020. They are never real CIW reports and must never be
described as such. The real reports are copied unchanged and stay the newest of each council.

``eval/corpus_qa.jsonl`` and the held-out ``eval/corpus_heldout.jsonl`` ask their questions (time-scope,
latest, changed, which) of this corpus: ``arolwg eval --qa eval/corpus_qa.jsonl`` (or the held-out file)
builds it in a temporary folder by itself.

>>> import tempfile
>>> [p.name for p in make_dated_corpus(tempfile.mkdtemp())]   # doctest: +NORMALIZE_WHITESPACE
['ciw-cardiff-2020-12.txt', 'ciw-wrexham-2020-10.txt', 'synthetic-cardiff-2017-12.txt',
 'synthetic-wrexham-2016-06.txt', 'synthetic-wrexham-2018-03.txt']
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from eval.synthetic import CAERDYDD, REAL_REPORTS, REPO_DIR, WRECSAM, _inside, mark_synthetic, perturb_numbers, shift_dates
from index.meta import AUTHORITIES
from index.settings import BUNDLED_REPORTS_DIR

MARKER_NOTE = "SYNTHETIC TEST REPORT (not a real CIW report)"


@dataclass(frozen=True)
class Variant:
    """One dated synthetic variant of a bundled report."""

    name: str  # its file name
    template: str  # the bundled report it is made from
    months: int  # how far its dates are moved (negative: earlier)
    changes: tuple[tuple[str, str], ...]  # findings rewritten: (words of the template, new words)


_IMMEDIATE = "we did not find any children to be at immediate risk of harm"
_JUDGEMENT = "we consider children's social services to remain inadequate but with significantly improved prospects for improvement"
_ADVOCACY = "The local authority recognises and is committed to commissioning and promoting independent advocacy for children in Wrexham."
_LANGUAGE = (
    "Preferred language is positively recognised as a key factor in building effective relationships between people "
    "and practitioners and people are supported to communicate in their preferred language."
)
_SUPERVISION = "we did not see evidence of critical evaluation in the sample of supervision records we reviewed"

VARIANTS: tuple[Variant, ...] = (
    Variant(
        "synthetic-wrexham-2016-06.txt", WRECSAM, -52,
        (
            (_IMMEDIATE, "we found four children to be at immediate risk of harm and asked the local authority to act on the same day"),
            (_JUDGEMENT, "we consider children's social services to be inadequate, with poor prospects for improvement"),
            (_ADVOCACY, "The local authority has not commissioned any independent advocacy service for children in Wrexham."),
        ),
    ),
    Variant(
        "synthetic-wrexham-2018-03.txt", WRECSAM, -31,
        (
            (_IMMEDIATE, "we found one child to be at immediate risk of harm, whom the local authority protected the same day"),
            (_JUDGEMENT, "we consider children's social services to require improvement, with reasonable prospects for improvement"),
            (_ADVOCACY, "The local authority has begun to commission independent advocacy for children in Wrexham, but few children know how to use it."),
        ),
    ),
    Variant(
        "synthetic-cardiff-2017-12.txt", CAERDYDD, -36,
        (
            (_LANGUAGE, "Preferred language is not consistently recognised: several people told us they were not offered the chance to communicate in Welsh."),
            (_SUPERVISION, "the sample of supervision records we reviewed showed regular, critical reflection on practice"),
        ),
    ),
)
CHANGES = {v.name: v.changes for v in VARIANTS}
OFFICIAL = {WRECSAM: AUTHORITIES["Wrexham"], CAERDYDD: AUTHORITIES["Cardiff"]}


def variant_text(v: Variant, reports_dir: str | Path = BUNDLED_REPORTS_DIR) -> str:
    """The text of one variant: re-dated, counts perturbed, findings rewritten, marked SYNTHETIC."""
    text = (Path(reports_dir) / v.template).read_text(encoding="utf-8")
    moved = shift_dates(text, v.months)
    if moved is None:
        raise ValueError(f"{v.name}: its template's dates cannot all move by {v.months} months")
    text = perturb_numbers(moved, random.Random(f"arolwg-dated:{v.name}"))
    for old, new in v.changes:
        if old not in text:
            raise ValueError(f"{v.name}: the finding to rewrite is not in {v.template}: {old[:60]!r}")
        text = text.replace(old, new)
    return mark_synthetic(text, OFFICIAL[v.template])


def make_dated_corpus(folder: str | Path, *, reports_dir: str | Path = BUNDLED_REPORTS_DIR) -> list[Path]:
    """Write the two bundled reports and the :data:`VARIANTS` into ``folder`` (outside the repository)."""
    folder = Path(folder)
    if _inside(folder, Path(reports_dir)) or _inside(folder, BUNDLED_REPORTS_DIR) or (
        (REPO_DIR / "pyproject.toml").exists() and _inside(folder, REPO_DIR)
    ):
        raise ValueError(f"{folder}: synthetic reports are written outside the repository (use a temporary folder)")
    folder.mkdir(parents=True, exist_ok=True)
    paths = [Path(shutil.copyfile(Path(reports_dir) / real, folder / real)) for real in REAL_REPORTS]
    for v in VARIANTS:
        path = folder / v.name
        path.write_text(variant_text(v, reports_dir), encoding="utf-8")
        paths.append(path)
    return sorted(paths)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m eval.corpus FOLDER   (writes the dated test corpus there)")
    for p in make_dated_corpus(sys.argv[1]):
        print(p)
