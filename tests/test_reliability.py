"""Bad files and bad input get one clear sentence, and a bad file costs only itself (issue 13,
items 1, 2, 5 and 7). Every file here is a real one, made in the test: PDFs written by fpdf2 and
encrypted by pypdf, a flate bomb of a few lines of bytes, DOCX zips, UTF-16 text."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from conftest import NEW_REPORT
from index.load import load_file
from rag.errors import (
    ArolwgError,
    CorruptFileError,
    DiskFullError,
    EmptyQuestionError,
    PasswordProtectedError,
    SettingsError,
)

ARGOLWG = Path(sys.executable).with_name("arolwg")

TORFAEN = """Assurance check of Torfaen County Borough Council

Summary

Care Inspectorate Wales carried out an assurance check of Torfaen County Borough Council in May 2022.
Inspectors reviewed 27 case files and found that safeguarding referrals were handled promptly by the duty team.
Carers told inspectors they were offered an assessment of their own needs and that the support they received helped them.
"""


def make_pdf(path: Path, text: str, *, user_password: str | None = None) -> Path:
    """A real PDF of ``text`` (fpdf2); with ``user_password`` set ("" too), AES-256 encrypted by pypdf
    with the owner password "x"."""
    from fpdf import FPDF
    from pypdf import PdfWriter

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for para in text.split("\n\n"):
        pdf.multi_cell(0, 6, para.strip())
        pdf.ln(4)
    data = bytes(pdf.output())
    if user_password is None:
        path.write_bytes(data)
        return path
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=user_password, owner_password="x", algorithm="AES-256")
    with path.open("wb") as f:
        writer.write(f)
    return path


def make_flate_bomb(path: Path) -> Path:
    """A one-page PDF whose content stream (a line of text, then 80 MB of spaces) is about 80 kB
    compressed: over pypdf's 75 MB decompression limit."""
    stream = zlib.compress(b"BT /F1 12 Tf 72 720 Td (Cardiff Council inspection report) Tj ET\n" + b" " * 80_000_000, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def make_docx(path: Path, text: str) -> Path:
    import docx

    d = docx.Document()
    for para in text.split("\n\n"):
        d.add_paragraph(para.strip())
    d.save(path)
    return path


def make_docx_bomb(path: Path, text_bytes: int = 20_000_000) -> Path:
    """A DOCX whose document.xml holds one text node of ``text_bytes`` letters (20 kB zipped)."""
    good = make_docx(path.with_name("seed.docx"), "placeholder paragraph")
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace(b"placeholder paragraph", b"A" * text_bytes)
            zout.writestr(item, data)
    good.unlink()
    return path


def one_sentence(message: str) -> None:
    """A user-facing message: one sentence, no traceback, no exception class names."""
    assert message.endswith(".") and "Traceback" not in message and "Error:" not in message, message
    assert "\n" not in message, message


# ---------------------------------------------------------------- item 1: encrypted PDFs


def test_an_aes_pdf_with_an_empty_user_password_is_read(tmp_path):
    path = make_pdf(tmp_path / "torfaen.pdf", TORFAEN, user_password="")
    from pypdf import PdfReader

    assert PdfReader(path).is_encrypted  # really encrypted, with AES-256
    assert "reviewed 27 case files" in load_file(path).source_text


def test_a_pdf_that_needs_a_password_gets_one_sentence(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", TORFAEN, user_password="secret")
    with pytest.raises(PasswordProtectedError) as exc:
        load_file(path)
    assert str(exc.value) == (
        "locked.pdf is password-protected, so Arolwg cannot read it: save a copy without the password and add that instead."
    )
    assert isinstance(exc.value, CorruptFileError)  # so an index run skips it and goes on


# ---------------------------------------------------------------- item 2: bombs and any exception


def test_a_flate_bomb_pdf_gets_one_sentence(tmp_path):
    path = make_flate_bomb(tmp_path / "bomb.pdf")
    assert path.stat().st_size < 200_000
    with pytest.raises(CorruptFileError) as exc:
        load_file(path)
    message = str(exc.value)
    one_sentence(message)
    assert message.startswith("bomb.pdf could not be read (part of it would decompress to far more data than any report holds")


@pytest.mark.parametrize("suffix, kind", [(".pdf", "PDF"), (".docx", "Word document"), (".html", "HTML file"), (".txt", "text file")])
def test_any_exception_while_reading_a_file_becomes_a_sentence_about_that_file(tmp_path, monkeypatch, suffix, kind, caplog):
    import index.load as load

    def broken(*a, **k):
        raise RuntimeError(f"parser internals at {tmp_path}/deep/inside")

    for name in ("_pdf", "_docx", "_html", "_decode"):
        monkeypatch.setattr(load, name, broken)
    path = tmp_path / f"report{suffix}"
    path.write_bytes(b"some bytes")
    caplog.set_level("DEBUG", logger="index.load")
    with pytest.raises(CorruptFileError) as exc:
        load_file(path)
    assert str(exc.value) == f"report{suffix} could not be read (it is not a readable {kind}): check the file opens, or export it again."
    assert "parser internals" in caplog.text  # the traceback is in the debug log


def test_a_folder_with_a_bomb_and_encrypted_pdfs_loses_only_the_bad_files(tmp_path, embeddings, settings):
    from index import build_index, list_reports
    from rag import query

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "powys.txt").write_text(NEW_REPORT, encoding="utf-8")
    make_pdf(reports / "torfaen.pdf", TORFAEN, user_password="")
    make_pdf(reports / "locked.pdf", TORFAEN, user_password="secret")
    make_flate_bomb(reports / "bomb.pdf")
    index_dir = tmp_path / "index"
    report = build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    assert sorted(report.added) == ["powys.txt", "torfaen.pdf"]
    failed = dict(report.failed)
    assert sorted(failed) == ["bomb.pdf", "locked.pdf"]
    assert failed["bomb.pdf"].startswith("bomb.pdf could not be read (part of it would decompress")
    assert failed["locked.pdf"].startswith("locked.pdf is password-protected")
    for why in failed.values():
        one_sentence(why)
    assert sorted(r.report_id for r in list_reports(index_dir, settings)) == ["powys.txt", "torfaen.pdf"]
    ans = query("How many case files did inspectors review in Torfaen?", index_dir=index_dir, settings=settings, embeddings=embeddings)
    assert "27" in ans.text and ans.citations[0].source == "torfaen.pdf"


# ---------------------------------------------------------------- the web upload


@pytest.fixture
def small_engine(tmp_path, embeddings, settings, monkeypatch):
    """A web-chat engine over a fresh index of one small report (powys.txt); Gradio's upload
    folder is tmp_path/gradio."""
    from index import build_index
    from ui import handlers as H

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "powys.txt").write_text(NEW_REPORT, encoding="utf-8")
    build_index(reports, tmp_path / "index", settings=settings, embeddings=embeddings)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return H.Engine(settings=settings, index_dir=tmp_path / "index", embeddings=embeddings)


