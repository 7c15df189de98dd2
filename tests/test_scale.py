"""The scale benchmark: its synthetic corpus is distinct from the real reports, and a tiny run writes every result.

No speed is asserted here: the benchmark measures speed, the tests check what it writes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from eval.synthetic import (
    FICTIONAL,
    MARKER,
    MONTHS,
    REAL_REPORTS,
    acronym,
    make_corpus,
    max_reports,
    synthetic_report,
)
from index.clean import clean_text
from index.meta import AUTHORITIES, detect_meta, name_alternatives

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "index" / "reports"


def real_names() -> list[str]:
    """A regex alternative for every name of Wales's 22 councils: short, official, Welsh and other names."""
    out = []
    for short, official in AUTHORITIES.items():
        out += [re.escape(official), *name_alternatives(short)]
    return out


def names_in(text: str) -> set[str]:
    return {m.group(0) for alt in real_names() for m in re.finditer(rf"\b(?:{alt})\b", text, re.I)}


def expected_dates(r) -> str:
    """What detect_meta must find: the templates' ranges, moved to the copy's month."""
    if r.template == "ciw-wrexham-2020-10.txt":
        return f"12-23 {MONTHS[r.month - 1]} {r.year}"
    return f"23 {MONTHS[r.month - 2]} - 3 {MONTHS[r.month - 1]} {r.year}"


def month_years(text: str) -> list[tuple[str, int]]:
    return [(m, int(y)) for m, y in re.findall(rf"\b({'|'.join(MONTHS)})\s+(\d{{4}})\b", text)]


def shifted(month: str, year: int, months: int) -> tuple[str, int]:
    n = year * 12 + MONTHS.index(month) + months
    return MONTHS[n % 12], n // 12


def test_the_first_copies_are_pinned():
    # Fictional council, its official name, date and template of the first copies for seed 0.
    got = [(r.name, r.official, r.template) for r in map(synthetic_report, range(6))]
    assert got == [
        ("synthetic-aberhenwen-2023-02.txt", "Aberhenwen County Borough Council", "ciw-wrexham-2020-10.txt"),
        ("synthetic-bryndewin-2018-10.txt", "Bryndewin Council", "ciw-cardiff-2020-12.txt"),
        ("synthetic-dolgarregog-2025-11.txt", "Dolgarregog County Borough Council", "ciw-wrexham-2020-10.txt"),
        ("synthetic-cwmtawelog-2025-12.txt", "Cwmtawelog Council", "ciw-cardiff-2020-12.txt"),
        ("synthetic-glanmeirion-2019-10.txt", "Glanmeirion County Borough Council", "ciw-wrexham-2020-10.txt"),
        ("synthetic-caerwennol-2021-10.txt", "Caerwennol Council", "ciw-cardiff-2020-12.txt"),
    ]


def test_fictional_councils_are_no_welsh_council():
    names = [n for n, _ in FICTIONAL]
    assert len(names) == len(set(names)) == 22
    real = real_names()
    real_acronyms = {acronym(o) for o in AUTHORITIES.values()}
    for name, style in FICTIONAL:
        official = f"{name} {style}"
        assert not names_in(official), official
        assert not any(re.fullmatch(alt, name, re.I) for alt in real), name
        # Each real council is recognised by its own name only: the fictional one is found as itself.
        assert detect_meta("x.txt", "", f"{official}.\n\nWe inspected {name} in May 2021.").authority == official
        if style == "County Borough Council":
            assert acronym(official) not in real_acronyms, official


