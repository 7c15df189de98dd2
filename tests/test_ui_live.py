"""The web chat for real: a Gradio server on 127.0.0.1 driven over HTTP with gradio_client, and
end to end in headless Debian Chromium driven by Playwright. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import NEW_REPORT

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CARDIFF = "ciw-cardiff-2020-12.txt"
WREXHAM = "ciw-wrexham-2020-10.txt"
CASE_FILES_Q = "How many case files were reviewed in the Cardiff inspection?"
CASE_FILES_QUOTE = (
    "In total we reviewed 50 case files and followed 14 of these with interviews with social workers and family members."
)
FOLLOW_UP = "How many of those were followed up with interviews?"
BUDGET_Q = "What is Wrexham County Borough Council's total social services budget?"
RESPITE_Q = "Where did Powys open a new respite centre for disabled children?"
REPORT_WORDS = "In total we reviewed 50 case files"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_settings(**kw):
    """Settings from these values only, whatever AROLWG_* variables this machine has."""
    from rag.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("AROLWG_"):
                mp.delenv(key)
        return get_settings(**kw)


def start_server(index_dir: Path, embeddings, **settings_kw):
    from ui.app import launch

    settings = clean_settings(index_dir=index_dir, **settings_kw)
    port = free_port()
    demo = launch(
        settings,
        host="127.0.0.1",
        port=port,
        index_dir=index_dir,
        embeddings=embeddings,
        prevent_thread_lock=True,
        quiet=True,
    )
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def live_index(tmp_path_factory, built_index) -> Path:
    """A private copy of the shared index: these tests add and remove reports."""
    copy = tmp_path_factory.mktemp("live") / "index"
    shutil.copytree(built_index, copy)
    return copy


@pytest.fixture(scope="module")
def server(live_index, embeddings):
    demo, url = start_server(live_index, embeddings)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def expected(live_index, embeddings):
    """What query() itself answers, to compare the web's answers with."""
    from rag import query

    def ask(question, **kw):
        return query(question, index_dir=live_index, embeddings=embeddings, **kw)

    return ask


@pytest.fixture(scope="module")
def plain(live_index):
    """The "copy with sources" text of an answer, with the index's report metadata (dates), as the server makes it."""
    from index import list_reports
    from ui.render import answer_plain

    return lambda ans: answer_plain(ans, {r.report_id: r for r in list_reports(live_index)})


def client(url, **kw):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, **kw)


def last_content(chat) -> str:
    content = chat[-1]["content"]
    return content[0]["text"] if isinstance(content, list) else content


# ---------------------------------------------------------------- gradio_client


def test_http_answer_streams_and_cites(server, expected, plain):
    job = client(server).submit(CASE_FILES_Q, api_name="/ask")
    chat, copy, box = job.result(timeout=120)
    outputs = job.outputs()
    assert len(outputs) >= 3  # searching, the text coming in, the finished answer
    first_chat = outputs[0][0]
    assert [m["role"] for m in first_chat] == ["user", "assistant"]
    assert "Searching the reports" in last_content(first_chat)
    assert outputs[0][2] == ""  # the question box is cleared at once

    ans = expected(CASE_FILES_Q)
    assert copy == plain(ans)
    content = last_content(chat)
    assert f'<mark id="arolwg-src-1-1">{html.escape(CASE_FILES_QUOTE, quote=True)}</mark>' in content
    assert 'href="#arolwg-src-1-1"' in content
    assert "Cardiff Council" in content and CARDIFF in content


def test_http_sessions_keep_their_own_conversation(server):
    a, b = client(server), client(server)
    a.predict(CASE_FILES_Q, api_name="/ask")
    chat_a, copy_a, _ = a.predict(FOLLOW_UP, api_name="/ask")
    chat_b, copy_b, _ = b.predict(FOLLOW_UP, api_name="/ask")
    assert len(chat_a) == 4 and len(chat_b) == 2
    assert "Understood as:" in last_content(chat_a) and "14" in copy_a
    assert "Understood as:" not in last_content(chat_b)

    assert a.predict(api_name="/new_conversation") == ([], "", "")
    chat_a2, _, _ = a.predict(FOLLOW_UP, api_name="/ask")
    assert len(chat_a2) == 2 and "Understood as:" not in last_content(chat_a2)