def gradio_upload(tmp_path: Path, name: str, n: int = 0) -> Path:
    """Where Gradio puts an uploaded file: <upload folder>/<hash>/<name>."""
    folder = tmp_path / "gradio" / f"{n:040x}"
    folder.mkdir(parents=True)
    return folder / name


def test_an_upload_adds_the_good_files_and_reports_the_bad_one(small_engine, tmp_path):
    from ui import handlers as H

    good = make_pdf(gradio_upload(tmp_path, "torfaen.pdf", 1), TORFAEN, user_password="")
    bomb = make_flate_bomb(gradio_upload(tmp_path, "bomb.pdf", 2))
    junk = gradio_upload(tmp_path, "notes.docx", 3)
    junk.write_bytes(b"this is not a zip file at all \x00\x01" * 10)
    message = H.upload_reports(small_engine, [str(bomb), str(good), str(junk)])
    assert message.startswith("Added **torfaen.pdf**. **bomb.pdf** was not added: bomb.pdf could not be read (part of it")
    assert "**notes.docx** was not added: notes.docx could not be read (it is not a readable Word document): " in message
    assert str(tmp_path) not in message and "/tmp" not in message  # the server's temp path is not shown
    assert sorted(r.report_id for r in small_engine.reports()) == ["powys.txt", "torfaen.pdf"]
    # The uploads are gone from Gradio's folder: the index keeps each report's text.
    assert not good.exists() and not bomb.exists() and not junk.exists()
    assert "reviewed 27 case files" in small_engine.source_text("torfaen.pdf")


