"""Dating a report by hand in the web chat's Reports tab: a real Gradio server and headless
Debian Chromium (Playwright), on a real index of a report whose dates are not in its text.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile

import pytest

from conftest import NEW_REPORT
from test_hand_dates import UNDATED, UNDATED_REPORT
from test_ui_live import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ask_in_browser, start_server

pytestmark = pytest.mark.slow

POWYS = "ciw-powys-2021-03.txt"


@pytest.fixture(scope="module")
def dating_server(tmp_path_factory, embeddings):
    """The chat over an index of two reports: one undated, one of March 2021."""
    from index import build_index

    reports = tmp_path_factory.mktemp("dating-reports")
    (reports / UNDATED).write_text(UNDATED_REPORT)
    (reports / POWYS).write_text(NEW_REPORT)
    index_dir = tmp_path_factory.mktemp("dating") / "index"
    build_index(reports, index_dir, embeddings=embeddings)
    demo, url = start_server(index_dir, embeddings)
    try:
        yield url, index_dir
    finally:
        demo.close()


@contextlib.contextmanager
def two_sessions(server: str):
    """Two pages of the chat in headless Debian Chromium, each its own browser profile: two users."""
    pw_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profiles = [tempfile.mkdtemp(prefix="arolwg-chromium-") for _ in range(2)]
    with pw_api.sync_playwright() as pw:
        contexts = [
            pw.chromium.launch_persistent_context(p, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 900})
            for p in profiles
        ]
        pages = []
        for ctx in contexts:
            page = ctx.new_page()
            page.outside, page.errors = [], []
            page.on("request", lambda r, page=page: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else page.outside.append(r.url))
            page.on("pageerror", lambda e, page=page: page.errors.append(str(e)))
            page.goto(server)
            page.wait_for_selector("#arolwg-question textarea")
            pages.append(page)
        try:
            yield pages
        finally:
            for ctx in contexts:
                ctx.close()
            for p in profiles:
                shutil.rmtree(p, ignore_errors=True)


def _row(page, report_id: str):
    return page.locator("table.arolwg-reports tbody tr", has_text=report_id)


def _status(page, words: str) -> None:
    page.wait_for_function(
        f"document.querySelector('#arolwg-reports-status').innerText.includes({words!r})", timeout=120_000
    )


def _when_options(page, choose: str | None = None) -> list[str]:
    """The chat's Inspection date choices (the dropdown opened and closed, or ``choose`` picked)."""
    page.get_by_role("tab", name="Chat").click()
    page.locator("#arolwg-when input").click()
    options = page.get_by_role("option")
    options.first.wait_for()
    shown = [o.replace("\u2713", "").strip() for o in options.all_inner_texts()]  # the chosen one is ticked
    if choose is None:
        page.keyboard.press("Escape")
    else:
        page.get_by_role("option", name=choose, exact=True).click()
    return shown


def test_browser_dates_a_report_by_hand(dating_server):
    url, index_dir = dating_server
    with two_sessions(url) as (page, other):
        assert _when_options(page) == ["Any date", "Latest of each council", "2021"]
        page.get_by_role("tab", name="Reports").click()
        page.locator("table.arolwg-reports").wait_for()
        assert _row(page, UNDATED).locator("td").nth(3).inner_text() == "Not found in the text"
        assert _row(page, POWYS).locator("td").nth(3).inner_text() == "1-5 March 2021"

        page.locator("#arolwg-date-pick input").click()
        options = [o.replace("\u2713", "").strip() for o in page.get_by_role("option").all_inner_texts()]
        assert [o for o in options if o.endswith("date not found")] == [options[0]] and UNDATED in options[0]
        page.get_by_role("option", name=re.compile(re.escape(UNDATED))).click()
        page.fill("#arolwg-date-start input", "2019-03-04")
        page.fill("#arolwg-date-end input", "2019-03-01")
        page.click("#arolwg-date-save")
        _status(page, "the last day is before the first")
        # Refused: nothing changed, and what was typed is still there to correct.
        assert _row(page, UNDATED).locator("td").nth(3).inner_text() == "Not found in the text"
        assert page.locator("#arolwg-date-start input").input_value() == "2019-03-04"
        assert UNDATED in page.locator("#arolwg-date-pick input").input_value()
        # The other session's boxes are its own.
        other.get_by_role("tab", name="Reports").click()
        assert other.locator("#arolwg-date-start input").input_value() == ""

        page.fill("#arolwg-date-end input", "2019-03-08")
        page.click("#arolwg-date-save")
        _status(page, "Dated")
        assert page.locator("#arolwg-reports-status").inner_text().startswith(f"Dated {UNDATED} by hand: 4-8 March 2019 (year 2019).")
        assert _row(page, UNDATED).locator("td").nth(3).inner_text() == "4-8 March 2019 (dated by hand)"
        assert page.locator("#arolwg-date-start input").input_value() == ""
        page.screenshot(path=str(ARTIFACTS / "ui-reports-dated-by-hand.png"), full_page=True)

        # The chat's Inspection date filter has the year now, and scopes to the report dated by hand.
        assert _when_options(page, choose="2019") == ["Any date", "Latest of each council", "2021", "2019"]
        assert page.locator("#arolwg-when input").input_value() == "2019"
        ask_in_browser(page, "What did families say about the service?")
        answer = page.locator(".arolwg-answer").last
        cards = answer.locator(".arolwg-src")
        assert cards.count() >= 1
        heads = {cards.nth(i).inner_text() for i in range(cards.count())}
        assert all("Ceredigion" in h and "4-8 March 2019 (dated by hand)" in h for h in heads), heads
        page.screenshot(path=str(ARTIFACTS / "ui-chat-dated-by-hand.png"))

        # A session opened before the save sees the new dates once it reloads the list.
        other.reload()
        other.wait_for_selector("#arolwg-question textarea")
        other.get_by_role("tab", name="Reports").click()
        other.locator("table.arolwg-reports").wait_for()
        assert _row(other, UNDATED).locator("td").nth(3).inner_text() == "4-8 March 2019 (dated by hand)"

        # Undone: the report's dates are its text's again (none).
        page.get_by_role("tab", name="Reports").click()
        page.locator("#arolwg-date-pick input").click()
        page.get_by_role("option", name=re.compile(re.escape(UNDATED))).click()
        page.click("#arolwg-date-clear")
        _status(page, "is not dated by hand")
        assert page.locator("#arolwg-reports-status").inner_text() == (
            f"{UNDATED} is not dated by hand: its dates are those its text gives, none: its text gives no inspection date."
        )
        assert _row(page, UNDATED).locator("td").nth(3).inner_text() == "Not found in the text"
        assert (page.outside, other.outside, page.errors, other.errors) == ([], [], [], [])
