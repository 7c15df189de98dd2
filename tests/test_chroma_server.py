"""Arolwg against a real Chroma server (``chroma run``, shipped with chromadb), beside on-disk Chroma.

With ``AROLWG_CHROMA_HOST`` set, passage vectors, texts and metadata live on the server; the
manifest, the per-report segments (chunks, sentences and their vectors), the report texts, the
keyword index and the vocabulary stay in the index folder. These tests build one index of the
bundled reports per backend ("disk": the session ``built_index``; "server": ``server_index``) and
check that both give the same reports, passages, answers and citations, then what only a server
brings: several processes and index folders sharing it, and a server that is not there.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CARDIFF, NEW_REPORT, REPO, REPORTS, WREXHAM, free_port, run_chroma_server
from rag.errors import ChromaServerError

POWYS = "powys-2021-03.txt"
OTHER_POWYS = "powys-other-index.txt"  # each test its own file name: chunk ids include it
NEWPORT = "newport-2021-06.txt"
NEWPORT_REPORT = """Inspection of Newport City Council social services

Introduction

This report sets out the findings of the assurance check of Newport City Council carried out from 7 to 11 June 2021.

Findings

The local authority opened a new family centre for young carers in Caerleon in May 2021.
Young carers told inspectors that the family centre helped them keep up with school.
"""
NEWPORT_Q = "What did Newport open for young carers?"
CASE_FILES = "How many case files were reviewed in Cardiff?"
# Names no council: a search of every report, which is the Chroma collection's (a question naming a
# council is searched in its reports' vectors, held in the index folder's segments).
WHOLE_CORPUS = "How many case files did the inspectors review?"
CASE_FILES_ANSWER = (
    "In total we reviewed 50 case files and followed 14 of these with interviews with social workers "
    "and family members. [1]"
)
# A handful of eval questions of every kind, answered alike by both backends.
EVAL_IDS = ["wx-fact-03", "cf-fact-01", "wx-find-01", "cf-find-01", "jd-01", "pa-02", "cmp-02", "un-01", "fu-01", "fu-02"]


@dataclass(frozen=True)
class Backend:
    name: str
    index: Path
    settings: object

    def ask(self, question, embeddings, **kw):
        from rag import query

        return query(question, index_dir=self.index, settings=self.settings, embeddings=embeddings, **kw)

    def retrieve(self, question, embeddings, **kw):
        from rag import retrieve

        return retrieve(question, index_dir=self.index, settings=self.settings, embeddings=embeddings, **kw)


def on_server(settings, address, **more):
    host, port = address
    return settings.model_copy(update={"chroma_host": host, "chroma_port": port, **more})


@pytest.fixture(scope="session")
def server_settings(settings, chroma_server):
    return on_server(settings, chroma_server)


@pytest.fixture(scope="session")
def server_index(tmp_path_factory, server_settings, embeddings) -> Path:
    """An index of the two bundled reports whose passages are on the session's Chroma server."""
    from index import build_index

    path = tmp_path_factory.mktemp("server-index")
    report = build_index(REPORTS, path, settings=server_settings, embeddings=embeddings)
    assert sorted(report.added) == [CARDIFF, WREXHAM]
    return path


@pytest.fixture(params=["disk", "server"])
def backend(request, settings) -> Backend:
    if request.param == "disk":
        return Backend("disk", request.getfixturevalue("built_index"), settings)
    return Backend("server", request.getfixturevalue("server_index"), request.getfixturevalue("server_settings"))


def reports_folder(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for fname, text in files.items():
        (folder / fname).write_text(text)
    return folder


def server_client(address):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port = address
    return chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))


def collections_holding(address, ids: list[str]) -> list:
    """The server's collections that hold every one of ``ids`` (whatever they are named)."""
    out = []
    for col in server_client(address).list_collections():
        if len(col.get(ids=ids, include=[])["ids"]) == len(ids):
            out.append(col)
    return out


