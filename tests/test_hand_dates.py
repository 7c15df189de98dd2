"""Dating a report by hand (issue 12 item 1): the store operation, the CLI and the Reports tab.

A report whose text gives no inspection date is indexed undated; ``index.set_report_dates``
dates it without embedding anything again, in a new generation that later writes keep, and
gives its passages the dates in Chroma.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import NEW_REPORT

UNDATED = "ciw-ceredigion-undated.txt"
# A report whose text names no month, day or year: nothing for index.meta.find_dates to read.
UNDATED_REPORT = """Assurance check of Ceredigion County Council social services

Introduction

This report sets out the findings of the assurance check of Ceredigion County Council.

Findings

Families told inspectors that the new short breaks service had made a real difference to their lives.
The local authority must improve how it records the outcomes of carers' assessments.
Practitioners said that supervision was regular and helped them reflect on their work.
"""


def _live(index_dir: Path) -> dict:
    return json.loads((index_dir / (index_dir / "CURRENT").read_text().strip() / "manifest.json").read_text())


@pytest.fixture
def undated_index(tmp_path, settings, embeddings) -> Path:
    """A real index (Chroma on disk) of one report whose dates cannot be found."""
    from index import build_index

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / UNDATED).write_text(UNDATED_REPORT)
    index_dir = tmp_path / "index"
    build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    return index_dir


@pytest.fixture
def no_encoding(monkeypatch, embeddings):
    """Every way the embedding model encodes, spied: the texts it was asked to encode."""
    encoded: list[str] = []
    cls = type(embeddings)
    for name in ("encode", "encode_with_spans", "embed_query"):
        real = getattr(cls, name)

        def spy(self, texts, *args, _real=real, **kw):
            encoded.extend([texts] if isinstance(texts, str) else list(texts))
            return _real(self, texts, *args, **kw)

        monkeypatch.setattr(cls, name, spy)
    return encoded


def _collection(index_dir, settings):
    from index.store import open_store

    return open_store(index_dir, settings).collection()


def test_dating_a_report_by_hand_changes_its_dates_and_embeds_nothing(undated_index, settings, no_encoding):
    from index import list_reports, set_report_dates

    before = _live(undated_index)
    (info,) = list_reports(undated_index, settings=settings)
    assert (info.dates, info.dated_by) == ("", "")
    meta = set_report_dates(UNDATED, "2019-03-04", "2019-03-08", index_dir=undated_index, settings=settings)
    after = _live(undated_index)
    assert (meta.dates, meta.start, meta.end, meta.year, meta.dated_by) == ("4-8 March 2019", "2019-03-04", "2019-03-08", 2019, "hand")
    assert after["generation"] == before["generation"] + 1
    assert after["reports"][UNDATED] == {**before["reports"][UNDATED], "dates": "4-8 March 2019", "dated_by": "hand"}
    (info,) = list_reports(undated_index, settings=settings)
    assert (info.dates, info.dated_by, info.dates_shown) == ("4-8 March 2019", "hand", "4-8 March 2019 (dated by hand)")
    assert no_encoding == []  # not one text embedded again


def test_chroma_where_on_year_finds_a_report_dated_by_hand(undated_index, settings):
    from index import set_report_dates
    from index.store import open_store

    n = _live(undated_index)["reports"][UNDATED]["n_chunks"]
    col = _collection(undated_index, settings)
    assert col.get(where={"year": 2019}, include=[])["ids"] == []
    set_report_dates(UNDATED, "2019-03-04", "2019-03-08", index_dir=undated_index, settings=settings)
    got = col.get(where={"year": 2019}, include=["metadatas"])
    ids = {c.id for c in open_store(undated_index, settings).chunks}
    assert (len(got["ids"]), set(got["ids"])) == (n, ids)
    assert {(m["inspection_start"], m["inspection_end"], m["dated_by"], m["report_id"]) for m in got["metadatas"]} == {
        ("2019-03-04", "2019-03-08", "hand", UNDATED)
    }
    assert col.get(where={"year": 2018}, include=[])["ids"] == []


def test_time_filters_use_dates_set_by_hand(undated_index, settings, embeddings):
    from index import set_report_dates
    from index.store import open_store
    from rag.api import retrieve
    from rag.scope import allowed_reports

    def allowed(**filters):
        return allowed_reports(open_store(undated_index, settings).reports, filters)

    assert allowed(year=2019) == []  # undated: left out by every time filter
    set_report_dates(UNDATED, "2019-03-04", "2019-03-08", index_dir=undated_index, settings=settings)
    assert (allowed(year=2019), allowed(year=2018), allowed(since="2019-03"), allowed(before="2019"), allowed(month="2019-03")) == (
        [UNDATED], [], [UNDATED], [], [UNDATED]
    )
    got = retrieve("supervision", filters={"year": 2019}, index_dir=undated_index, settings=settings, embeddings=embeddings)
    assert {(p.source, p.dates) for p in got} == {(UNDATED, "4-8 March 2019 (dated by hand)")}  # a citation says who dated it


def test_dates_set_by_hand_survive_later_writes(undated_index, tmp_path, settings, embeddings):
    from index import build_index, list_reports, set_report_dates, update_index

    set_report_dates(UNDATED, "2019-03-04", index_dir=undated_index, settings=settings)
    new = tmp_path / "ciw-powys-2021-03.txt"
    new.write_text(NEW_REPORT)
    update_index(undated_index, add=[new], settings=settings, embeddings=embeddings)
    dates = {r.report_id: (r.dates, r.dated_by) for r in list_reports(undated_index, settings=settings)}
    assert dates == {UNDATED: ("4 March 2019", "hand"), new.name: ("1-5 March 2021", "")}
    # Made to hold its folder again (the same text read anew): the hand dates stay with the text.
    report = build_index(tmp_path / "reports", undated_index, settings=settings, embeddings=embeddings)
    assert (report.removed, [(r.report_id, r.dates, r.dated_by) for r in list_reports(undated_index, settings=settings)]) == (
        [new.name], [(UNDATED, "4 March 2019", "hand")]
    )
    # The upgrade path (every report kept, rewritten from what the index holds) keeps them too.
    update_index(undated_index, settings=settings, embeddings=embeddings)
    assert [(r.dates, r.dated_by) for r in list_reports(undated_index, settings=settings)] == [("4 March 2019", "hand")]
    col = _collection(undated_index, settings)
    assert {m["year"] for m in col.get(where={"report_id": UNDATED}, include=["metadatas"])["metadatas"]} == {2019}


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        ("2019-02-30", None, "2019-02-30 is not a day of the calendar"),
        ("4 March 2019", None, "'4 March 2019' is not a day written as YYYY-MM-DD"),
        ("2019-03-08", "2019-03-04", "the last day is before the first"),
        ("1975-06-01", None, "no inspection report is from before 1990"),
        ("2019-03-04", "2999-01-01", "an inspection already reported on cannot end after today"),
    ],
)
def test_bad_dates_are_one_sentence_and_change_nothing(undated_index, settings, start, end, why):
    from index import set_report_dates
    from rag.errors import BadDatesError

    before = (undated_index / "CURRENT").read_text()
    with pytest.raises(BadDatesError) as err:
        set_report_dates(UNDATED, start, end, index_dir=undated_index, settings=settings)
    assert f"({why})" in str(err.value) and str(err.value).endswith("(or a single day).")
    assert (undated_index / "CURRENT").read_text() == before


def test_an_unknown_report_is_one_sentence(undated_index, settings):
    from index import set_report_dates
    from rag.errors import ReportNotIndexedError

    with pytest.raises(ReportNotIndexedError) as err:
        set_report_dates("nope.pdf", "2019-03-04", index_dir=undated_index, settings=settings)
    assert str(err.value) == (
        f"No report named 'nope.pdf' is in the index at {undated_index}: give a report's file name as the index lists it ({UNDATED})."
    )


def test_cli_dates_a_report(undated_index, settings, capsys):
    from index import list_reports
    from rag.cli import main

    assert main(["index", "--index", str(undated_index), "--date", UNDATED, "2019-03-04", "2019-03-08"]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"Dated {UNDATED} by hand: 4-8 March 2019 (year 2019); date filters and questions about a time now use these dates.\n"
    )
    assert [(r.dates, r.dated_by) for r in list_reports(undated_index, settings=settings)] == [("4-8 March 2019", "hand")]
    assert main(["index", "--index", str(undated_index), "--date", UNDATED, "2019-13-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arolwg: The inspection dates 2019-13-01 cannot be used (2019-13-01 is not a day of the calendar)")
    assert err.count("\n") == 1
    assert main(["index", "--index", str(undated_index), "--date", UNDATED]) == 2
    assert capsys.readouterr().err.startswith("arolwg: `arolwg index --date` takes a report's file name")


def test_reports_tab_handlers_date_a_report(undated_index, settings, embeddings):
    from ui import render
    from ui.handlers import Engine, date_choices, date_report

    engine = Engine(settings, index_dir=undated_index, embeddings=embeddings)
    (info,) = engine.reports()
    assert date_choices([info]) == [(f"{info.authority}: {info.kind} \u2014 {UNDATED} \u2014 date not found", UNDATED)]
    assert ">Not found in the text</span>" in render.reports_table_html([info])
    assert date_report(engine, "", "2019-03-04") == (False, "Pick a report to date first.")
    assert date_report(engine, UNDATED, " ") == (
        False, "Give the first day of the inspection (YYYY-MM-DD), and its last day if it is not the same."
    )
    saved, message = date_report(engine, UNDATED, "2019-03-08", "2019-03-04")
    assert (saved, message.split(" (")[1]) == (False, "the last day is before the first): give the first and last day of the inspection as YYYY-MM-DD, e.g. 2019-03-04 2019-03-08")
    assert date_report(engine, UNDATED, " 2019-03-04 ", "") == (True, (
        f"Dated **{UNDATED}** by hand: 4 March 2019 (year 2019). The Inspection date filter and "
        "questions about a time now use these dates; its sources say they were dated by hand."
    ))
    (info,) = engine.reports()
    assert date_choices([info]) == [(f"{info.authority}: {info.kind} (4 March 2019) \u2014 {UNDATED}", UNDATED)]
    assert "<td>4 March 2019 <span class=\"arolwg-dated-by\"" in render.reports_table_html([info])


def test_dating_by_hand_on_a_chroma_server(tmp_path, settings, embeddings, chroma_server):
    """With AROLWG_CHROMA_HOST, the passages' dates change on the server; a server that is not
    there is one sentence and the index keeps its live generation."""
    from index import build_index, list_reports, set_report_dates
    from index.store import open_store
    from conftest import free_port
    from rag.errors import ChromaServerError

    host, port = chroma_server
    on_server = settings.model_copy(update={"chroma_host": host, "chroma_port": port})
    reports = tmp_path / "reports"
    reports.mkdir()
    rid = f"server-{UNDATED}"  # its own name: chunk ids include it, and the server is shared
    (reports / rid).write_text(UNDATED_REPORT)
    index_dir = tmp_path / "index"
    build_index(reports, index_dir, settings=on_server, embeddings=embeddings)
    gone = settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": free_port()})
    live = (index_dir / "CURRENT").read_text()
    with pytest.raises(ChromaServerError):
        set_report_dates(rid, "2019-03-04", index_dir=index_dir, settings=gone)
    assert (index_dir / "CURRENT").read_text() == live
    set_report_dates(rid, "2019-03-04", index_dir=index_dir, settings=on_server)
    assert [(r.dates, r.dated_by) for r in list_reports(index_dir, settings=on_server)] == [("4 March 2019", "hand")]
    col = open_store(index_dir, on_server).collection()
    got = col.get(where={"$and": [{"year": 2019}, {"report_id": rid}]}, include=[])["ids"]
    assert sorted(got) == sorted(c.id for c in open_store(index_dir, on_server).chunks)


def test_a_write_failing_before_its_commit_leaves_the_index_and_chroma_as_they_were(undated_index, settings, monkeypatch):
    import index.store
    from index import list_reports, set_report_dates

    live = (undated_index / "CURRENT").read_text()
    col = _collection(undated_index, settings)
    before = col.get(where={"report_id": UNDATED}, include=["metadatas"])

    def full_disk(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index.store, "_commit", full_disk)
    from rag.errors import DiskFullError

    with pytest.raises(DiskFullError):
        set_report_dates(UNDATED, "2019-03-04", index_dir=undated_index, settings=settings)
    assert (undated_index / "CURRENT").read_text() == live
    assert [(r.dates, r.dated_by) for r in list_reports(undated_index, settings=settings)] == [("", "")]
    assert col.get(where={"report_id": UNDATED}, include=["metadatas"]) == before  # Chroma put back as it was
    assert not list(undated_index.glob("gen-*.tmp"))


def test_dates_by_hand_are_undone_to_the_texts_own_and_nothing_is_embedded(undated_index, settings, no_encoding):
    from index import clear_report_dates, set_report_dates

    before = _live(undated_index)
    col = _collection(undated_index, settings)
    # Not dated by hand: nothing to undo, nothing written.
    assert clear_report_dates(UNDATED, index_dir=undated_index, settings=settings).dated_by == ""
    assert _live(undated_index) == before
    set_report_dates(UNDATED, "2019-03-04", "2019-03-08", index_dir=undated_index, settings=settings)
    meta = clear_report_dates(UNDATED, index_dir=undated_index, settings=settings)
    after = _live(undated_index)
    assert (meta.dates, meta.year, meta.dated_by) == ("", None, "")
    assert after["generation"] == before["generation"] + 2
    assert after["reports"][UNDATED] == before["reports"][UNDATED]
    # Chroma's passages lose the hand dates (and the year) too.
    assert col.get(where={"year": 2019}, include=[])["ids"] == []
    assert {(m.get("dated_by"), m.get("inspection_start")) for m in col.get(include=["metadatas"])["metadatas"]} == {("", "")}
    assert no_encoding == []


def test_a_report_dated_wrongly_by_hand_gets_its_texts_dates_back(tmp_path, settings, embeddings, capsys):
    from index import build_index, list_reports, set_report_dates
    from rag.cli import main

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "powys.txt").write_text(UNDATED_REPORT.replace("Ceredigion", "Powys").replace(
        "This report sets out", "Our inspection took place from 1 to 5 March 2021. This report sets out"))
    index_dir = tmp_path / "index"
    build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    set_report_dates("powys.txt", "2018-01-02", index_dir=index_dir, settings=settings)
    assert [(r.dates, r.dated_by) for r in list_reports(index_dir, settings=settings)] == [("2 January 2018", "hand")]
    assert main(["index", "--index", str(index_dir), "--clear-date", "powys.txt"]) == 0
    assert capsys.readouterr().out == "powys.txt is not dated by hand: its dates are 1-5 March 2021 (year 2021), as its text gives them.\n"
    assert [(r.dates, r.dated_by) for r in list_reports(index_dir, settings=settings)] == [("1-5 March 2021", "")]
    assert main(["index", "--index", str(index_dir), "--clear-date", "nowhere.txt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arolwg: ") and "nowhere.txt" in err and err.count("\n") == 1
    assert main(["index", "--index", str(index_dir), "--clear-date", "powys.txt", "--date", "powys.txt", "2019-01-01"]) == 2
    assert capsys.readouterr().err.startswith("arolwg: `arolwg index --clear-date` takes a report's file name and nothing else")


def test_reports_tab_handlers_undo_dates_by_hand(undated_index, settings, embeddings):
    from ui.handlers import Engine, date_report

    engine = Engine(settings, index_dir=undated_index, embeddings=embeddings)
    assert date_report(engine, "", None, clear=True) == (False, "Pick a report to date first.")
    assert date_report(engine, UNDATED, "2019-03-04")[0]
    assert date_report(engine, UNDATED, None, clear=True) == (
        True, f"**{UNDATED}** is not dated by hand: its dates are those its text gives, none: its text gives no inspection date."
    )
    assert [(r.dates, r.dated_by) for r in engine.reports()] == [("", "")]
