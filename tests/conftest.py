"""Shared fixtures: the real embedding model and a real on-disk index, built once per session."""

from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No AROLWG_* setting leaks in from the machine; the default index lives in tmp_path."""
    for key in list(os.environ):
        if key.startswith("AROLWG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AROLWG_INDEX_DIR", str(tmp_path / "default-index"))
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