def test_http_filters(server, expected, plain):
    question = "What must improve about supervision?"
    chat, copy, _ = client(server).predict(question, "Cardiff Council", "", "extractive", 5, api_name="/ask")
    assert copy == plain(expected(question, filters={"authority": "Cardiff Council"}))
    assert CARDIFF in last_content(chat) and WREXHAM not in last_content(chat)
    chat, _, _ = client(server).predict(question, "", WREXHAM, "extractive", 3, api_name="/ask")
    assert WREXHAM in last_content(chat) and CARDIFF not in last_content(chat)


def test_http_abstention_and_errors(server):
    chat, copy, _ = client(server).predict(BUDGET_Q, api_name="/ask")
    assert "Not in the reports" in last_content(chat) and "Closest passages found" in last_content(chat)
    assert copy.startswith("The reports do not say.")

    chat, copy, box = client(server).predict("   ", api_name="/ask")
    assert chat == [] and copy == ""  # nothing asked, nothing shown (a warning toast says why)

    chat, _, _ = client(server).predict("why " * 400, api_name="/ask")
    assert 'class="arolwg-answer arolwg-error"' in last_content(chat)
    assert "over the limit of 1000" in last_content(chat) and "Traceback" not in last_content(chat)


def test_http_upload_is_searchable_at_once_and_remove(server, tmp_path):
    from gradio_client import handle_file

    c = client(server)
    path = tmp_path / "ciw-powys-2021-03.txt"
    path.write_text(NEW_REPORT, encoding="utf-8")
    message, _files, table, *_ = c.predict([handle_file(str(path))], "", api_name="/upload_reports")
    assert message == "Added **ciw-powys-2021-03.txt**."
    assert "ciw-powys-2021-03.txt" in table and "3 reports" in table
    chat, copy, _ = c.predict(RESPITE_Q, api_name="/ask")
    assert "Llandrindod Wells" in copy and "ciw-powys-2021-03.txt" in last_content(chat)

    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really \x00\x01")
    message, _files, table, *_ = c.predict([handle_file(str(bad))], "", api_name="/upload_reports")
    assert message.startswith("**broken.pdf** was not added: ") and "3 reports" in table

    message, table, *_ = c.predict("ciw-powys-2021-03.txt", "", api_name="/remove_report")
    assert message == "Removed **ciw-powys-2021-03.txt**."
    assert "ciw-powys-2021-03.txt" not in table and "2 reports" in table
    chat, _, _ = c.predict(RESPITE_Q, api_name="/ask")
    assert "ciw-powys-2021-03.txt" not in last_content(chat)


def test_password_protection(live_index, embeddings):
    import httpx

    demo, url = start_server(live_index, embeddings, auth="ann:correct horse")
    try:
        assert httpx.get(url + "config").status_code == 401
        with pytest.raises(Exception):
            client(url)
        with pytest.raises(Exception):
            client(url, auth=("ann", "wrong"))
        c = client(url, auth=("ann", "correct horse"))
        chat, copy, _ = c.predict(CASE_FILES_Q, api_name="/ask")
        assert CASE_FILES_QUOTE in copy
    finally:
        demo.close()


def test_originals_are_served_from_the_index_behind_the_sign_in(live_index, embeddings):
    """/original/<id>: only files the index holds, by id (never a path), and with AROLWG_AUTH the
    sign-in too."""
    import httpx

    demo, url = start_server(live_index, embeddings, auth="ann:correct horse")
    try:
        original = url + "original/" + CARDIFF
        anonymous = httpx.get(original)
        assert anonymous.status_code == 401 and anonymous.text == "Sign in to the chat first, then open the report again."
        assert REPORT_WORDS not in anonymous.text
        with httpx.Client() as signed:
            signed.cookies.set("access-token-forged", "x")
            assert signed.get(original).status_code == 401  # a made-up cookie is no sign-in
            assert signed.post(url + "login", data={"username": "ann", "password": "correct horse"}).status_code == 200
            got = signed.get(original)
            assert got.status_code == 200 and REPORT_WORDS in got.text
            assert got.headers["content-type"].startswith("text/plain")
            assert got.headers["content-disposition"].startswith("attachment")
            assert got.headers["x-content-type-options"] == "nosniff"
            # Unknown ids and paths are 404, whatever they point at.
            for bad in ("nope.pdf", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..%2Fsegments", "ciw-cardiff-2020-12.txt%00"):
                r = signed.get(url + "original/" + bad)
                assert r.status_code == 404 and "root:" not in r.text, bad
    finally:
        demo.close()


def test_cli_chat_serves_the_app(live_index):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "chat", "--port", str(port), "--index", str(live_index)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        import httpx

        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                page = httpx.get(url, timeout=2)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert page.status_code == 200 and "Arolwg" in page.text
        chat, copy, _ = client(url).predict(CASE_FILES_Q, api_name="/ask")
        assert CASE_FILES_QUOTE in copy
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---------------------------------------------------------------- real browser


@pytest.fixture
def browser_page(server):
    with open_browser(server) as page:
        yield page


@contextlib.contextmanager
def open_browser(server: str):
    """Headless Debian Chromium on a fresh profile, on the chat at ``server``."""
    pw_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="arolwg-chromium-")
    with pw_api.sync_playwright() as pw:
        # Playwright rejects --user-data-dir in args: a persistent context is the fresh profile.
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.rstrip("/"))
        page = ctx.new_page()
        page.outside = []  # requests leaving this machine: there must be none
        page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else page.outside.append(r.url))
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(server)
        page.wait_for_selector("#arolwg-question textarea")
        try:
            yield page
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