def test_corpus_is_the_real_reports_plus_distinct_copies(tmp_path):
    paths = make_corpus(24, tmp_path / "corpus")
    assert [p.name for p in paths[:2]] == list(REAL_REPORTS)
    for real in REAL_REPORTS:  # copied unchanged
        assert (tmp_path / "corpus" / real).read_bytes() == (REPORTS / real).read_bytes()
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == sorted(p.name for p in paths)
    copies = [synthetic_report(j) for j in range(22)]
    assert [p.name for p in paths[2:]] == [r.name for r in copies]
    assert len({r.council for r in copies}) == 22  # the first 22 copies: one per fictional council
    templates = {f: (REPORTS / f).read_text(encoding="utf-8") for f in REAL_REPORTS}
    for r, path in zip(copies, paths[2:], strict=True):
        text = path.read_text(encoding="utf-8")
        assert text == r.text
        original = templates[r.template]
        # No real council's name is left, in any form.
        assert names_in(text) == set(), r.name
        assert "WCBC" not in text
        short = "Cardiff" if r.template == "ciw-cardiff-2020-12.txt" else "Wrexham"
        assert text.count(r.council) == original.count(short)  # every mention renamed
        # Marked as test data, and the metadata is the fictional council's and the new date.
        assert MARKER in text.split("Introduction")[0]
        meta = detect_meta(r.name, text, clean_text(text).text)
        assert (meta.authority, meta.dates) == (r.official, expected_dates(r))
        assert meta.kind == detect_meta(r.template, original, clean_text(original).text).kind
        assert meta.title.startswith(f"{r.official}: {MARKER}")
        assert r.year in range(2016, 2026) and r.year != 2020
        assert r.name == f"synthetic-{r.council.lower()}-{r.year}-{r.month:02d}.txt"
        # Every date moved by the same number of months (the year of the Acts stays).
        assert r.month_shift == (r.year - 2020) * 12 + r.month - int(r.template[-6:-4])
        assert month_years(text) == [shifted(m, y, r.month_shift) for m, y in month_years(original)]
        assert "12 and 23 of October 2020" not in text and "23 November to 3 December 2020" not in text
        assert text.count("2014 Act") == original.count("2014 Act")
        # Fixed numbers stay: list numbering, Wales's 22 councils, section 126, COVID-19.
        assert re.findall(r"(?m)^(?:- )?\d+[.)]", text) == re.findall(r"(?m)^(?:- )?\d+[.)]", original)
        for fixed in ("22 local authorities", "section 126", "COVID-19", "Mental Capacity Act 2005", "Part 10"):
            assert text.count(fixed) == original.count(fixed), (r.name, fixed)
        # Counts are perturbed: the same sentences state other numbers.
        if r.template == "ciw-wrexham-2020-10.txt":
            (n,) = re.findall(r"In the (\d+) children's case files we reviewed", text)
            assert n != "32"
            (days,) = re.findall(r"inspectors spent (\w+) working days", text)
            assert days != "seven"
        else:
            got = re.findall(r"we reviewed (\d+) case files and followed (\d+)", text)[0]
            got += tuple(re.findall(r"- (\d+) responded to the survey", text))
            assert len(got) == 5 and all(a != b for a, b in zip(got, ("50", "14", "213", "65", "89")))
            lo, hi = map(int, re.findall(r"provision for (\d+)-(\d+) year olds", text)[0])
            assert hi - lo == 4 and lo != 16


def test_corpus_is_deterministic_and_grows_by_one(tmp_path):
    a = make_corpus(9, tmp_path / "a", seed=0)
    b = make_corpus(9, tmp_path / "b", seed=0)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    smaller = make_corpus(6, tmp_path / "c", seed=0)
    assert [p.read_bytes() for p in smaller] == [p.read_bytes() for p in a[:6]]
    other = make_corpus(9, tmp_path / "d", seed=1)
    assert [p.read_bytes() for p in other[:2]] == [p.read_bytes() for p in a[:2]]  # the real reports
    assert all(x.read_text() != y.read_text() for x, y in zip(a[2:], other[2:], strict=True))
    # A council's inspections are of different years before any year repeats.
    years = [synthetic_report(j).year for j in range(0, 22 * 9, 22)]
    assert sorted(years) == [2016, 2017, 2018, 2019, 2021, 2022, 2023, 2024, 2025]
    names = {synthetic_report(j).name for j in range(1000)}
    assert len(names) == 1000 and max_reports() >= 1000