def one_sentence(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith(".") and "Traceback" not in msg, msg
    return msg


# ----------------------------------------------------------------------------------- the index


def test_both_backends_index_the_same_reports(built_index, settings, server_index, server_settings):
    from index import list_reports

    disk = list_reports(built_index, settings)
    server = list_reports(server_index, server_settings)
    assert [r.report_id for r in server] == [CARDIFF, WREXHAM]
    assert server == disk  # titles, councils, dates, hashes and passage counts


def test_passages_go_to_the_server_and_the_rest_stays_in_the_index_folder(
    server_index, server_settings, chroma_server, built_index, embeddings
):
    from index import list_reports, source_text

    # No Chroma database in a server-backed index folder; the on-disk backend has one.
    assert not list(server_index.rglob("chroma.sqlite3"))
    assert list(built_index.rglob("chroma.sqlite3"))
    # The server holds the passages: their vectors, texts and metadata.
    hits = Backend("server", server_index, server_settings).retrieve("supervision of practitioners", embeddings, k=6)
    assert {p.source for p in hits} == {CARDIFF, WREXHAM}
    cols = collections_holding(chroma_server, [p.chunk_id for p in hits])
    assert len(cols) == 1, [c.name for c in cols]
    got = cols[0].get(ids=[p.chunk_id for p in hits], include=["documents", "metadatas", "embeddings"])
    by_id = {i: (doc, meta, vec) for i, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])}
    n_passages = sum(r.n_chunks for r in list_reports(server_index, server_settings))
    assert cols[0].count() == n_passages
    for p in hits:
        doc, meta, vec = by_id[p.chunk_id]
        assert doc == p.text and p.source in meta.values() and len(vec) == 384
    # Reports and their texts come from the folder: listing them needs no server.
    unreachable = on_server(server_settings, ("127.0.0.1", free_port()))
    assert [r.report_id for r in list_reports(server_index, unreachable)] == [CARDIFF, WREXHAM]
    assert "50 case files" in source_text(CARDIFF, server_index, unreachable)


# ------------------------------------------------------------------------- retrieval and answers


def test_a_question_naming_a_council_is_scoped_to_its_report(backend, embeddings):
    hits = backend.retrieve("What did inspectors find about direct payments in Cardiff?", embeddings, k=5)
    assert [p.source for p in hits] == [CARDIFF] * 5
    assert "direct payments" in hits[0].text


def test_a_comparison_retrieves_from_each_named_report(backend, embeddings):
    hits = backend.retrieve("How do Wrexham and Cardiff compare on staff supervision?", embeddings, k=6)
    assert [p.source for p in hits] == [WREXHAM, CARDIFF] * 3


@pytest.mark.parametrize("filters", [{"authority": "Wrexham"}, {"source": WREXHAM}])
def test_filters_restrict_the_reports_searched(backend, embeddings, filters):
    hits = backend.retrieve("supervision of practitioners", embeddings, k=4, filters=filters)
    assert len(hits) == 4 and {p.source for p in hits} == {WREXHAM}


def test_dense_search_alone_finds_the_case_file_count(backend, embeddings):
    # Dense search over every report is the part that asks Chroma (the server, for the server backend).
    hits = backend.retrieve(WHOLE_CORPUS, embeddings, k=5, mode="dense")
    assert any("reviewed 50 case files" in p.text for p in hits)
    assert {p.source for p in hits} == {CARDIFF, WREXHAM}
    scoped = backend.retrieve(CASE_FILES, embeddings, k=5, mode="dense")
    assert any("reviewed 50 case files" in p.text for p in scoped)
    assert {p.source for p in scoped} == {CARDIFF}


def test_the_case_file_answer_is_whole_and_cited_verbatim(backend, embeddings):
    from index import source_text

    ans = backend.ask(CASE_FILES, embeddings)
    assert not ans.abstained
    assert ans.text == CASE_FILES_ANSWER
    (c,) = ans.citations
    assert (c.n, c.source, c.authority, c.section) == (1, CARDIFF, "Cardiff Council", ("Method",))
    assert "50 case files" in c.quote
    assert source_text(CARDIFF, backend.index, backend.settings)[c.start : c.end] == c.quote


def test_a_wrexham_question_cites_only_wrexham(backend, embeddings):
    from index import source_text

    ans = backend.ask("What must Wrexham improve about supervision in children's services?", embeddings)
    assert not ans.abstained and ans.citations
    assert {c.source for c in ans.citations} == {WREXHAM}
    assert {p.source for p in ans.passages} == {WREXHAM}
    text = source_text(WREXHAM, backend.index, backend.settings)
    assert all(text[c.start : c.end] == c.quote for c in ans.citations)


def _eval_rows() -> dict[str, dict]:
    rows = [json.loads(line) for line in (REPO / "eval" / "qa.jsonl").read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in rows if r["id"] in EVAL_IDS}