def ask_in_browser(page, question: str) -> None:
    done = page.locator(".arolwg-answer:not(.arolwg-streaming)").count()
    page.fill("#arolwg-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('.arolwg-answer:not(.arolwg-streaming)').length > {done}", timeout=120_000
    )
    page.wait_for_timeout(400)  # let the scroll settle for the screenshot


def test_browser_question_answer_and_highlighted_source(browser_page, expected, plain):
    page = browser_page
    page.screenshot(path=str(ARTIFACTS / "ui-chat-empty.png"))
    ask_in_browser(page, CASE_FILES_Q)
    answer = page.locator(".arolwg-answer").last
    text = answer.locator(".arolwg-text").inner_text()
    assert text.startswith("In total we reviewed 50 case files") and "[1]" in text
    mark = answer.locator("mark#arolwg-src-1-1")  # the [1] link lands on the quote itself
    assert mark.is_visible()
    assert mark.inner_text() == CASE_FILES_QUOTE
    card = answer.locator(".arolwg-src").first
    assert "Cardiff Council" in card.locator(".arolwg-title").inner_text()
    assert card.locator(".arolwg-path").inner_text() == "Method"
    assert page.locator("#arolwg-question textarea").input_value() == ""
    page.screenshot(path=str(ARTIFACTS / "ui-chat-answer.png"))

    page.click("#arolwg-copy")
    page.wait_for_timeout(300)
    assert page.evaluate("navigator.clipboard.readText()") == plain(expected(CASE_FILES_Q))

    answer.locator("a.arolwg-cite").first.click()
    assert page.evaluate("location.hash") == "#arolwg-src-1-1"
    assert page.outside == [] and page.errors == []


def test_browser_follow_up_abstention_and_new_conversation(browser_page):
    page = browser_page
    ask_in_browser(page, CASE_FILES_Q)
    ask_in_browser(page, FOLLOW_UP)
    last = page.locator(".arolwg-answer").last
    assert "Understood as:" in last.inner_text()
    assert "14" in last.locator(".arolwg-text").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-chat-follow-up.png"))

    ask_in_browser(page, BUDGET_Q)
    last = page.locator(".arolwg-answer").last
    assert "NOT IN THE REPORTS" in last.inner_text().upper()
    assert last.locator(".arolwg-near").count() >= 1 and last.locator("mark").count() == 0
    page.screenshot(path=str(ARTIFACTS / "ui-chat-abstention.png"))

    page.click("#arolwg-new")
    page.wait_for_function("document.querySelectorAll('.arolwg-answer').length === 0", timeout=10_000)
    # The example questions are back; clicking one asks it.
    from ui.handlers import EXAMPLES

    page.get_by_text(EXAMPLES[1]).click()
    page.wait_for_selector(".arolwg-answer:not(.arolwg-streaming) mark", timeout=120_000)
    assert page.locator(".arolwg-question").count() == 1
    assert page.locator(".arolwg-question").inner_text() == EXAMPLES[1]
    page.screenshot(path=str(ARTIFACTS / "ui-chat-example.png"))
    assert page.outside == [] and page.errors == []


