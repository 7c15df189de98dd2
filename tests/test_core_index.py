"""Loading, cleaning, chunking, metadata and the on-disk index, on the real parts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CARDIFF, REPO, REPORTS, WREXHAM
from index.chunking import chunk_report, split_sentences
from index.clean import clean_text
from index.load import load_file
from index.meta import detect_meta
from rag.errors import CorruptFileError, ForeignIndexError, IndexMissingError, UnsupportedFileError


def _norm(s: str) -> str:
    s = re.sub(r"(?<=[a-z])-\s*\n\s*(?=[a-z])", "", s)
    return " ".join(s.split())


def test_index_package_exports_are_pinned():
    import index

    assert index.__all__ == [
        "IndexReport", "ReportInfo", "build_index", "clear_report_dates", "list_reports", "set_report_dates", "source_text",
        "update_index",
    ]


def test_clean_repairs_extraction_damage_and_maps_back_to_the_source():
    source = (
        "Report title\n\n"
        "Managers are currently\n\nreviewing the resources avail-\nable to the service.\n"
        "\f\n12\n\nPage 3 of 9\n\nThe next paragraph.\n"
    )
    m = clean_text(source)
    assert m.text == "Report title\n\nManagers are currently reviewing the resources available to the service.\n\nThe next paragraph.\n"
    start = m.text.index("Managers")
    end = m.text.index("service.") + len("service.")
    s, e = m.source_span(start, end)
    assert source[s:e] == "Managers are currently\n\nreviewing the resources avail-\nable to the service."


def test_clean_drops_running_headers_repeated_at_page_edges():
    pages = [f"CIW Report on Somewhere\nBody text of page {i} is here.\n{i}" for i in range(1, 6)]
    m = clean_text("\f".join(pages))
    assert "CIW Report on Somewhere" not in m.text
    assert m.text.count("Body text of page") == 5


def test_wrexham_broken_sentence_is_one_chunk_with_a_verbatim_span():
    loaded = load_file(REPORTS / WREXHAM)
    chunks, sentences = chunk_report(WREXHAM, clean_text(loaded.source_text))
    [chunk] = [c for c in chunks if "Managers are currently reviewing" in c.text]
    assert chunk.section == ("Children's Social Services: Risk Based Inspection", "Prevention", "Strengths")
    assert _norm(loaded.source_text[chunk.start : chunk.end]) == _norm(chunk.text)
    [sent] = [s for s in sentences if s.text.startswith("Managers are currently reviewing")]
    assert loaded.source_text[sent.start : sent.end] == (
        "Managers are currently\n\nreviewing the resources available to the IAA service with a view to "
        "re-engaging partners who have drifted away from the service."
    )


@pytest.mark.parametrize("name", [WREXHAM, CARDIFF])
def test_every_chunk_and_sentence_span_holds_its_text(name):
    loaded = load_file(REPORTS / name)
    chunks, sentences = chunk_report(name, clean_text(loaded.source_text))
    assert len(chunks) > 30
    for c in chunks:
        assert _norm(loaded.source_text[c.start : c.end]) == _norm(c.text), c.id
    for s in sentences:
        assert _norm(loaded.source_text[s.start : s.end]) == _norm(s.text)


def test_numbered_findings_are_chunks_under_their_heading_path():
    loaded = load_file(REPORTS / WREXHAM)
    chunks, _ = chunk_report(WREXHAM, clean_text(loaded.source_text))
    carers = [c for c in chunks if c.text.startswith("4. Carers' voices are not heard consistently.")]
    assert [c.section for c in carers] == [
        ("Adult Social Services: Performance Evaluation Inspection", "People voice and choice", "What needs to improve")
    ]
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))
    again, _ = chunk_report(WREXHAM, clean_text(loaded.source_text))
    assert [c.id for c in again] == ids  # content-hash ids are stable


def test_split_sentences_keeps_list_markers_and_abbreviations_out_of_the_way():
    text = "2. Work e.g. visits must improve. Managers agree.\nNext line"
    assert [text[s:e] for s, e in split_sentences(text)] == ["Work e.g. visits must improve.", "Managers agree.", "Next line"]


def test_a_title_wrapped_over_several_lines_is_one_sentence():
    text = "Report of Children's Services Risk\nBased Inspection and\nAdults Services Performance\nEvaluation Inspection\n\nWe focused on:\n- carers\n- advocacy"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Report of Children's Services Risk\nBased Inspection and\nAdults Services Performance\nEvaluation Inspection",
        "We focused on:",
        "carers",
        "advocacy",
    ]


def test_an_answer_quoting_a_wrapped_title_reads_as_one_line(built_index, settings, embeddings):
    from rag import query

    ans = query("What type of inspection did CIW carry out in each council?", index_dir=built_index, settings=settings, embeddings=embeddings)
    title = next(c for c in ans.citations if c.quote.startswith("Report of Children's Services Risk"))
    # The quote is the report's own text, line breaks and all; the answer reads it as one line.
    assert title.quote == "Report of Children's Services Risk\nBased Inspection\nand\nAdults Services Performance\nEvaluation Inspection"
    assert "Report of Children's Services Risk Based Inspection and Adults Services Performance Evaluation Inspection" f" [{title.n}]" in ans.text


def test_metadata_is_detected_from_the_text():
    got = {}
    for name in (WREXHAM, CARDIFF):
        loaded = load_file(REPORTS / name)
        m = detect_meta(name, loaded.source_text, clean_text(loaded.source_text).text)
        got[name] = (m.authority, m.kind, m.dates)
    assert got == {
        WREXHAM: ("Wrexham County Borough Council", "Risk based inspection and performance evaluation inspection", "12-23 October 2020"),
        CARDIFF: ("Cardiff Council", "Risk based inspection", "23 November - 3 December 2020"),
    }


def _write_pdf(path: Path, text: str) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_font("Helvetica", size=10)

    def header() -> None:
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 8, "Inspection of Cardiff Council social services", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)

    def footer() -> None:
        pdf.set_y(-15)
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 8, str(pdf.page_no()), align="C")

    pdf.header = header
    pdf.footer = footer
    pdf.add_page()
    for para in text.split("\n\n"):
        para = para.strip().replace("’", "'").replace("–", "-")
        if para:
            pdf.multi_cell(0, 5, para.encode("latin-1", "replace").decode("latin-1"))
            pdf.ln(3)
    pdf.output(str(path))


def test_pdf_docx_and_html_reports_are_indexed_and_cited_verbatim(tmp_path, embeddings, settings):
    import docx

    from index import build_index, list_reports, source_text
    from rag import query

    reports = tmp_path / "reports"
    reports.mkdir()
    cardiff = (REPORTS / CARDIFF).read_text()
    _write_pdf(reports / "cardiff.pdf", cardiff)
    d = docx.Document()
    for para in (REPORTS / WREXHAM).read_text().split("\n\n"):
        if para.strip():
            d.add_paragraph(para.strip())
    d.save(reports / "wrexham.docx")
    (reports / "note.html").write_text(
        "<html><head><title>x</title><style>p{}</style></head><body><nav>Menu</nav><main>"
        "<h1>Torfaen County Borough Council assurance check</h1><p>Torfaen County Borough Council "
        "was inspected in <b>May 2022</b>. Inspectors reviewed 27 case files and found that "
        "safeguarding referrals were handled promptly by the duty team in every case they read.</p></main></body></html>"
    )
    index_dir = tmp_path / "index"
    report = build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    assert sorted(report.added) == ["cardiff.pdf", "note.html", "wrexham.docx"] and report.failed == []
    infos = {r.report_id: (r.authority, r.dates) for r in list_reports(index_dir, settings)}
    assert infos == {
        "cardiff.pdf": ("Cardiff Council", "23 November - 3 December 2020"),
        "note.html": ("Torfaen County Borough Council", "May 2022"),
        "wrexham.docx": ("Wrexham County Borough Council", "12-23 October 2020"),
    }
    for question, source, fact in [
        ("How many case files were reviewed in Cardiff?", "cardiff.pdf", "50"),
        ("How many case files were reviewed in Torfaen?", "note.html", "27"),
        ("Is Wrexham children's services still inadequate?", "wrexham.docx", "inadequate"),
    ]:
        ans = query(question, index_dir=index_dir, settings=settings, embeddings=embeddings)
        assert not ans.abstained and fact in ans.text, (question, ans.text)
        assert ans.citations[0].source == source
        for c in ans.citations:
            assert source_text(c.source, index_dir, settings)[c.start : c.end] == c.quote


def test_bad_files_are_reported_and_the_rest_indexed(tmp_path, embeddings, settings):
    from index import build_index, list_reports

    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(REPORTS / CARDIFF, reports)
    (reports / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01")
    (reports / "empty.txt").write_text("")
    (reports / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    report = build_index(reports, tmp_path / "index", settings=settings, embeddings=embeddings)
    assert report.added == [CARDIFF]
    assert sorted(n for n, _ in report.failed) == ["broken.pdf", "empty.txt", "sheet.xlsx"]
    why = dict(report.failed)
    assert why["empty.txt"] == "empty.txt could not be read (it is empty): check the file opens, or export it again."
    assert [r.report_id for r in list_reports(tmp_path / "index", settings)] == [CARDIFF]


def test_loader_errors_are_plain_sentences(tmp_path):
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"not a pdf at all, just some bytes that go on for a while")
    with pytest.raises(CorruptFileError, match=r"^x\.pdf could not be read \(it is not a readable PDF"):
        load_file(bad)
    other = tmp_path / "data.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedFileError) as exc:
        load_file(other)
    assert str(exc.value) == "data.csv is a .csv file, which Arolwg cannot read: use PDF, DOCX, HTML, Markdown or plain text."


def test_reindexing_is_idempotent_and_tracks_changes(tmp_path, embeddings, settings):
    from index import build_index, list_reports
    from index.store import current_generation

    reports = tmp_path / "reports"
    reports.mkdir()
    for n in (CARDIFF, WREXHAM):
        shutil.copy(REPORTS / n, reports)
    index_dir = tmp_path / "index"
    first = build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    assert sorted(first.added) == [CARDIFF, WREXHAM]
    again = build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    assert (again.added, sorted(again.skipped), again.removed) == ([], [CARDIFF, WREXHAM], [])
    assert current_generation(index_dir) == 1  # nothing changed, nothing written

    (reports / WREXHAM).unlink()
    text = (REPORTS / CARDIFF).read_text().replace("50 case files", "51 case files")
    (reports / CARDIFF).write_text(text)
    third = build_index(reports, index_dir, settings=settings, embeddings=embeddings)
    assert (third.added, third.skipped, third.removed) == ([CARDIFF], [], [WREXHAM])
    assert [r.report_id for r in list_reports(index_dir, settings)] == [CARDIFF]
    # The previous generation stays for readers that opened it before the switch; older ones go.
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000001", "gen-000002"]


def test_a_failure_midway_leaves_the_previous_index_usable(tmp_path, embeddings, settings, monkeypatch, built_index):
    import index.store as store_mod
    from index import update_index
    from rag import query

    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)

    real_save = store_mod.np.save

    def save(path, *a, **k):
        # Fails writing the new generation, after the new report's segment and passages are in.
        if "vocab_vecs" in str(path):
            raise OSError("disk full")
        return real_save(path, *a, **k)

    monkeypatch.setattr(store_mod.np, "save", save)
    extra = tmp_path / "extra.txt"
    extra.write_text((REPORTS / CARDIFF).read_text().replace("Cardiff", "Newport"))
    with pytest.raises(OSError):
        update_index(index_dir, add=[extra], settings=settings, embeddings=embeddings)
    monkeypatch.undo()
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000001"]
    ans = query("How many case files were reviewed in Cardiff?", index_dir=index_dir, settings=settings, embeddings=embeddings)
    assert "50" in ans.text
    # The passages the failed write put in Chroma are invisible: Newport is not in this index.
    newport = query("How many case files were reviewed in Newport?", index_dir=index_dir, settings=settings, embeddings=embeddings)
    assert {c.source for c in newport.citations} <= {CARDIFF, WREXHAM}
    # The next write completes it, reusing the segment the failed one finished.
    again = update_index(index_dir, add=[extra], settings=settings, embeddings=embeddings)
    assert again.added == ["extra.txt"]
    assert sorted(p.name for p in index_dir.glob("gen-*")) == ["gen-000001", "gen-000002"]


def test_update_adds_and_removes_reports(tmp_path, embeddings, settings, built_index):
    from index import list_reports, update_index
    from rag import retrieve

    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    extra = tmp_path / "newport-2021.txt"
    extra.write_text((REPORTS / CARDIFF).read_text().replace("Cardiff", "Newport"))
    added = update_index(index_dir, add=[extra], settings=settings, embeddings=embeddings)
    assert (added.added, sorted(added.skipped)) == (["newport-2021.txt"], [])
    assert [r.authority for r in list_reports(index_dir, settings)] == ["Cardiff Council", "Wrexham County Borough Council", "Newport City Council"]
    hits = retrieve("How many case files were reviewed in Newport?", k=3, index_dir=index_dir, settings=settings, embeddings=embeddings)
    assert {p.source for p in hits} == {"newport-2021.txt"}
    removed = update_index(index_dir, remove=["newport-2021.txt"], settings=settings, embeddings=embeddings)
    assert removed.removed == ["newport-2021.txt"]
    assert [r.report_id for r in list_reports(index_dir, settings)] == [CARDIFF, WREXHAM]


def test_missing_and_foreign_index_dirs_are_refused(tmp_path, settings, embeddings):
    from index import build_index
    from rag import query

    with pytest.raises(IndexMissingError):
        query("Who was inspected?", index_dir=tmp_path / "nothing-here", settings=settings, embeddings=embeddings)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ForeignIndexError):
        build_index(REPORTS, foreign, settings=settings, embeddings=embeddings)
    assert [p.name for p in foreign.iterdir()] == ["cat.jpg"]


def test_questions_are_encoded_without_sentence_transformers_to_the_same_vectors(embeddings):
    """The transformers-only path a query process uses gives sentence-transformers' vectors."""
    from index.embeddings import SentenceTransformerEmbeddings, _mean_pooling_config

    assert _mean_pooling_config(embeddings.path) == {"max_seq_length": 256, "normalize": True}
    texts = [
        "What must Wrexham improve about carers' assessments?",
        "advocacy",
        "Cyngor Bwrdeistref Sirol Wrecsam – gwasanaethau cymdeithasol ✓",
        " ".join(["The local authority must ensure that supervision is regular and recorded."] * 40),  # > 256 tokens
    ]
    fresh = SentenceTransformerEmbeddings(embeddings.path, batch_size=3)
    light = fresh.encode(texts)
    assert fresh._light is not None and fresh._model is None  # sentence-transformers never loaded
    reference = embeddings.model.encode(texts, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)
    assert light.shape == (4, 384) and light.dtype == np.float32
    assert float(np.abs(light - reference).max()) < 1e-5
    assert fresh.dim == 384 and len(fresh.embed_query(texts[0])) == 384


