"""The rest of issue 13's reliability matrix (the README's "Reliability" table): the cases that
already held when the issue was filed and had no test of their own, and two that do not hold yet
(marked xfail, strict: each passes once its fix lands, and then its mark must go).

Truncated, scanned and oversized files; two `arolwg index` runs at once on one folder; markup in a
report or a question; upload names with ../; an upload that names a file elsewhere on the server;
a file that yields no passages; and no connection leaving 127.0.0.1 from `arolwg index`, `ask`
and `chat`."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import CARDIFF, NEW_REPORT, REPORTS, WREXHAM
from index.load import load_file
from rag.errors import CorruptFileError
from test_reliability import TORFAEN, make_pdf, one_sentence

REPO = Path(__file__).resolve().parent.parent
QUESTION = "How many case files were reviewed in Cardiff?"
# A report whose text holds markup that would run in the page if it were not escaped.
HOSTILE = """Assurance check of Blaenau Gwent County Borough Council <script>alert('title')</script>

Findings

The local authority opened a new respite centre <img src=x onerror="alert('img')"> for disabled children in Ebbw Vale in March 2022.
Families told inspectors <script>document.title='pwned'</script> that the respite centre had made a real difference to their lives.
Inspectors found <a href="javascript:alert('link')">the referral form</a> easy to follow and the duty team quick to respond.
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    env.update(extra)
    return env


def arolwg(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", *args], cwd=REPO, env=env or clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )


# ---------------------------------------------------------------- bad files


def test_a_truncated_pdf_gets_one_sentence(tmp_path):
    whole = make_pdf(tmp_path / "whole.pdf", TORFAEN)
    cut = tmp_path / "cut.pdf"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError) as exc:
        load_file(cut)
    assert str(exc.value).startswith("cut.pdf could not be read (it is not a readable PDF")
    one_sentence(str(exc.value))


def test_a_scanned_pdf_without_text_gets_one_sentence(tmp_path):
    from fpdf import FPDF
    from PIL import Image

    Image.new("RGB", (600, 800), "white").save(tmp_path / "page.png")  # a page scanned as a picture
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(tmp_path / "page.png"), x=10, y=10, w=180)
    pdf.output(str(tmp_path / "scanned.pdf"))
    with pytest.raises(CorruptFileError) as exc:
        load_file(tmp_path / "scanned.pdf")
    assert str(exc.value) == (
        "scanned.pdf could not be read (it has almost no text (a scanned PDF needs OCR first)): "
        "check the file opens, or export it again."
    )