def test_an_upload_named_like_an_indexed_report_is_kept_beside_it(small_engine, tmp_path):
    from ui import handlers as H

    other = gradio_upload(tmp_path, "powys.txt", 1)
    other.write_text(NEW_REPORT.replace("February 2021", "January 2021"), encoding="utf-8")
    message = H.upload_reports(small_engine, [str(other)])
    assert message == (
        "Added **powys (2).txt**. **powys.txt** has the same name as an indexed report but different text, so it "
        "was kept beside it as **powys (2).txt**; to replace the indexed report instead, remove it first, then "
        "upload the file again."
    )
    assert sorted(r.report_id for r in small_engine.reports()) == ["powys (2).txt", "powys.txt"]
    assert "February 2021" in small_engine.source_text("powys.txt")  # the indexed report is untouched
    assert "January 2021" in small_engine.source_text("powys (2).txt")

    again = gradio_upload(tmp_path, "powys.txt", 2)
    again.write_text(NEW_REPORT.replace("February 2021", "January 2021"), encoding="utf-8")
    assert H.upload_reports(small_engine, [str(again)]) == (
        "Already indexed and unchanged: powys (2).txt. **powys.txt** differs from the indexed report of that name; "
        "its text is already indexed as **powys (2).txt**."
    )
    same = gradio_upload(tmp_path, "powys.txt", 3)
    same.write_text(NEW_REPORT, encoding="utf-8")
    assert H.upload_reports(small_engine, [str(same)]) == "Already indexed and unchanged: powys.txt."
    assert sorted(r.report_id for r in small_engine.reports()) == ["powys (2).txt", "powys.txt"]


def test_a_file_outside_gradios_folder_is_never_deleted(small_engine, tmp_path):
    from ui import handlers as H

    mine = tmp_path / "my-reports" / "torfaen.txt"
    mine.parent.mkdir()
    mine.write_text(TORFAEN, encoding="utf-8")
    assert H.upload_reports(small_engine, [str(mine)]) == "Added **torfaen.txt**."
    assert mine.read_text(encoding="utf-8") == TORFAEN


# ---------------------------------------------------------------- item 7: smaller surprises


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_text_file_is_decoded(tmp_path, encoding):
    path = tmp_path / "torfaen.txt"
    text = TORFAEN.replace("Wales", "Wales (Arolygiaeth Gofal Cymru, ŵyr)")
    path.write_bytes(text.encode(encoding))  # "utf-16" writes a byte-order mark; the others do not
    assert load_file(path).source_text == text