CASE_FILES_ANSWER = (
    "In total we reviewed 50 case files and followed 14 of these with interviews with social workers "
    "and family members. [1]"
)
TRACE_TEXTS = [
    "What must Wrexham improve about carers' assessments?",
    "advocacy",
    "Cyngor Bwrdeistref Sirol Wrecsam – gwasanaethau cymdeithasol ✓",
    " ".join(["The local authority must ensure that supervision is regular and recorded."] * 40),  # > 256 tokens
    "",
]


def test_the_compiled_question_encoder_gives_sentence_transformers_vectors(tmp_path, embeddings):
    """The first transformers-only load compiles the model into the cache folder; the next process
    (a new embeddings object) encodes with the compiled model: the same vectors, no transformers."""
    from index.embeddings import SentenceTransformerEmbeddings, _Traced

    cache = tmp_path / "models"
    first = SentenceTransformerEmbeddings(embeddings.path, batch_size=3, cache_dir=cache)
    via_transformers = first.encode(TRACE_TEXTS)
    assert type(first._light).__name__ == "_MeanPooling"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".pt"]  # the trace and its tokenizer, nothing left over
    second = SentenceTransformerEmbeddings(embeddings.path, batch_size=3, cache_dir=cache)
    compiled = second.encode(TRACE_TEXTS)
    assert isinstance(second._light, _Traced) and second._model is None
    reference = embeddings.model.encode(TRACE_TEXTS, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)
    assert compiled.shape == (5, 384) and compiled.dtype == np.float32
    assert float(np.abs(compiled - reference).max()) < 1e-5
    assert float(np.abs(compiled - via_transformers).max()) < 1e-5
    one_by_one = np.vstack([second.encode([t]) for t in TRACE_TEXTS])  # other padded lengths than the trace's
    assert float(np.abs(one_by_one - reference).max()) < 1e-5
    assert second.dim == 384