def test_a_file_over_the_size_limit_gets_one_sentence_and_the_rest_is_indexed(tmp_path, settings, embeddings):
    from index import build_index
    from ui.app import launch_kwargs

    limited = settings.model_copy(update={"max_file_mb": 1.0})
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "big.txt").write_text(TORFAEN * (2_000_000 // len(TORFAEN)), encoding="utf-8")  # 2 MB
    (reports / "torfaen.txt").write_text(TORFAEN, encoding="utf-8")
    report = build_index(reports, tmp_path / "index", settings=limited, embeddings=embeddings)
    assert report.added == ["torfaen.txt"]
    assert report.failed == [("big.txt", "big.txt could not be read (it is 2 MB, over the 1 MB limit (AROLWG_MAX_FILE_MB)): "
                                         "check the file opens, or export it again.")]
    assert launch_kwargs(limited)["max_file_size"] == "1mb"  # the web upload refuses it before it arrives


def test_a_pdf_that_yields_no_passages_is_reported(tmp_path, settings, embeddings, caplog):
    from index import build_index, list_reports

    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(REPORTS / CARDIFF, reports)
    # A PDF of four pages of the same line: the loader strips it from every page as a running
    # header, and the text left fails its "almost no text" check: the file is listed as failed.
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for _ in range(4):
        pdf.add_page()
        pdf.cell(0, 8, "This page is intentionally left blank for printing purposes only, says the council.")
    pdf.output(str(reports / "blank.pdf"))
    caplog.set_level("WARNING")
    report = build_index(reports, tmp_path / "index", settings=settings, embeddings=embeddings)
    chunks = {r.report_id: r.n_chunks for r in list_reports(tmp_path / "index", settings)}
    warned = any("blank.pdf" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    listed = "blank.pdf" in {name for name, _ in report.failed}
    assert warned or listed, f"blank.pdf was indexed with {chunks.get('blank.pdf')} passages and no warning"


# ---------------------------------------------------------------- two writers


@pytest.mark.slow
def test_two_arolwg_index_runs_on_one_folder_take_turns_and_leave_a_sound_index(tmp_path):
    index_dir = tmp_path / "index"
    args = ("index", "--reports", str(REPORTS), "--index", str(index_dir))
    first = arolwg(*args)
    lock = index_dir / ".lock"
    # The second run starts only once the first holds the folder's write lock.
    deadline = time.monotonic() + 300
    while True:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        if lock.exists():
            with open(lock) as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    break  # held by the first run
                fcntl.flock(fh, fcntl.LOCK_UN)
        time.sleep(0.02)
    second = arolwg(*args)
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert (first.returncode, second.returncode) == (0, 0), err1[-2000:] + err2[-2000:]
    # The second waited for the first and found its work done: it reused both reports.
    assert out1.startswith("Indexed 2 new or changed, reused 0, removed 0 report(s)"), out1
    assert out2.startswith("Indexed 0 new or changed, reused 2, removed 0 report(s)"), out2
    check = subprocess.run([sys.executable, "-m", "rag.cli", "check", "--index", str(index_dir)],
                           cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert (check.returncode, check.stdout) == (0, f"The index at {index_dir} is sound.\n"), check.stderr


# ---------------------------------------------------------------- markup in reports and questions


def test_markup_in_a_report_or_a_question_is_shown_as_text(tmp_path, built_index, settings, embeddings):
    from index import update_index
    from ui import handlers as H
    from ui import render

    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    hostile = tmp_path / "blaenau-gwent.txt"
    hostile.write_text(HOSTILE, encoding="utf-8")
    update_index(index_dir, add=[hostile], settings=settings, embeddings=embeddings)
    engine = H.Engine(settings=settings, index_dir=index_dir, embeddings=embeddings)
    shown = []
    for question in ("Where did Blaenau Gwent open a new respite centre for disabled children?",
                     "What did families tell inspectors about the respite centre in Blaenau Gwent?",
                     "<img src=x onerror=alert(1)> How easy was the referral form in Blaenau Gwent? <script>alert(2)</script>"):
        *_, last = H.ask(engine, question, H.ChatState(), pace=0)
        shown += [m["content"] for m in last.messages]
    shown.append(render.reports_table_html(engine.reports()))
    page = "\n".join(shown)
    assert "Ebbw Vale" in page and "respite centre" in page  # the hostile report was found and shown
    assert "&lt;script&gt;" in page and "&lt;img" in page  # ... with its markup as text
    for tag in ("<script", "<img", "<a href=\"javascript", "<a href='javascript"):
        assert tag not in page.lower(), tag


# ---------------------------------------------------------------- uploads over HTTP


@pytest.fixture
def live_server(tmp_path, built_index, embeddings):
    from test_ui_live import start_server

    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    demo, url = start_server(index_dir, embeddings)
    try:
        yield url
    finally:
        demo.close()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


@pytest.mark.slow
def test_an_upload_named_with_dot_dot_lands_in_the_upload_folder_under_its_base_name(live_server, tmp_path):
    import httpx

    name = "../../../../" + str(tmp_path / "escaped.txt").lstrip("/")
    r = httpx.post(live_server + "gradio_api/upload", files={"files": (name, NEW_REPORT.encode())}, timeout=60)
    assert r.status_code == 200, r.text
    stored = Path(r.json()[0])
    assert stored.name == "escaped.txt" and ".." not in stored.parts
    assert not (tmp_path / "escaped.txt").exists()  # nothing was written where the name pointed
    message, *_ = _client(live_server).predict(
        [{"path": str(stored), "meta": {"_type": "gradio.FileData"}, "orig_name": name}], "", api_name="/upload_reports"
    )
    assert message == "Added **escaped.txt**."
    assert not stored.exists()  # and the upload is gone from the temporary folder


@pytest.mark.slow
def test_an_upload_naming_a_file_elsewhere_on_the_server_is_refused(live_server, tmp_path):
    private = tmp_path / "private" / "notes.txt"
    private.parent.mkdir()
    private.write_text(NEW_REPORT.replace("Powys", "Privateshire"), encoding="utf-8")
    c = _client(live_server)
    # Over raw HTTP, as a remote caller would (gradio_client would upload a local file first).
    import httpx

    refused = httpx.post(live_server + "gradio_api/queue/join", timeout=30, json={
        "data": [[{"path": str(private), "meta": {"_type": "gradio.FileData"}, "orig_name": "notes.txt"}], ""],
        "fn_index": 0, "session_hash": "probe", "event_data": None, "trigger_id": None})
    assert (refused.status_code, refused.text) == (
        403, "A file named in this request was not uploaded through this page: upload the file itself.")
    _chat, copy, _ = c.predict("Where did Privateshire open a new respite centre?", api_name="/ask")
    assert "Llandrindod Wells" not in copy, f"the server's own file was indexed and quoted: {message}"
    assert private.exists()


# ---------------------------------------------------------------- no connection leaves 127.0.0.1

AUDIT = """
import os, sys
_log = os.environ["NET_AUDIT_LOG"]
def _hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto"):
        what = args[0] if event == "socket.getaddrinfo" else args[1]
        with open(_log, "a") as fh:
            fh.write(f"{os.getpid()} {event} {what!r}\\n")
sys.addaudithook(_hook)
"""
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_no_connection_leaves_127_0_0_1(tmp_path):
    """`arolwg index`, `ask` and `chat` (with an upload and a question over HTTP) in the user's
    default environment, every socket call made from Python audited (sys.addaudithook, through a
    sitecustomize): each goes to, or listens on, this machine."""
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "sitecustomize.py").write_text(textwrap.dedent(AUDIT), encoding="utf-8")
    log = tmp_path / "net.log"
    env = clean_env(PYTHONPATH=str(tmp_path / "audit"), NET_AUDIT_LOG=str(log))
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ANONYMIZED_TELEMETRY", "GRADIO_ANALYTICS_ENABLED",
                "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"):
        env.pop(key, None)  # what `arolwg` does with none of them set
    index_dir = tmp_path / "index"
    out, err = arolwg("index", "--reports", str(REPORTS), "--index", str(index_dir), env=env).communicate(timeout=600)
    assert "Indexed 2 new" in out, err[-2000:]
    out, err = arolwg("ask", QUESTION, "--index", str(index_dir), env=env).communicate(timeout=600)
    assert "50 case files" in out, err[-2000:]

    port = _free_port()
    chat = subprocess.Popen([sys.executable, "-m", "rag.cli", "chat", "--port", str(port), "--index", str(index_dir)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx
        from gradio_client import handle_file

        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while True:
            assert chat.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        c = _client(url)
        upload = tmp_path / "powys.txt"
        upload.write_text(NEW_REPORT, encoding="utf-8")
        assert c.predict([handle_file(str(upload))], "", api_name="/upload_reports")[0] == "Added **powys.txt**."
        _chat, copy, _ = c.predict(QUESTION, api_name="/ask")
        assert "50 case files" in copy
        time.sleep(2)  # anything the server does after answering
    finally:
        chat.terminate()
        chat.wait(timeout=30)
    calls = log.read_text(encoding="utf-8").splitlines()
    assert any(" socket.bind ('127.0.0.1', %d)" % port in c for c in calls)  # the chat listened here
    outside = []
    for call in calls:
        _pid, event, what = call.split(" ", 2)
        host = what
        m = re.match(r"\('([^']*)', ", what)
        if m:
            host = m.group(1)
        elif what.startswith(("'", '"')):
            host = what.strip("'\"")
            if "/" in host:  # a Unix socket
                continue
        if event == "socket.bind" and host in ("", "0.0.0.0") and what.endswith(", 0)"):
            continue  # an outgoing socket's own end, any local port
        if host not in LOOPBACK:
            outside.append(call)
    assert outside == [], outside