def test_corpus_is_never_written_into_the_repository(tmp_path):
    for folder in (REPORTS, REPO / "eval" / "results" / "corpus"):
        with pytest.raises(ValueError, match="outside the repository"):
            make_corpus(3, folder)
    assert sorted(p.name for p in REPORTS.iterdir()) == sorted(REAL_REPORTS)
    with pytest.raises(ValueError):
        make_corpus(1, tmp_path / "x")


def test_eval_cli_has_the_scale_options():
    from rag.cli import build_parser

    args = build_parser().parse_args(["eval", "--scale", "2,100", "--scale-questions", "10", "--out", "o"])
    assert (args.scale, args.scale_questions, args.scale_seed, args.scale_keep) == ("2,100", 10, 0, False)
    assert build_parser().parse_args(["eval"]).scale is None


def test_parse_ns():
    from eval.scale import parse_ns

    assert parse_ns("1000, 2,100,100") == [2, 100, 1000]
    for bad in ("", "1", "two", f"{max_reports() + 1}"):
        with pytest.raises(ValueError):
            parse_ns(bad)


def _real_texts() -> dict[str, str]:
    return {f: (REPORTS / f).read_text(encoding="utf-8") for f in REAL_REPORTS}


def test_which_councils_of_a_synthetic_corpus_are_the_copies_holding_the_finding():
    from eval.scale_which import WHICH_QA, which_items
    from eval.synthetic import CAERDYDD, WRECSAM, copy_named, councils_holding

    texts = _real_texts()
    gold = [json.loads(line) for line in WHICH_QA.read_text(encoding="utf-8").splitlines() if '"kind": "which"' in line]
    two = which_items(WHICH_QA, texts, REAL_REPORTS)
    assert [(i.id, i.councils) for i in two] == [(g["id"], tuple(g["councils"])) for g in gold]
    copies = [synthetic_report(j) for j in (1, 2, 3, 5, 8, 13, 21, 22, 23, 40)]
    # A copy is known by its file name; other files of the index are no council's copies.
    assert [copy_named(c.name) for c in copies] == copies and copy_named("synthetic-nowhere-2020-01.txt") is None
    for item in which_items(WHICH_QA, texts, [*REAL_REPORTS, "other.pdf", *(c.name for c in copies)]):
        # Every gold quote of these questions survives the copying (none is a perturbed number or a
        # moved date), so each copy of a report holding the finding counts, and no other.
        sources = {e.source for e in item.evidence}
        copied = list(dict.fromkeys(c.council for c in copies if c.template in sources))
        original = next(g["councils"] for g in gold if g["id"] == item.id)
        assert sorted(item.councils) == sorted(original + copied) and len(set(item.councils)) == len(item.councils), item.id
    # A finding whose count the copies perturb is held by the real report's council alone.
    assert councils_holding(CAERDYDD, "In total we reviewed 50 case files", copies) == ["Cardiff"]
    assert councils_holding(WRECSAM, "Advocacy support is available", copies[:3]) == ["Wrexham", "Dolgarregog"]
    with pytest.raises(ValueError, match="is not in"):
        councils_holding(WRECSAM, "Advocacy is unknown here", copies)