def test_a_new_process_with_the_compiled_model_answers_without_importing_transformers(tmp_path, built_index, embeddings):
    cache = tmp_path / "models"
    SentenceTransformerEmbeddings = type(embeddings)
    SentenceTransformerEmbeddings(embeddings.path, cache_dir=cache).encode(["compile it"])
    code = (
        "import sys; from rag import query; "
        f"a = query('How many case files were reviewed in Cardiff?', index_dir={str(built_index)!r}); "
        "print(a.text); print(sorted(m for m in ('transformers', 'sentence_transformers') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")} | {"AROLWG_MODEL_CACHE_DIR": str(cache)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == [CASE_FILES_ANSWER, "[]"]


def test_a_damaged_compiled_model_is_compiled_again(tmp_path, embeddings, caplog):
    from index.embeddings import SentenceTransformerEmbeddings, _Traced

    cache = tmp_path / "models"
    SentenceTransformerEmbeddings(embeddings.path, cache_dir=cache).encode(["compile it"])
    (pt,) = cache.glob("*.pt")
    pt.write_bytes(pt.read_bytes()[:1000])
    again = SentenceTransformerEmbeddings(embeddings.path, cache_dir=cache)
    vec = again.encode([TRACE_TEXTS[0]])
    assert type(again._light).__name__ == "_MeanPooling"  # read through transformers this time
    assert "the compiled embedding model in" in caplog.text and "cannot be read" in caplog.text
    reference = embeddings.model.encode(TRACE_TEXTS[:1], normalize_embeddings=True, convert_to_numpy=True)
    assert float(np.abs(vec - reference).max()) < 1e-5
    third = SentenceTransformerEmbeddings(embeddings.path, cache_dir=cache)
    third.encode(["x"])
    assert isinstance(third._light, _Traced)  # compiled again by the second


def test_a_model_folder_that_is_missing_is_one_sentence_where_it_is_used(tmp_path):
    from index.embeddings import SentenceTransformerEmbeddings
    from rag.errors import ModelLoadError

    broken = SentenceTransformerEmbeddings(str(tmp_path / "no-model"))
    with pytest.raises(ModelLoadError) as err:
        broken.embed_query("carers' assessments")
    assert str(err.value) == (
        f"The embedding model {tmp_path / 'no-model'} could not be loaded (no such folder): set "
        "AROLWG_EMBEDDING_MODEL to a local sentence-transformers folder, or reinstall Arolwg."
    )
