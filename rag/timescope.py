"""Time as a report filter: the filter keys, the reports they allow, and the time words of a question.

A report's inspection dates (``ReportMeta.start`` / ``.end``, ISO) are what the filters test:

* ``{"year": 2016}`` (or a list of years) and ``{"month": "2020-10"}``: inspections that overlap
  that year or month;
* ``{"since": "2018"}``: inspections that ended in 2018 or later; ``{"before": "2019"}``:
  inspections that started before 2019 (a year, "YYYY-MM" or "YYYY-MM-DD");
* ``{"latest": True}``: the newest report of each council among those the other filters allow;
  ``{"previous": True}``: the one before it; with a time ("in 2020, compared with the previous
  inspection"), each council's report of that time and the one before it.

A report whose dates could not be found is left out by every time filter. A question's own time
words ("in 2016", "in October 2020", "since 2018", "before 2019", "the latest inspection", "at
its last inspection", "the previous inspection") become the same filters (:func:`time_words`),
and are taken out of the text that is searched, as council names are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.meta import MONTH_NAMES, short_name
from index.types import ReportMeta

TIME_KEYS = ("year", "month", "since", "before", "latest", "previous")
_PERIOD_RX = re.compile(r"^(?:19|20)\d{2}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?)?$")


def period(value: object) -> str | None:
    """A year, month or day as an ISO prefix ("2018", "2018-06", "2018-06-01"), or None if it is none.

    >>> period(2016), period("2020-10"), period("last year")
    ('2016', '2020-10', None)
    """
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return text if _PERIOD_RX.match(text) else None


def check_time_filter(key: str, value: object) -> str | None:
    """What is wrong with a time filter's value (a phrase for an error sentence), or None."""
    if key in ("latest", "previous"):
        return None if isinstance(value, bool) else "true or false"
    values = value if isinstance(value, (list, tuple)) and key in ("year", "month") else [value]
    if key == "year":
        ok = all(isinstance(v, (int, str)) and period(v) is not None and len(str(v).strip()) == 4 for v in values)
        return None if ok and values else "a year such as 2016 (or a list of years)"
    if key == "month":
        ok = all(isinstance(v, str) and period(v) is not None and len(v.strip()) == 7 for v in values)
        return None if ok and values else 'a month such as "2020-10" (or a list of months)'
    return None if period(value) is not None else 'a year, month or day such as "2018", "2018-06" or "2018-06-01"'


def _span(meta: ReportMeta) -> tuple[str, str] | None:
    """The inspection's (start, end), the end padded so that "2020-10" covers every day of October."""
    return (meta.start, meta.end + "\uffff") if meta.start else None


def _overlaps(span: tuple[str, str], p: str) -> bool:
    n = len(p)
    return span[0][:n] <= p <= span[1][:n]


def _listed(value: object) -> list:
    return [] if value in (None, [], ()) else list(value) if isinstance(value, (list, tuple)) else [value]


def _newest_first(metas: list[ReportMeta]) -> list[ReportMeta]:
    return sorted(metas, key=lambda m: (m.start, m.end, m.report_id), reverse=True)


def apply_time(reports: dict[str, ReportMeta], ids: list[str], filters: dict | None) -> list[str]:
    """The report ids of ``ids`` that the time filters in ``filters`` allow (order kept)."""
    if not filters or not any(filters.get(k) not in (None, False, [], ()) for k in TIME_KEYS):
        return ids
    dated = every_dated = [i for i in ids if _span(reports[i])]
    wanted = [p for key in ("year", "month") for p in map(period, _listed(filters.get(key))) if p]
    if wanted:  # any of the years and months asked for
        dated = [i for i in dated if any(_overlaps(_span(reports[i]), p) for p in wanted)]
    if (p := period(filters.get("since"))) is not None:
        dated = [i for i in dated if _span(reports[i])[1][: len(p)] >= p]
    if (p := period(filters.get("before"))) is not None:
        dated = [i for i in dated if _span(reports[i])[0][: len(p)] < p]
    if filters.get("previous") and (wanted or filters.get("since") or filters.get("before")):
        return _with_previous(reports, every_dated, set(dated))
    if filters.get("previous") and filters.get("latest"):  # "compared with the previous inspection"
        return _with_previous(reports, every_dated, {ms[0].report_id for ms in _per_council(reports, dated)})
    rank = 1 if filters.get("previous") else 0 if filters.get("latest") else None
    if rank is not None:
        keep = {ms[rank].report_id for ms in _per_council(reports, dated) if len(ms) > rank}
        dated = [i for i in dated if i in keep]
    return dated