def _shape(ans) -> dict:
    return {
        "text": ans.text,
        "abstained": ans.abstained,
        "resolved": ans.resolved_question,
        "citations": [(c.n, c.source, c.start, c.end, c.quote) for c in ans.citations],
        "passages": [(p.chunk_id, p.source) for p in ans.passages],
    }


@pytest.mark.parametrize("qid", EVAL_IDS)
def test_the_server_gives_the_same_answers_as_the_disk(qid, built_index, settings, server_index, server_settings, embeddings):
    row = _eval_rows()[qid]
    history = [tuple(t) for t in row["history"]]
    disk = Backend("disk", built_index, settings).ask(row["question"], embeddings, history=history)
    server = Backend("server", server_index, server_settings).ask(row["question"], embeddings, history=history)
    assert _shape(server) == _shape(disk)
    assert server.score == pytest.approx(disk.score, abs=1e-4)
    assert [p.similarity for p in server.passages] == pytest.approx([p.similarity for p in disk.passages], abs=1e-4)


# ------------------------------------------------------------------------ updates on the server


class ChromaWrites:
    """Counts the passages this process writes to and deletes from Chroma, whatever the method."""

    def __init__(self, monkeypatch) -> None:
        from chromadb.api.models.Collection import Collection

        self.written: list[str] = []
        self.deleted: list[str] = []
        for name in ("add", "upsert", "update"):
            monkeypatch.setattr(Collection, name, self._spy(getattr(Collection, name), self.written))
        monkeypatch.setattr(Collection, "delete", self._spy(Collection.delete, self.deleted))

    @staticmethod
    def _spy(method, log: list[str]):
        def spy(col, ids=None, *args, **kwargs):
            if ids is not None:
                log.extend([ids] if isinstance(ids, str) else list(ids))
            elif kwargs.get("where") or kwargs.get("where_document") or args:
                log.append("<deleted by filter>")
            return method(col, ids, *args, **kwargs)

        return spy

    def reset(self) -> None:
        self.written.clear()
        self.deleted.clear()


def test_adding_and_removing_a_report_on_the_server_changes_only_that_report(
    tmp_path, server_settings, chroma_server, embeddings, monkeypatch
):
    from index import build_index, list_reports, update_index

    index_dir = tmp_path / "index"
    new = tmp_path / POWYS
    new.write_text(NEW_REPORT)
    s = Backend("server", index_dir, server_settings)
    build_index(reports_folder(tmp_path, "reports", {NEWPORT: NEWPORT_REPORT}), index_dir,
                settings=server_settings, embeddings=embeddings)
    before = s.ask("What did Powys open in February 2021?", embeddings)
    assert before.abstained and not before.citations  # no Powys report yet
    newport = s.ask(NEWPORT_Q, embeddings)
    assert not newport.abstained and {c.source for c in newport.citations} == {NEWPORT}

    writes = ChromaWrites(monkeypatch)
    added = update_index(index_dir, add=[new], settings=server_settings, embeddings=embeddings)
    assert (added.added, added.removed) == ([POWYS], [])
    added_writes = list(writes.written), list(writes.deleted)
    n_powys = {r.report_id: r.n_chunks for r in list_reports(index_dir, server_settings)}[POWYS]
    # Retrieval and answers see the new report at once (a new generation), and the old one still.
    hits = s.retrieve("respite centre for disabled children", embeddings, k=3)
    assert hits[0].source == POWYS and "respite centre" in hits[0].text
    ans = s.ask("What did Powys open in February 2021?", embeddings)
    assert not ans.abstained and {c.source for c in ans.citations} == {POWYS}
    assert "respite centre" in ans.citations[0].quote
    assert s.ask(NEWPORT_Q, embeddings).text == newport.text
    powys_ids = sorted({p.chunk_id for p in s.retrieve("Powys respite centre", embeddings, k=5, filters={"source": POWYS})})
    assert len(powys_ids) == n_powys
    (col,) = collections_holding(chroma_server, powys_ids)

    writes.reset()
    removed = update_index(index_dir, remove=[POWYS], settings=server_settings, embeddings=embeddings)
    assert removed.removed == [POWYS]
    removed_writes = list(writes.written), list(writes.deleted)
    assert [r.report_id for r in list_reports(index_dir, server_settings)] == [NEWPORT]
    hits = s.retrieve("respite centre for disabled children", embeddings, k=3)
    assert POWYS not in {p.source for p in hits}
    gone = s.ask("What did Powys open in February 2021?", embeddings)
    assert gone.abstained and not gone.citations
    assert s.ask(NEWPORT_Q, embeddings).text == newport.text
    # The server no longer holds the removed report's passages; it holds Newport's.
    assert col.get(ids=powys_ids, include=[])["ids"] == []
    assert col.count() == sum(r.n_chunks for r in list_reports(index_dir, server_settings))

    # Writes cost what they change: adding sends only the new report's passages to the server,
    # removing sends none and deletes only the removed report's.
    assert sorted(added_writes[0]) == powys_ids and added_writes[1] == []
    assert removed_writes[0] == []
    assert sorted(removed_writes[1]) == powys_ids or removed_writes[1] == ["<deleted by filter>"]