def test_browser_reports_tab_upload_and_remove(browser_page, tmp_path):
    page = browser_page
    page.get_by_role("tab", name="Reports").click()
    table = page.locator("table.arolwg-reports")
    table.wait_for()
    assert table.locator("tbody tr").count() == 2
    page.screenshot(path=str(ARTIFACTS / "ui-reports.png"))

    path = tmp_path / "ciw-powys-2021-03.txt"
    path.write_text(NEW_REPORT, encoding="utf-8")
    page.locator("#arolwg-upload input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(500)
    page.click("#arolwg-add")
    page.wait_for_function(
        "document.querySelector('#arolwg-reports-status').innerText.includes('Added')", timeout=120_000
    )
    assert table.locator("tbody tr").count() == 3
    assert "Powys County Council" in table.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-reports-uploaded.png"))

    # Searchable at once, from the chat tab of the same page.
    page.get_by_role("tab", name="Chat").click()
    ask_in_browser(page, RESPITE_Q)
    assert "Llandrindod Wells" in page.locator(".arolwg-answer").last.inner_text()

    page.get_by_role("tab", name="Reports").click()
    page.locator("#arolwg-remove-pick input").click()
    page.get_by_role("option", name=re.compile("ciw-powys-2021-03.txt")).click()
    page.click("#arolwg-remove")
    page.locator("#arolwg-remove-confirm").click()
    page.wait_for_function(
        "document.querySelector('#arolwg-reports-status').innerText.includes('Removed')", timeout=120_000
    )
    assert table.locator("tbody tr").count() == 2
    assert page.outside == [] and page.errors == []


def test_browser_evaluation_tab(browser_page, tmp_path):
    page = browser_page
    lines = [json.loads(x) for x in (REPO / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines()]
    mini = [x for x in lines if x["kind"] == "fact"][:3] + [x for x in lines if x["kind"] == "unanswerable"][:1]
    qa = tmp_path / "mini.jsonl"
    qa.write_text("".join(json.dumps(x) + "\n" for x in mini), encoding="utf-8")
    page.get_by_role("tab", name="Evaluation").click()
    # It opens on the last saved run (eval/results), table and chart, before anything is run.
    page.wait_for_selector("#arolwg-eval-table table", timeout=30_000)
    assert page.locator("#arolwg-eval-status").inner_text().startswith("Last run")
    assert "recall@5" in page.locator("#arolwg-eval-table").inner_text()
    page.wait_for_selector("#arolwg-eval-chart img", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "ui-evaluation-last-run.png"), full_page=True)
    page.locator("#arolwg-qa input[type=file]").set_input_files(str(qa))
    page.wait_for_timeout(500)
    page.click("#arolwg-eval")
    page.wait_for_function(
        "document.querySelector('#arolwg-eval-status').innerText.includes('Ran default on 4 questions')", timeout=300_000
    )
    assert "Ran default on 4 questions (3 answerable)" in page.locator("#arolwg-eval-status").inner_text()
    assert "recall@5" in page.locator("#arolwg-eval-table").inner_text()
    page.wait_for_selector("#arolwg-eval-chart img", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "ui-evaluation.png"), full_page=True)
    assert page.outside == [] and page.errors == []


