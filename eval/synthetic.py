"""Synthetic corpora for the scale benchmark: the two bundled reports, made distinct, copied N times.

Every copy is clearly fictional test data, made on the fly into a folder the caller gives (never
the repository or the bundled corpus):

* a fictional council's name replaces the real one everywhere (short name, official name, Welsh
  name, acronym): "Wrexham County Borough Council" becomes e.g. "Aberhenwen County Borough
  Council", "Cardiff Council" e.g. "Caerwennol Council". None of the invented names is one of
  Wales's 22 councils (:data:`index.meta.AUTHORITIES`) or their other names;
* another inspection date (a year in 2016-2025 other than 2020, and a month), shifted
  consistently everywhere a date appears (the years of Acts such as "the 2014 Act" are kept);
* perturbed numbers (counts of case files, survey replies, posts, months, "seven working days"),
  so no copy states a real report's figures about another council;
* a line ``SYNTHETIC TEST REPORT (not a real CIW report)`` near the top (first line, or just
  under the council's name when the report opens with it, so the title stays detected).

Twenty-two fictional councils, like Wales's 22, each inspected several times (different years):
copy ``j`` is of council ``j % 22``, its ``j // 22``-th inspection. Each council's copies come from
one template (the Wrexham report for "County Borough Council" councils, the Cardiff one for the
others). Everything is seeded: the same ``(j, seed)`` always gives the same text, and the corpus
of N reports is the corpus of N - 1 plus one report.

>>> r = synthetic_report(0)
>>> r.name, r.official
('synthetic-aberhenwen-2023-02.txt', 'Aberhenwen County Borough Council')
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from index.meta import AUTHORITIES, name_alternatives
from index.settings import BUNDLED_REPORTS_DIR

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent
MARKER = "SYNTHETIC TEST REPORT (not a real CIW report)"
YEARS = tuple(y for y in range(2016, 2026) if y != 2020)  # both real reports are of 2020
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
WRECSAM, CAERDYDD = "ciw-wrexham-2020-10.txt", "ciw-cardiff-2020-12.txt"
REAL_REPORTS = (CAERDYDD, WRECSAM)

# Invented Welsh-sounding names: none is a Welsh council, its Welsh name, or an English word.
# A "County Borough Council" is copied from the Wrexham report, a "Council" from the Cardiff one.
# County borough names avoid the initials of real county boroughs (B, C, M, R, T, W), so the
# acronym that replaces "WCBC" is no real council's.
FICTIONAL: tuple[tuple[str, str], ...] = (
    ("Aberhenwen", "County Borough Council"),
    ("Bryndewin", "Council"),
    ("Dolgarregog", "County Borough Council"),
    ("Cwmtawelog", "Council"),
    ("Glanmeirion", "County Borough Council"),
    ("Caerwennol", "Council"),
    ("Hafodlasog", "County Borough Council"),
    ("Tregolau", "Council"),
    ("Llanfeiriol", "County Borough Council"),
    ("Morfadulas", "Council"),
    ("Nantyrhosyn", "County Borough Council"),
    ("Betwsgarnedd", "Council"),
    ("Penrhydfa", "County Borough Council"),
    ("Rhosgeiniog", "Council"),
    ("Ystradfelen", "County Borough Council"),
    ("Talsarnog", "Council"),
    ("Gwernhaulog", "County Borough Council"),
    ("Cefnderynog", "Council"),
    ("Llwyntegwyn", "County Borough Council"),
    ("Porthgwynfor", "Council"),
    ("Dinasfelyn", "County Borough Council"),
    ("Maesygwynfa", "Council"),
)
TEMPLATE_OF_STYLE = {"County Borough Council": WRECSAM, "Council": CAERDYDD}

# Numbers that are not the report's own findings: a law's section or part, Wales's 22 councils,
# COVID-19. Number words before these nouns name a fixed framework ("the four principles of the
# 2014 Act", "the five elements of assessment"), not a count the inspectors made.
_FIXED_BEFORE = re.compile(r"(?:\b(?:section|part|act|chapter|article|regulation|code|covid|schedule)[\s-]*)$", re.I)
_FIXED_AFTER = re.compile(r"^\s+local\s+authorities\b", re.I)
_FRAMEWORK_NOUNS = ("principle", "element", "component", "pillar", "standard", "domain", "theme", "stage")
_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_MONTH_RE = "|".join(MONTHS)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_DATE_TOKEN = re.compile(rf"\b(?:(?P<month>{_MONTH_RE})|(?P<year>(?:19|20)\d{{2}}))\b")
_DAY_AHEAD = re.compile(
    rf"^(?:st|nd|rd|th)?(?:\s+(?:to|and|-|–|until)\s+(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?)?\s+(?:of\s+)?(?:{_MONTH_RE})\b"
)


@dataclass(frozen=True)
class Template:
    """A bundled report a copy is made from, and what in it names its council and date."""

    file: str
    short: str  # "Wrexham"
    official: str  # "Wrexham County Borough Council"
    year: int
    month: int  # the month of the inspection's end, as in the file name


@dataclass(frozen=True)
class SyntheticReport:
    """One synthetic copy: its file name and text, and what was put in it."""

    index: int  # j: copy j of the sequence
    name: str  # synthetic-<council-slug>-<yyyy-mm>.txt
    text: str
    council: str  # "Aberhenwen"
    official: str  # "Aberhenwen County Borough Council"
    year: int
    month: int
    template: str  # the bundled report it is made from
    month_shift: int  # months between the template's inspection and this one


def _template(file: str) -> Template:
    m = re.search(r"-(\d{4})-(\d{2})\.txt$", file)
    if not m:
        raise ValueError(f"{file}: a template's file name must end in -YYYY-MM.txt")
    short = {"ciw-wrexham-2020-10.txt": "Wrexham", "ciw-cardiff-2020-12.txt": "Cardiff"}[file]
    return Template(file, short, AUTHORITIES[short], int(m[1]), int(m[2]))


@lru_cache(maxsize=4)
def _template_text(file: str, reports_dir: str) -> str:
    return (Path(reports_dir) / file).read_text(encoding="utf-8")


def acronym(official: str) -> str:
    """'Wrexham County Borough Council' -> 'WCBC'.

    >>> acronym("Aberhenwen County Borough Council")
    'ACBC'
    """
    return "".join(w[0] for w in official.split() if w[:1].isupper())


# ---------------------------------------------------------------- the three changes


def rename_council(text: str, template: Template, name: str, official: str) -> str:
    """Every name of the template's council (official, acronym, short, Welsh) -> the fictional one."""
    text = re.sub(rf"\b{re.escape(template.official)}\b", official, text)
    text = re.sub(rf"\b{re.escape(acronym(template.official))}\b", acronym(official), text)
    for alt in name_alternatives(template.short):
        text = re.sub(rf"\b(?:{alt})\b", name, text, flags=re.I)
    return text