# ------------------------------------------------------------------------- sharing one server

READER = r"""
import json, sys
from rag import query
from rag.settings import get_settings

settings = get_settings()
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    try:
        ans = query(line.strip(), index_dir=settings.index_dir, settings=settings)
        out = {"text": ans.text, "abstained": ans.abstained,
               "citations": [[c.source, c.start, c.end, c.quote] for c in ans.citations]}
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


class Reader:
    """Another Python process answering questions, one per line, from an index and a server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER], cwd=REPO, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()
        assert self._next(180) == {"ready": True}

    def _next(self, timeout: float) -> dict:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            self.proc.kill()
            pytest.fail(f"the reader process did not answer in {timeout:.0f} s: {self.proc.stderr.read()[-2000:]}", pytrace=False)

    def ask(self, question: str) -> dict:
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        out = self._next(120)
        assert "error" not in out, out["error"]
        return out

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AROLWG_")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", **extra})
    return env


def test_a_second_process_answers_from_the_same_folder_and_server_and_sees_updates(
    tmp_path, server_settings, chroma_server, embeddings
):
    from index import build_index, update_index

    index_dir = tmp_path / "index"
    build_index(reports_folder(tmp_path, "reports", {"powys-shared.txt": NEW_REPORT}), index_dir, settings=server_settings, embeddings=embeddings)
    here = Backend("server", index_dir, server_settings)
    host, port = chroma_server
    reader = Reader(_env(AROLWG_INDEX_DIR=str(index_dir), AROLWG_CHROMA_HOST=host, AROLWG_CHROMA_PORT=str(port)))
    try:
        q = "What did Powys open in February 2021?"
        theirs, ours = reader.ask(q), here.ask(q, embeddings)
        assert not ours.abstained
        assert theirs["text"] == ours.text
        assert theirs["citations"] == [[c.source, c.start, c.end, c.quote] for c in ours.citations]
        newport_q = NEWPORT_Q
        assert reader.ask(newport_q)["abstained"]  # no Newport report yet

        # This process writes; the warm reader picks the new generation up on its next question.
        extra = tmp_path / NEWPORT
        extra.write_text(NEWPORT_REPORT)
        update_index(index_dir, add=[extra], settings=server_settings, embeddings=embeddings)
        theirs = reader.ask(newport_q)
        assert not theirs["abstained"]
        assert {c[0] for c in theirs["citations"]} == {NEWPORT}
        assert "family centre" in theirs["citations"][0][3]
        assert theirs["text"] == here.ask(newport_q, embeddings).text
        assert reader.ask(q)["text"] == ours.text
    finally:
        reader.close()