def test_browser_pdf_upload_cites_the_page_and_opens_the_pdf_there(live_index, embeddings, tmp_path):
    """Issue 14's acceptance: a multi-page PDF uploaded through the Reports tab is answered from,
    its source card says "p. N", and its link opens the PDF (HTTP 200, application/pdf) at #page=N."""
    import ciw_pdf

    index = tmp_path / "index"
    shutil.copytree(live_index, index)
    facts = ciw_pdf.make_ciw_pdf(tmp_path / "ceredigion-2022.pdf")
    page_no = facts.pages_of(ciw_pdf.FINDING)[0]
    demo, url = start_server(index, embeddings)
    try:
        with open_browser(url) as page:
            page.get_by_role("tab", name="Reports").click()
            page.locator("#arolwg-upload input[type=file]").set_input_files(str(facts.path))
            page.wait_for_timeout(500)
            page.click("#arolwg-add")
            page.wait_for_function(
                "document.querySelector('#arolwg-reports-status').innerText.includes('Added')", timeout=180_000
            )
            row = page.locator("table.arolwg-reports tbody tr", has_text="ceredigion-2022.pdf")
            download = row.locator("a.arolwg-download")
            assert download.get_attribute("href") == "original/ceredigion-2022.pdf"
            got = page.request.get(url + download.get_attribute("href"))
            assert got.status == 200 and got.body() == facts.path.read_bytes()
            page.screenshot(path=str(ARTIFACTS / "ui-reports-pdf.png"))

            page.get_by_role("tab", name="Chat").click()
            ask_in_browser(page, "What is not recorded consistently about supervision of social workers in Ceredigion?")
            answer = page.locator(".arolwg-answer").last
            assert answer.locator(".arolwg-text").inner_text().startswith(ciw_pdf.FINDING)
            card = answer.locator(".arolwg-src").first
            assert card.locator(".arolwg-page").inner_text() == f"p. {page_no}"
            assert card.locator(".arolwg-path").inner_text() == "Children's services \u203a Prevention \u203a What needs to improve"
            link = card.locator("a.arolwg-open")
            assert link.inner_text().startswith(f"Open the PDF at p. {page_no}")
            href = link.get_attribute("href")
            assert href == f"original/ceredigion-2022.pdf#page={page_no}"
            page.screenshot(path=str(ARTIFACTS / "ui-chat-pdf-source.png"))

            # Follow it: a new tab opens the PDF, served as a PDF, at the page.
            with page.context.expect_event("response", lambda r: "/original/" in r.url, timeout=30_000) as served:
                with page.context.expect_page() as opened:
                    link.click()
            response = served.value
            assert response.status == 200 and response.headers["content-type"] == "application/pdf"
            assert response.url == url + "original/ceredigion-2022.pdf"  # the fragment stays in the browser
            assert opened.value.url.endswith(f"/original/ceredigion-2022.pdf#page={page_no}")
            # (Chromium's PDF viewer takes the body over: fetch it again to check it is the file.)
            again = page.request.get(response.url)
            assert again.headers["content-type"] == "application/pdf" and again.body() == facts.path.read_bytes()

            # Copy answer with sources: report, council, dates, page and quote.
            page.click("#arolwg-copy")
            page.wait_for_timeout(300)
            copied = page.evaluate("navigator.clipboard.readText()")
            assert f"What needs to improve, p. {page_no} \u2014 ceredigion-2022.pdf" in copied
            assert "Ceredigion County Council" in copied and "14-18 March 2022" in copied
            assert f"\u201c{ciw_pdf.FINDING}\u201d" in copied
            assert page.outside == [] and page.errors == []
    finally:
        demo.close()


# ---------------------------------------------------------------- LLM answer mode, real LLM server


@pytest.mark.llm
def test_llm_mode_streams_the_model_tokens_into_the_chat(llama_server, built_index, embeddings):
    """The wiring, not the tiny model's wisdom: tokens stream in, and the finished answer is either
    the LLM's with verbatim highlighted quotes, or the extractive one with the reason shown."""
    demo, url = start_server(
        built_index, embeddings, llm="openai", llm_base_url=llama_server, llm_model="smollm2", llm_timeout=120
    )
    try:
        c = client(url)
        job = c.submit(CASE_FILES_Q, "", "", "llm", 3, api_name="/ask")
        chat, copy, _ = job.result(timeout=300)
        streaming = [
            last_content(out[0]) for out in job.outputs()[1:-1] if "arolwg-streaming" in last_content(out[0])
        ]
        texts = [re.sub(r"<[^>]+>", "", s) for s in streaming]
        # The chat redraws at most every 50 ms, so how many partial states a short answer shows
        # depends on how fast the tokens come (2 for a dozen tokens on a busy machine): two or
        # more growing ones are streaming; one would be the whole answer at once.
        assert len(set(texts)) >= 2 and all(t for t in texts), texts[:3]
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # the text only grows
        final = last_content(chat)
        assert "arolwg-streaming" not in final
        if copy.startswith("(The LLM"):  # replaced by the extractive answer: the reason is shown
            assert 'class="arolwg-notice"' in final and "extractive answer" in final
        else:
            assert 'class="arolwg-notice"' not in final
        from index import source_text

        cardiff = source_text(CARDIFF, built_index)
        quotes = re.findall(r'<mark id="arolwg-src-1-\d+">(.*?)</mark>', final)
        assert quotes or "Not in the reports" in final
        for quote in quotes:
            assert html.unescape(quote.replace("<br>", "\n")) in cardiff
    finally:
        demo.close()