def _per_council(reports: dict[str, ReportMeta], ids: list[str]) -> list[list[ReportMeta]]:
    """The reports ``ids`` grouped by council, each group newest first."""
    by_council: dict[str, list[ReportMeta]] = {}
    for i in ids:
        by_council.setdefault(reports[i].authority, []).append(reports[i])
    return [_newest_first(ms) for ms in by_council.values()]


def _with_previous(reports: dict[str, ReportMeta], ids: list[str], of_time: set[str]) -> list[str]:
    """Each council's newest report of the time asked about and the one before it.

    "How many staff answered in 2020, compared with the previous inspection?": "previous" is
    the inspection before the 2020 one, not before the latest, and both are asked about (the two
    read one after the other would leave no report at all).
    """
    keep: set[str] = set()
    for ms in _per_council(reports, ids):
        at = next((n for n, m in enumerate(ms) if m.report_id in of_time), None)
        if at is not None:
            keep.update(m.report_id for m in ms[at : at + 2])
    return [i for i in ids if i in keep]


def describe(filters: dict) -> str:
    """The time filters in words, for a sentence: "in 2016", "since 2018", "the latest".

    >>> describe({"year": 2016}), describe({"month": "2020-10"}), describe({"since": "2018", "before": "2020"})
    ('in 2016', 'in October 2020', 'since 2018 and before 2020')
    """
    return " and ".join(_phrases(filters, " or ", previous="the inspection before the latest", latest="the latest",
                                 both="the latest and the inspection before it"))


def _phrases(filters: dict, either: str, *, previous: str, latest: str, both: str) -> list[str]:
    """The time filters as phrases ("in 2016", "since June 2018", then ``previous`` or ``latest``),
    the months and years asked for joined by ``either``: :func:`describe` and :func:`phrase_of`
    word them alike, one for a sentence, the other to be read back as a question's time words."""
    bits = []
    wanted = [_words(period(v) or str(v)) for key in ("month", "year") for v in _listed(filters.get(key))]
    if wanted:
        bits.append("in " + either.join(wanted))
    for key in ("since", "before"):
        if (p := period(filters.get(key))) is not None:
            bits.append(f"{key} {_words(p)}")
    if filters.get("previous") and filters.get("latest") and not bits:
        bits.append(both)
    elif filters.get("previous"):
        bits.append(previous)
    elif filters.get("latest"):
        bits.append(latest)
    return bits


def _words(p: str) -> str:
    """'2020-10' -> 'October 2020', '2020-10-05' -> '5 October 2020'."""
    bits = p.split("-")
    if len(bits) == 1:
        return p
    month = MONTH_NAMES[int(bits[1]) - 1]
    return f"{int(bits[2])} {month} {bits[0]}" if len(bits) == 3 else f"{month} {bits[0]}"


def date_label(meta: ReportMeta) -> str:
    """A report's inspection as a short label: "Oct 2020", "Nov-Dec 2020", "Dec 2020-Jan 2021", "undated".

    >>> date_label(ReportMeta("r", "", "", "", "23 November - 3 December 2020", ""))
    'Nov-Dec 2020'
    """
    if not meta.start:
        return "undated"

    def mon(iso: str) -> str:
        return MONTH_NAMES[int(iso[5:7]) - 1][:3] if len(iso) >= 7 else ""

    (y1, m1), (y2, m2) = (meta.start[:4], mon(meta.start)), (meta.end[:4], mon(meta.end))
    if y1 != y2:
        return f"{m1} {y1}-{m2} {y2}".replace(" -", "-").strip() if m1 else f"{y1}-{y2}"
    if m1 and m2 and m1 != m2:
        return f"{m1}-{m2} {y1}"
    return f"{m1} {y1}".strip()