def test_two_index_folders_on_one_server_do_not_see_each_others_reports(
    tmp_path, server_index, server_settings, chroma_server, embeddings
):
    from index import build_index, list_reports, update_index

    other_dir = tmp_path / "other-index"
    build_index(reports_folder(tmp_path, "reports", {OTHER_POWYS: NEW_REPORT}), other_dir, settings=server_settings, embeddings=embeddings)
    main, other = Backend("server", server_index, server_settings), Backend("server", other_dir, server_settings)
    assert [r.report_id for r in list_reports(other_dir, server_settings)] == [OTHER_POWYS]
    # On the server, each folder's passages are apart from the other's.
    main_ids = [p.chunk_id for p in main.retrieve("How do Wrexham and Cardiff compare on staff supervision?", embeddings, k=6)]
    other_ids = [p.chunk_id for p in other.retrieve("respite centre", embeddings, k=5)]
    (main_col,) = collections_holding(chroma_server, main_ids)
    (other_col,) = collections_holding(chroma_server, other_ids)
    assert main_col.id != other_col.id
    assert main_col.get(ids=other_ids, include=[])["ids"] == [] and other_col.get(ids=main_ids, include=[])["ids"] == []
    assert other_col.count() == len(other_ids)

    for mode in ("dense", "hybrid"):
        assert {p.source for p in other.retrieve("supervision of practitioners in Cardiff", embeddings, k=5, mode=mode, scope=False)} == {OTHER_POWYS}
        assert OTHER_POWYS not in {p.source for p in main.retrieve("respite centre for disabled children", embeddings, k=10, mode=mode)}
    assert main.ask("What did Powys open in February 2021?", embeddings).abstained
    assert other.ask(CASE_FILES, embeddings).abstained
    assert main.ask(CASE_FILES, embeddings).text == CASE_FILES_ANSWER

    # Changing one folder leaves the other as it was.
    extra = tmp_path / NEWPORT
    extra.write_text(NEWPORT_REPORT)
    update_index(other_dir, add=[extra], remove=[OTHER_POWYS], settings=server_settings, embeddings=embeddings)
    assert [r.report_id for r in list_reports(other_dir, server_settings)] == [NEWPORT]
    assert [r.report_id for r in list_reports(server_index, server_settings)] == [CARDIFF, WREXHAM]
    assert main.ask(CASE_FILES, embeddings).text == CASE_FILES_ANSWER
    assert {p.source for p in main.retrieve("supervision of practitioners", embeddings, k=6, mode="dense")} == {CARDIFF, WREXHAM}


# ------------------------------------------------------------------------ a server not there


def test_an_unreachable_server_is_one_sentence_from_query(server_index, server_settings, embeddings):
    from rag import query

    port = free_port()  # nobody listens on it
    down = on_server(server_settings, ("127.0.0.1", port))
    with pytest.raises(ChromaServerError) as exc:
        query(WHOLE_CORPUS, index_dir=server_index, settings=down, embeddings=embeddings)
    assert one_sentence(exc.value).startswith(f"The Chroma server at 127.0.0.1:{port} could not be reached (")
    # A question naming a council needs only the index folder: it is still answered.
    assert query(CASE_FILES, index_dir=server_index, settings=down, embeddings=embeddings).text == CASE_FILES_ANSWER


def test_an_unreachable_server_is_one_sentence_from_build_index(tmp_path, settings, embeddings):
    from index import build_index

    port = free_port()
    index_dir = tmp_path / "index"
    with pytest.raises(ChromaServerError) as exc:
        build_index(reports_folder(tmp_path, "reports", {POWYS: NEW_REPORT}), index_dir,
                    settings=on_server(settings, ("127.0.0.1", port)), embeddings=embeddings)
    assert one_sentence(exc.value).startswith(f"The Chroma server at 127.0.0.1:{port} could not be reached (")
    assert not (index_dir / "CURRENT").exists()  # no live index was made


def test_arolwg_ask_with_an_unreachable_server_exits_2_with_one_sentence(server_index):
    port = free_port()
    env = _env(AROLWG_CHROMA_HOST="127.0.0.1", AROLWG_CHROMA_PORT=str(port))
    r = subprocess.run([sys.executable, "-m", "rag.cli", "ask", WHOLE_CORPUS, "--index", str(server_index)],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"arolwg: The Chroma server at 127.0.0.1:{port} could not be reached (")
    assert r.stderr.endswith(".\n") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_a_server_that_stops_and_comes_back(tmp_path, settings, embeddings):
    """A chat process outlives a server restart: one sentence while it is down, answers after."""
    from index import build_index

    db, port = tmp_path / "db", free_port()
    index_dir = tmp_path / "index"
    with run_chroma_server(db, port) as address:
        s = Backend("server", index_dir, on_server(settings, address))
        build_index(reports_folder(tmp_path, "reports", {POWYS: NEW_REPORT}), index_dir, settings=s.settings, embeddings=embeddings)
        first = s.ask("What did Powys open in February 2021?", embeddings)
        assert not first.abstained
    with pytest.raises(ChromaServerError) as exc:
        s.ask("What did Powys open in February 2021?", embeddings)
    assert one_sentence(exc.value).startswith(f"The Chroma server at 127.0.0.1:{port} could not be reached (")
    with run_chroma_server(db, port):  # the same data, served again
        assert s.ask("What did Powys open in February 2021?", embeddings).text == first.text