def test_tiny_scale_run_writes_every_result(tmp_path, embeddings):
    from eval.scale import COLUMNS, EXTRA_FIELDS, run_scale, select_questions
    from eval.scale_which import WHICH_QA, which_items

    out, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    result = run_scale([2, 4], questions=2, out_dir=out, isolate=False, embeddings=embeddings, work_dir=work)
    assert (result.json_path, result.markdown_path, result.chart_path) == (out / "scale.json", out / "scale.md", out / "scale.png")
    assert sorted(p.name for p in out.iterdir()) == ["scale.json", "scale.md", "scale.png"]
    assert list(work.iterdir()) == []  # each N's corpus and index are removed

    data = json.loads((out / "scale.json").read_text())
    assert sorted(data) == ["meta", "rows", "targets", "warnings"]
    assert data["warnings"] == []
    rows = data["rows"]
    assert [r["n"] for r in rows] == [2, 4]  # N=2, the targets' baseline, is always measured
    real_chars = sum(len((REPORTS / f).read_text(encoding="utf-8")) for f in REAL_REPORTS)
    for r in rows:
        assert set(r) == {k for k, _, _ in COLUMNS} | set(EXTRA_FIELDS)
        for key, _, kind in COLUMNS:
            value = r[key]
            if kind == "load":
                assert len(value) == 3 and all(isinstance(x, float) and x >= 0 for x in value)
            elif kind == "int":
                assert isinstance(value, int) and value > 0, key
            elif kind == "score":
                assert isinstance(value, float | int) and 0 <= value <= 1, key
            else:
                assert isinstance(value, float) and value > 0 and math.isfinite(value), key
        for key, types in EXTRA_FIELDS.items():
            assert isinstance(r[key], types), key
        assert r["synthetic"] == r["n"] - 2
        assert r["questions"] == 2 and r["answerable"] <= 2
        assert r["index_over_raw"] == pytest.approx(r["index_s"] / r["raw_encode_s"])
        assert r["first_answer_s"] > r["first_query_s"] > 0
        assert r["query_peak_rss_mb"] >= r["first_answer_rss_mb"] > 100
        assert r["first_answer_abstained"] is False
        assert r["first_answer_sources"] == ["ciw-cardiff-2020-12.txt"]
        assert r["isolated"] is False and r["warnings"] == []
        assert r["metrics"]["recall@5"] == r["recall@5"] and r["metrics"]["latency_p95_s"] == r["query_p95_s"]
        # Two "which councils" questions, spread over the set; their councils those of this N's corpus.
        # The index queried holds the copies of the build less the one removed, plus the one added.
        held = [*REAL_REPORTS, *(synthetic_report(j).name for j in range(1, r["n"] - 1))]
        items = select_questions(which_items(WHICH_QA, _real_texts(), held), 2)
        assert r["which_questions"] == 2 and sorted(r["which"]) == sorted(i.id for i in items)
        for item in items:
            got = r["which"][item.id]
            assert got["expected"] == len(item.councils) and sorted(got["missed"] + got["extra"]) == sorted(
                set(got["missed"]) | set(got["extra"])
            )
            assert got["cited"] == got["expected"] - len(got["missed"]) + len(got["extra"])
    two, four = rows
    assert (two["chars"], two["windows"]) == (real_chars, 50)
    copies = [synthetic_report(j) for j in range(3)]
    assert four["chars"] == real_chars + len(copies[0].text) + len(copies[1].text)
    assert four["windows"] == 50 + sum(math.ceil(len(c.text) / 900) for c in copies[:2])
    # Add the next copy; remove the first synthetic report of the build (N=2 has none: the one just added).
    assert (two["added"], two["removed"]) == (copies[0].name, copies[0].name)
    assert (four["added"], four["removed"]) == (copies[2].name, copies[0].name)
    assert four["passages"] > two["passages"] > 100

    assert [t["target"] for t in data["targets"]] == [
        "whole index / raw encoding of the same text <= 1.5x",
        "add one report to the built index <= 10 s",
        "remove one report <= 5 s",
        "new process to first answer <= 5 s",
        "new process to first answer, a question naming no council <= 5 s",
        "warm query p95 <= 150 ms",
        "warm query p95 <= 1.5x the 2-report p95 of the same run",
        "peak RSS of a query process <= 1 GB (1,024 MB)",
        "recall@5 within 0.03 of the 2-report figure",
        "fact accuracy within 0.03 of the 2-report figure",
        "recall@5 on questions naming a council, within 0.03 of the 2-report figure",
        "fact accuracy on questions naming a council, within 0.03 of the 2-report figure",
        "'which councils' questions: council recall >= 0.8",
        "'which councils' questions: council precision >= 0.9",
        "a 'which councils' answer: p95 <= 2 s",
    ]
    for t in data["targets"]:
        assert isinstance(t["met"], bool) and isinstance(t["value"], float | int), t
    meta = data["meta"]
    assert (meta["ns"], meta["questions_limit"], meta["seed"], meta["isolated"]) == ([2, 4], 2, 0, False)
    assert isinstance(meta["cpu_count"], int) and meta["cpu_model"] and meta["seconds"] > 0

    md = (out / "scale.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| N reports"))
    assert header == "| " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [line for line in md.splitlines() if re.match(r"\| [24] \|", line)]
    assert [line.count("|") for line in lines] == [len(COLUMNS) + 1] * 2 and "n/a" not in "".join(lines)
    assert "## Targets at N = 4" in md and "![scale chart](scale.png)" in md and "## Quality by kind of question" in md
    for r in rows:
        assert sum(v["n"] for v in r["per_kind"].values()) == 2
        assert sorted(r["misses"]) == ["facts_missing", "not_in_top5"]
    assert md.count("| met |") + md.count("| **not met** |") == 15
    png = (out / "scale.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_requery_measures_the_query_side_again_on_the_kept_indexes(tmp_path, embeddings):
    from eval.scale import requery, run_scale

    out, again, work = tmp_path / "out", tmp_path / "again", tmp_path / "work"
    work.mkdir()
    first = run_scale([2], questions=2, out_dir=out, isolate=False, embeddings=embeddings, work_dir=work, keep=True)
    before = first.rows[0]
    result = requery(out / "scale.json", out_dir=again)
    row = result.rows[0]
    index_side = ["passages", "chars", "windows", "index_s", "raw_encode_s", "index_over_raw", "index_peak_rss_mb",
                  "index_mb", "add_s", "remove_s", "added", "removed", "load_before", "load_after", "seconds", "work_dir"]
    assert [row[k] for k in index_side] == [before[k] for k in index_side]
    assert all(row[k] > 0 and row[k] != before[k] for k in ("first_answer_s", "first_query_s"))
    assert (row["recall@5"], row["first_answer_sources"]) == (before["recall@5"], ["ciw-cardiff-2020-12.txt"])
    assert len(row["requery_load"]) == 2 and (again / "scale.json").is_file()
    meta = json.loads((again / "scale.json").read_text())["meta"]
    assert meta["git_commit"] == first.meta["git_commit"] and meta["query_side_git_commit"]
    assert "was measured again on the same kept indexes" in (again / "scale.md").read_text()

    data = json.loads((out / "scale.json").read_text())
    data["rows"][0].pop("work_dir")
    (tmp_path / "unkept.json").write_text(json.dumps(data))
    with pytest.raises(RuntimeError) as err:
        requery(tmp_path / "unkept.json", write=False)
    assert str(err.value) == (
        f"{tmp_path / 'unkept.json'}: the indexes of N = 2 were not kept: run the benchmark with --scale-keep first."
    )
    with pytest.raises(RuntimeError, match=r"^Cannot read the scale benchmark's results .*missing.json .*: give its scale.json\.$"):
        requery(tmp_path / "missing.json", write=False)


@pytest.mark.parametrize("k", ["0", "-2"])
def test_scale_questions_below_one_is_refused_before_any_work(monkeypatch, capsys, k):
    import eval.scale
    from rag.cli import main

    monkeypatch.setattr(eval.scale, "_measure_n", lambda *a, **kw: pytest.fail("the scale benchmark started measuring"))
    assert main(["eval", "--scale", "2", "--scale-questions", k]) == 1
    assert capsys.readouterr().err == f"--scale-questions takes a number of questions of at least 1, not {k}\n"