def report_label(meta: ReportMeta) -> str:
    """How an answer line names the report it quotes: "Cardiff, Nov-Dec 2020"."""
    return f"{short_name(meta.authority) or meta.report_id}, {date_label(meta)}"


def newest_first(reports: dict[str, ReportMeta], ids) -> list[str]:
    """Report ids, newest inspection first (undated ones last)."""
    return [m.report_id for m in _newest_first([reports[i] for i in ids])]


# ---------------------------------------------------------------- time words in questions

_MON = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)"
)
# A year, or a month and year, that is not part of a law's name ("the 2014 Act") or a span ("2019-20").
_WHEN = rf"(?:(?P<mon>{_MON})\.?\s+)?(?P<year>(?:19|20)\d{{2}})(?![-–/]\d)(?!\s+Act\b)"
_NOUN = r"(?:inspections?|reports?|visits?|reviews?|checks?|evaluations?)"
_DET = r"(?:(?:the|its|their|this|that|a)\s+)"
_MID = r"(?P<mid>(?:(?!inspect|report|visit|review|check|evaluation)[\w'’-]+\s+){0,3}?)"


@dataclass(frozen=True)
class TimeWords:
    """A question's time words as filters, and the question without them."""

    filters: dict
    text: str  # the question with the time words taken out
    phrase: str  # the same scope in canonical words, e.g. "in 2016", "at its latest inspection"


def _iso_of(m: re.Match) -> str:
    year = m["year"]
    if m["mon"]:
        name = m["mon"].rstrip(".").lower()
        month = next(i for i, n in enumerate(MONTH_NAMES, 1) if n.lower().startswith(name[:3]))
        return f"{year}-{month:02d}"
    return year


def _next(p: str) -> str:
    """The period just after ``p``: '2018' -> '2019', '2020-12' -> '2021-01'."""
    if len(p) == 4:
        return str(int(p) + 1)
    y, mo = int(p[:4]), int(p[5:7])
    return f"{y + mo // 12}-{mo % 12 + 1:02d}"


_ONE = rf"(?:{_MON}\.?\s+)?(?:19|20)\d{{2}}(?![-–/]\d)(?!\s+Act\b)"
_LIST = rf"(?P<list>{_ONE}(?:\s*(?:,|and|or)\s*{_ONE})*)"
_ONE_RX = re.compile(rf"(?:(?P<mon>{_MON})\.?\s+)?(?P<year>(?:19|20)\d{{2}})", re.I)
_AFTER_NOUN = r"(?:\s+(?:of|in|for|at)\b)?"
# Words that set a previous inspection against the latest, just before it: "compared with the previous one".
_VERSUS = re.compile(r"\b(?:compared?\s+(?:with|to)|comparison\s+with|comparing\s+\w+\s+with|than|versus|vs\.?)\s*$", re.I)
_PREP = r"(?:at|in|during|from|of)"
# A time phrase that starts with a preposition or determiner, not with the inspection's own words.
_LEAD = re.compile(rf"(?:{_PREP}|for)\s|{_DET}", re.I)