def test_binary_data_is_still_called_binary_data(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(CorruptFileError, match=r"^data\.txt could not be read \(it holds binary data, not text\)"):
        load_file(path)


def test_a_docx_zip_bomb_gets_plain_english(tmp_path, monkeypatch):
    import index.load as load

    bomb = make_docx_bomb(tmp_path / "bomb.docx")
    with pytest.raises(CorruptFileError) as exc:
        load_file(bomb)
    message = str(exc.value)
    one_sentence(message)
    assert "XML_PARSE_HUGE" not in message and "line 2" not in message
    assert message == (
        "bomb.docx could not be read (part of its text is too large to read safely, as in a zip bomb or a damaged "
        "document): if it is a genuine report, save or export it again and add that copy."
    )
    # One that would unpack to more XML than any report has is refused before it is unpacked.
    monkeypatch.setattr(load, "MAX_DOCX_XML_BYTES", 5_000_000)
    with pytest.raises(CorruptFileError, match=r"^bomb\.docx could not be read \(it would unpack to 2\d MB of text, far more"):
        load_file(bomb)


def test_a_garbage_docx_names_only_the_file(tmp_path):
    folder = tmp_path / "gradio" / "0123abcd"
    folder.mkdir(parents=True)
    junk = folder / "notes.docx"
    junk.write_bytes(b"PK\x03\x04 not really a zip" * 20)
    with pytest.raises(CorruptFileError) as exc:
        load_file(junk)
    assert str(exc.value) == "notes.docx could not be read (it is not a readable Word document): check the file opens, or export it again."
    real = make_docx(tmp_path / "real.docx", TORFAEN)
    assert "reviewed 27 case files" in load_file(real).source_text


# ---------------------------------------------------------------- item 5: input and settings


def run_arolwg(*args: str | bytes, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    assert ARGOLWG.is_file(), f"the arolwg script is missing beside {sys.executable}: run `make install-dev`"
    return subprocess.run(
        [str(ARGOLWG), *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}, cwd=cwd
    )


@pytest.mark.parametrize(
    "content, why",
    [
        ('[["q"]]', 'has turn 1 as ["q"], not a [question, answer] pair of texts'),
        ('{"a": 1}', "holds a JSON object, not a list"),
        ("not json", "is not valid JSON (line 1)"),
    ],
)
def test_a_malformed_history_file_gets_one_sentence_with_the_expected_shape(tmp_path, content, why):
    (tmp_path / "turns.json").write_text(content)
    done = run_arolwg("ask", "And in Cardiff?", "--history", "turns.json", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"arolwg: The history file turns.json {why}: it must be a JSON list of [question, answer] pairs, "
        'such as [["How many case files were reviewed in Cardiff?", "50 case files."]].\n'
    )


@pytest.mark.parametrize(
    "variable, value, accepts",
    [
        ("AROLWG_MAX_FILE_MB", "abc", "a number above 0"),
        ("AROLWG_TOP_K", "0", "a whole number from 1 to 50"),
        ("AROLWG_LLM", "gpt", "one of none, openai, ollama, gguf"),
    ],
)
def test_an_invalid_setting_gets_one_sentence_naming_it(tmp_path, monkeypatch, variable, value, accepts):
    from rag.settings import get_settings

    sentence = f"{variable} is set to {value!r}, but it must be {accepts}: correct it or unset it."
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as exc:
        get_settings()
    assert str(exc.value) == sentence
    done = run_arolwg("ask", "How many case files were reviewed in Cardiff?")
    assert (done.returncode, done.stderr) == (2, f"arolwg: {sentence}\n")


def test_index_settings_are_checked_too(monkeypatch):
    from index.settings import get_index_settings

    monkeypatch.setenv("AROLWG_EMBEDDING_BATCH_SIZE", "-3")
    with pytest.raises(SettingsError, match=r"^AROLWG_EMBEDDING_BATCH_SIZE is set to '-3', but it must be a whole number of at least 1"):
        get_index_settings()


def test_a_question_of_undecodable_bytes_is_an_empty_question():
    done = run_arolwg("ask", b"\xed\xa0\x80")  # a lone surrogate once decoded: not text
    assert (done.returncode, done.stderr) == (2, "arolwg: The question is empty: type a question about the inspection reports.\n")


def test_a_lone_surrogate_in_a_question_is_dropped(small_engine, settings, embeddings):
    from rag import query

    with pytest.raises(EmptyQuestionError):
        query("\ud800", index_dir=small_engine.index_dir, settings=settings, embeddings=embeddings)
    ans = query(
        "Where did Powys open a new respite \ud800centre for disabled children?\udfff",
        index_dir=small_engine.index_dir, settings=settings, embeddings=embeddings,
    )
    assert "Llandrindod Wells" in ans.text and "\ud800" not in ans.question
    ans.text.encode("utf-8")  # every part of the answer is valid text


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"k": 0}, "k must be a positive whole number (how many passages to retrieve), not 0."),
        ({"k": -2}, "k must be a positive whole number (how many passages to retrieve), not -2."),
        ({"k": 2.5}, "k must be a positive whole number (how many passages to retrieve), not 2.5."),
        ({"filters": "Cardiff"}, "got one of type str."),
        ({"filters": {"colour": "red"}}, "'colour' is not one of those keys."),
        ({"filters": {"authority": 3}}, "'authority' is of type int, not a council name."),
        ({"filters": {"source": ["a.txt", 2]}}, "'source' is of type list, not a report name."),
        ({"history": [["q"]]}, "history must be a list of (question, answer) pairs of text; turn 1 is \"['q']\", not a pair."),
        ({"history": {"a": 1}}, "history must be a list of (question, answer) pairs of text; got one of type dict."),
    ],
)
def test_api_arguments_are_checked(kwargs, expected, tmp_path):
    from rag import query, retrieve

    calls = [query] if "history" in kwargs else [query, retrieve]
    for fn in calls:
        with pytest.raises(ValueError) as exc:
            fn("How many case files were reviewed in Cardiff?", index_dir=tmp_path / "nowhere", **kwargs)
        assert str(exc.value).endswith(expected), str(exc.value)
        if "filters" in kwargs:
            assert str(exc.value).startswith('filters must be a dict such as {"authority": "Cardiff"}')
        assert isinstance(exc.value, ArolwgError)  # so the CLI and the UI show it as a sentence