def _is_fixed(text: str, start: int, end: int) -> bool:
    """A number that must stay: a list marker, a law's section, COVID-19, a date's day, a year."""
    line_start = text.rfind("\n", 0, start) + 1
    if re.fullmatch(r"\s*(?:[-*•]\s*)?", text[line_start:start]) and text[end : end + 1] in (".", ")"):
        return True
    if _FIXED_BEFORE.search(text[max(0, start - 14) : start]):
        return True
    after = text[end : end + 60]
    return bool(_FIXED_AFTER.match(after) or _DAY_AHEAD.match(after))


def _new_number(n: int, rng: random.Random) -> int:
    if n <= 5:
        return rng.choice([m for m in range(max(1, n - 2), n + 5) if m != n])
    new = round(n * rng.uniform(0.6, 1.5))
    return new if new != n else n + 1


def perturb_numbers(text: str, rng: random.Random) -> str:
    """Change every count in the text (digits and number words), keeping fixed numbers and dates.

    >>> perturb_numbers("We read 50 files in 2020 under section 126.\\n1. Seven days: COVID-19", random.Random(1))
    'We read 36 files in 2020 under section 126.\\n1. Three days: COVID-19'
    """
    out: list[str] = []
    pos = 0
    # A range "16-20" moves as one (its width kept); a lone number on its own.
    for m in re.finditer(r"(?<![\w.,/-])(\d+)(?:-(\d+))?(?![\w/]|[.,]\d)", text):
        a = m[1]
        if _YEAR.fullmatch(a) or _is_fixed(text, m.start(), m.end()):
            continue
        if m[2] is not None and _YEAR.fullmatch(m[2]):
            continue
        new_a = _new_number(int(a), rng)
        repl = str(new_a) if m[2] is None else f"{new_a}-{new_a + int(m[2]) - int(a)}"
        out.append(text[pos : m.start()] + repl)
        pos = m.end()
    out.append(text[pos:])
    text = "".join(out)

    words = "|".join(_NUMBER_WORDS)

    def word(m: re.Match) -> str:
        if any(w.startswith(f) for w in m[2].lower().split() for f in _FRAMEWORK_NOUNS):
            return m[0]
        choice = rng.choice([w for w in _NUMBER_WORDS if w != m[1].lower()])
        if m[1][0].isupper():
            choice = choice.capitalize()
        return choice + m[0][len(m[1]) :]

    # Only a number word before a word (a count of something), lower-case or at a sentence start.
    return re.sub(rf"\b({words}|{words.title()})\b(\s+(?:[a-z]+\s+)?[a-z]+)", word, text)