# Each rule: a pattern, what it means, and whether its words leave the search text. Order
# matters: a rule's matches are taken out before the next rule looks.
# ("the previous one", "the latest one": "one" is an inspection, in a conversation about inspections.)
_RULES: tuple[tuple[re.Pattern, str, bool], ...] = (
    # "since the last inspection" asks what the latest report says changed: keep the words.
    (re.compile(rf"\bsince\s+(?:(?:the|its|their|CIW's|CIW’s)\s+)?(?:last|previous|earlier|prior|latest|most\s+recent)\s+{_NOUN}\b", re.I), "latest", False),
    (re.compile(rf"\b(?:{_PREP}\s+)?{_DET}?(?:latest|most\s+recent|newest|last|current|recent)\s+(?:{_MID}{_NOUN}|one)\b{_AFTER_NOUN}", re.I), "latest", True),
    (re.compile(r"\b(?:last|most\s+recently)(?=\s+(?:inspected|visited|reviewed)\b)", re.I), "latest", True),
    (re.compile(rf"\b(?:{_PREP}\s+)?{_DET}?(?:previous|earlier|prior|preceding|older|last-but-one)\s+(?:{_MID}{_NOUN}|one)\b{_AFTER_NOUN}", re.I), "previous", True),
    (re.compile(rf"\b(?:between|from)\s+{_WHEN}\s+(?:and|to|until)\s+(?P<mon2>{_MON})?\.?\s*(?P<year2>(?:19|20)\d{{2}})(?![-–/]\d)\b", re.I), "range", True),
    (re.compile(rf"\b(?:since|from)\s+(?:(?:the\s+)?(?:start|beginning)\s+of\s+)?{_WHEN}\b", re.I), "since", True),
    (re.compile(rf"\bafter\s+{_WHEN}\b", re.I), "after", True),
    (re.compile(rf"\b(?:before|until|up\s+to|prior\s+to)\s+{_WHEN}\b", re.I), "before", True),
    (re.compile(rf"\b(?:in|during|of|for)\s+(?:the\s+)?{_LIST}(?:\s+{_NOUN}{_AFTER_NOUN})?\b", re.I), "during", True),
    (re.compile(rf"\b(?:the\s+)?{_LIST}\s+{_NOUN}\b{_AFTER_NOUN}", re.I), "during", True),
)


def time_words(question: str, *, months: bool = True) -> TimeWords | None:
    """The time the question asks about, as report filters, or None when it names no time.

    >>> t = time_words("What did the latest Wrexham inspection find about advocacy?")
    >>> t.filters, t.text, t.phrase
    ({'latest': True}, 'What did Wrexham find about advocacy?', 'at its latest inspection')
    >>> time_words("What did CIW find in Cardiff in October 2020?").filters
    {'month': ['2020-10']}
    >>> time_words("What does the 2014 Act require?") is None
    True

    With ``months=False`` a month ("Who did CIW meet in February 2020?") is taken as the date of
    an event the report tells of: it scopes the question to the inspections of that year, and its
    words stay in the search text.
    """
    filters: dict = {}
    text = question
    kept: list[str] = []  # words that set a filter but stay searched, held out of later rules
    versus = False  # "previous" compared with: "than the previous inspection"
    for rx, meaning, strip_rule in _RULES:
        while (m := rx.search(text)) is not None:
            strip = strip_rule
            if meaning in ("latest", "previous"):
                filters[meaning] = True
                versus = versus or (meaning == "previous" and bool(_VERSUS.search(text[: m.start()])))
            elif meaning == "range":
                filters["since"] = _iso_of(m)
                month = next((i for i, n in enumerate(MONTH_NAMES, 1) if m["mon2"] and n.lower().startswith(m["mon2"].lower()[:3])), 0)
                filters["before"] = _next(m["year2"] + (f"-{month:02d}" if month else ""))
            elif meaning == "since":
                filters["since"] = _iso_of(m)
            elif meaning == "after":
                filters["since"] = _next(_iso_of(m))
            elif meaning == "before":
                p = _iso_of(m)
                filters["before"] = _next(p) if m[0].lower().startswith(("until", "up")) else p
            else:
                for one in _ONE_RX.finditer(m["list"]):
                    p = _iso_of(one)
                    if months or len(p) == 4:
                        filters.setdefault("month" if len(p) > 4 else "year", []).append(p if len(p) > 4 else int(p))
                    elif int(p[:4]) not in filters.setdefault("year", []):
                        filters["year"].append(int(p[:4]))  # an event's month: the inspection's year
                if not months and any(one["mon"] for one in _ONE_RX.finditer(m["list"])):
                    strip = False
            before = text[: m.start()]
            if strip:
                keep = (m["mid"] or "") if "mid" in rx.groupindex else ""
                if meaning in ("latest", "previous", "during") and not _LEAD.match(m[0]):
                    # "Wrexham's latest inspection": the inspection gone, its possessive has no noun left.
                    before = re.sub(r"(?:'s|’s)\s*$", " ", before)
            else:
                kept.append(m[0])
                keep = f"\x01{len(kept) - 1}\x01"
            text = f"{before} {keep} {text[m.end() :]}"
    if not filters:
        return None
    if set(filters) == {"previous"} and versus:
        filters["latest"] = True  # "compared with the previous inspection": the latest and the one before it
    text = re.sub(r"\x01(\d+)\x01", lambda k: kept[int(k[1])], text)
    text = re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s{2,}", " ", text)).strip().lstrip(",;: ")
    return TimeWords(filters, text, phrase_of(filters))