def test_good_filters_still_pass():
    from rag.api import check_filters

    for f in (None, {}, {"authority": "Cardiff"}, {"council": ["Cardiff", "Wrexham"]}, {"report_id": ("a.txt",)}):
        assert check_filters(f) == f


# ---------------------------------------------------------------- a full disk


def _disk_full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_arolwg_index_is_one_sentence(tmp_path, monkeypatch, capsys):
    import index

    from rag.cli import main

    monkeypatch.setattr(index, "build_index", _disk_full)  # where `arolwg index` writes the index
    (tmp_path / "reports").mkdir()
    assert main(["index", "--reports", str(tmp_path / "reports"), "--index", str(tmp_path / "idx")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (  # after the progress bar's last redraw
        f"arolwg: The disk is full, so the index at {tmp_path / 'idx'} could not be written; "
        "the previous index is kept and still answers: free some disk space and try again."
    )


def test_a_full_disk_during_arolwg_ask_is_one_sentence(monkeypatch, capsys):
    import rag.api

    from rag.cli import main

    monkeypatch.setattr(rag.api, "query", _disk_full)  # e.g. while building the default index
    assert main(["ask", "How many case files were reviewed in Cardiff?"]) == 2
    assert capsys.readouterr().err == f"arolwg: {DiskFullError()}\n"


def test_a_full_disk_during_an_upload_is_one_sentence(small_engine, tmp_path, monkeypatch):
    import index

    from ui import handlers as H

    monkeypatch.setattr(index, "update_index", _disk_full)
    upload = gradio_upload(tmp_path, "torfaen.txt")
    upload.write_text(TORFAEN, encoding="utf-8")
    message = H.upload_reports(small_engine, [str(upload)])
    assert message == (
        "The disk is full, so the index could not be written; the previous index is kept and still answers: "
        "free some disk space and try again."
    )
    assert H.remove_report(small_engine, "powys.txt") == message
    assert [r.report_id for r in small_engine.reports()] == ["powys.txt"]