def _shift(year: int, month: int, months: int) -> tuple[int, int]:
    n = year * 12 + (month - 1) + months
    return n // 12, n % 12 + 1


def shift_dates(text: str, months: int) -> str | None:
    """Move every date of the report by ``months``; None when a date range would straddle a new year.

    A month is moved with the year that follows it ("23 November to 3 December 2020": both months
    with 2020); a year on its own ("in 2018", "2019-2020") moves by the same amount, counted
    from mid-year. The years of Acts ("the 2014 Act", "Act 2005") are left alone.

    >>> shift_dates("From 23 November to 3 December 2020, as in 2019-2020 and the 2014 Act.", -9)
    'From 23 February to 3 March 2020, as in 2018-2019 and the 2014 Act.'
    >>> shift_dates("From 23 November to 3 December 2020.", 1) is None
    True
    """
    tokens = []
    for m in _DATE_TOKEN.finditer(text):
        if m["year"]:
            before, after = text[max(0, m.start() - 12) : m.start()], text[m.end() : m.end() + 6]
            if re.search(r"\bAct\s*$", before) or re.match(r"\s+Act\b", after):
                continue  # a law's name, not a date
        tokens.append(m)
    repl: dict[int, tuple[int, str]] = {}  # start -> (end, new text)
    standalone_shift = (6 + months) // 12
    for i, m in enumerate(tokens):
        if m["year"]:
            # Governed by the month just before it (if any): "October 2020", "3 December 2020".
            prev = tokens[i - 1] if i else None
            governed = prev is not None and prev["month"] and m.start() - prev.end() <= 2
            if governed or m.start() in repl:
                continue  # written with the month it belongs to
            repl[m.start()] = (m.end(), str(int(m["year"]) + standalone_shift))
            continue
        # A month: its year is the next year within the same phrase.
        nxt = next((t for t in tokens[i + 1 :] if t["year"]), None)
        if nxt is None or nxt.start() - m.end() > 40 or "." in text[m.end() : nxt.start()]:
            month = (MONTHS.index(m["month"]) + months) % 12
            repl[m.start()] = (m.end(), MONTHS[month])
            continue
        year, month = _shift(int(nxt["year"]), MONTHS.index(m["month"]) + 1, months)
        repl[m.start()] = (m.end(), MONTHS[month - 1])
        if nxt.start() in repl and repl[nxt.start()][1] != str(year):
            return None  # "23 December to 3 January 2021" would need two years
        repl[nxt.start()] = (nxt.end(), str(year))
    out, pos = [], 0
    for start in sorted(repl):
        end, new = repl[start]
        out.append(text[pos:start] + new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mark_synthetic(text: str, official: str) -> str:
    """Put :data:`MARKER` first, or just under the council's name when the report opens with it."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines and lines[first].strip().lower() == official.lower():
        return "\n".join(lines[: first + 1] + ["", MARKER] + lines[first + 1 :])
    return MARKER + "\n\n" + text


# ---------------------------------------------------------------- the sequence of copies


def _dates(council: int, seed: int) -> list[tuple[int, int]]:
    """(year, month) of each inspection of one council: every year once before any repeats."""
    rng = random.Random(f"arolwg-synthetic-dates:{seed}:{council}")
    months = {y: rng.sample(range(1, 13), 12) for y in YEARS}
    out = []
    for r in range(12):
        years = list(YEARS)
        rng.shuffle(years)
        out += [(y, months[y][r]) for y in years]
    return out


@lru_cache(maxsize=1024)
def _dated(file: str, reports_dir: str, months: int) -> str | None:
    return shift_dates(_template_text(file, reports_dir), months)


@lru_cache(maxsize=4096)
def _report(j: int, seed: int, reports_dir: str) -> SyntheticReport:
    if j < 0:
        raise ValueError("copy numbers start at 0")
    c, k = j % len(FICTIONAL), j // len(FICTIONAL)
    name, style = FICTIONAL[c]
    official = f"{name} {style}"
    template = _template(TEMPLATE_OF_STYLE[style])
    # Inspection k of council c: the k-th date of its sequence that every date in the text can move to.
    valid = 0
    for year, month in _dates(c, seed):
        shift = (year - template.year) * 12 + (month - template.month)
        dated = _dated(template.file, reports_dir, shift)
        if dated is None:
            continue
        if valid == k:
            break
        valid += 1
    else:
        raise ValueError(f"council {name} has no more than {valid} distinct inspection dates")
    rng = random.Random(f"arolwg-synthetic-numbers:{seed}:{j}")
    text = rename_council(dated, template, name, official)
    text = perturb_numbers(text, rng)
    text = mark_synthetic(text, official)
    file = f"synthetic-{name.lower()}-{year:04d}-{month:02d}.txt"
    return SyntheticReport(j, file, text, name, official, year, month, template.file, shift)


def synthetic_report(j: int, seed: int = 0, reports_dir: str | Path = BUNDLED_REPORTS_DIR) -> SyntheticReport:
    """Copy ``j`` of the sequence (deterministic for ``(j, seed)``)."""
    return _report(j, seed, str(Path(reports_dir).resolve()))


def max_reports() -> int:
    """The largest corpus :func:`make_corpus` can make (the two real reports included)."""
    return 2 + len(FICTIONAL) * len(YEARS) * 11  # 11 of 12 months always fit (see shift_dates)


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def make_corpus(
    n: int, folder: str | Path, *, seed: int = 0, reports_dir: str | Path = BUNDLED_REPORTS_DIR
) -> list[Path]:
    """Write a corpus of ``n`` reports into ``folder``: the two bundled ones, unchanged, and n - 2 copies.

    ``folder`` must be outside the repository and the bundled corpus (a temporary folder): the
    copies are test data, never to be shipped or shown as real reports.

    >>> import tempfile
    >>> [p.name for p in make_corpus(3, tempfile.mkdtemp())]
    ['ciw-cardiff-2020-12.txt', 'ciw-wrexham-2020-10.txt', 'synthetic-aberhenwen-2023-02.txt']
    """
    folder = Path(folder)
    if n < 2:
        raise ValueError("a corpus holds at least the two real reports (n >= 2)")
    if n > max_reports():
        raise ValueError(f"at most {max_reports()} reports can be made (asked for {n})")
    if _inside(folder, Path(reports_dir)) or _inside(folder, BUNDLED_REPORTS_DIR) or (
        (REPO_DIR / "pyproject.toml").exists() and _inside(folder, REPO_DIR)
    ):
        raise ValueError(f"{folder}: synthetic reports are written outside the repository (use a temporary folder)")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for real in REAL_REPORTS:
        paths.append(Path(shutil.copyfile(Path(reports_dir) / real, folder / real)))
    for j in range(n - 2):
        r = synthetic_report(j, seed, reports_dir)
        path = folder / r.name
        path.write_text(r.text, encoding="utf-8")
        paths.append(path)
    log.info("wrote %d reports (%d synthetic) to %s", len(paths), n - 2, folder)
    return paths


def copy_named(name: str, seed: int = 0, reports_dir: str | Path = BUNDLED_REPORTS_DIR) -> SyntheticReport | None:
    """The synthetic copy whose file name is ``name`` (None: not a copy of this seed's sequence).

    >>> copy_named("synthetic-aberhenwen-2023-02.txt").index, copy_named("ciw-wrexham-2020-10.txt")
    (0, None)
    """
    m = re.fullmatch(r"synthetic-([a-z]+)-\d{4}-\d{2}\.txt", name)
    slugs = [n.lower() for n, _ in FICTIONAL]
    if not m or m[1] not in slugs:
        return None
    c = slugs.index(m[1])
    # Council c's copies are j = c, c + 22, c + 44, ...: its inspections in date order.
    for k in range(len(YEARS) * 11):
        r = synthetic_report(k * len(FICTIONAL) + c, seed, reports_dir)
        if r.name == name:
            return r
    return None


def councils_holding(source: str, quote: str, copies: Iterable[SyntheticReport], *, reports_dir: str | Path = BUNDLED_REPORTS_DIR) -> list[str]:
    """The councils (short names) of a corpus of the bundled reports and ``copies`` with a report
    holding ``quote``, a passage of the bundled report ``source``: that report's own council, and
    each fictional council with a copy of ``source`` in which the quote, its council renamed,
    still stands.

    A copy whose numbers or dates in the quote were perturbed or moved does not hold it (it no
    longer states that finding), so its council is not counted.

    >>> councils_holding(WRECSAM, "Advocacy support is available", [synthetic_report(j) for j in range(3)])
    ['Wrexham', 'Aberhenwen', 'Dolgarregog']
    """
    from eval.dataset import locate

    if source not in REAL_REPORTS:
        raise ValueError(f"{source}: not a bundled report a synthetic copy is made from")
    if not locate(_template_text(source, str(Path(reports_dir).resolve())), quote)[0]:
        raise ValueError(f"the quote {quote[:60]!r} is not in {source}")
    template = _template(source)
    out = [template.short]
    for r in copies:
        if r.template != source or r.council in out:
            continue
        if locate(r.text, rename_council(quote, template, r.council, r.official))[0]:
            out.append(r.council)
    return out