def phrase_of(filters: dict) -> str:
    """Canonical words for time filters, which :func:`time_words` reads back as the same filters.

    >>> phrase_of({"year": [2016]}), phrase_of({"latest": True}), phrase_of({"since": "2018-06"})
    ('in 2016', 'at its latest inspection', 'since June 2018')
    """
    return " ".join(_phrases(filters, " and ", previous="at its previous inspection", latest="at its latest inspection",
                             both="at its latest inspection compared with the previous one"))


def strip_time(text: str) -> str:
    """``text`` without its time words (unchanged when it has none)."""
    t = time_words(text)
    return t.text if t else text


# ---------------------------------------------------------------- answers that say which report


def dated_labels(reports: dict[str, ReportMeta], quoted) -> bool:
    """Must lines quoting these reports name each report's date: does the index hold several
    reports of a council they are from?"""
    councils = {reports[rid].authority for rid in quoted}
    seen: set[str] = set()
    for m in reports.values():
        if m.authority in councils:
            if m.authority in seen:
                return True
            seen.add(m.authority)
    return False


def line_groups(scope, reports: dict[str, ReportMeta], picks: list[list[int]], report_of) -> tuple[list[list[int]], list[str]]:
    """An answer's sentences (``picks``: rows per scope group) as lines, and each line's label.

    Lines say whose words they are: a comparison's groups by council; a question that names no
    council, searched in reports of several, by council (in the order they first appear). When
    the index holds several reports of a council that the answer quotes, each report's sentences
    are a line of their own labelled with council and date ("Cardiff, Nov-Dec 2020"), newest
    first, so nothing from an older inspection reads as current. ``report_of(row)`` is the report
    a sentence row is from.
    """
    searched = {rid for g in scope.groups for rid in g}
    if scope.comparison:
        groups, labels = [list(g) for g in picks], [short_name(a) for a in scope.labels]
    elif not scope.labels[0] and len({reports[r].authority for r in searched}) > 1:
        by_council: dict[str, list[int]] = {}
        for row in picks[0]:
            by_council.setdefault(reports[report_of(row)].authority, []).append(row)
        groups, labels = list(by_council.values()), [short_name(a) for a in by_council]
    else:
        groups, labels = [list(g) for g in picks], [""] * len(picks)
    if not dated_labels(reports, [report_of(row) for g in groups for row in g]):
        return groups, labels
    out_groups: list[list[int]] = []
    out_labels: list[str] = []
    for rows in groups:
        by_report: dict[str, list[int]] = {}
        for row in rows:
            by_report.setdefault(report_of(row), []).append(row)
        for rid in newest_first(reports, by_report):
            out_groups.append(by_report[rid])
            out_labels.append(report_label(reports[rid]))
    return out_groups, out_labels
