"""One settings object for every part of Arolwg, read from ``AROLWG_*`` env vars.

Build it with :func:`get_settings` (never at import time) so tests and CLI flags can change the
environment first. Every field has a default that works offline out of the box.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from index.settings import BUNDLED_REPORTS_DIR, IndexSettings, settings_error

__all__ = ["BUNDLED_REPORTS_DIR", "Settings", "get_settings"]


class Settings(IndexSettings):
    """Deployment settings; each can be set by an ``AROLWG_<NAME>`` environment variable.

    The index's fields (folders, model, Chroma) come from :class:`index.settings.IndexSettings`.
    """

    top_k: int = Field(default=5, ge=1, le=50, description="Passages retrieved per question.")
    candidates: int = Field(
        default=30, ge=5, le=200, description="Candidates taken from each of dense and BM25 search before fusion."
    )
    max_question_chars: int = Field(
        default=1000, ge=20, description="Longest question accepted, in characters."
    )
    abstain_threshold: float | None = Field(
        default=None,
        description="Evidence score under which the answerer abstains; unset: the value "
        "calibrated on the bundled eval set (rag.answer.DEFAULT_THRESHOLD).",
    )
    llm: Literal["none", "openai", "ollama", "gguf"] = Field(
        default="none",
        description="Answer backend: none (extractive, offline, the default), openai "
        "(any OpenAI-compatible server), ollama, or gguf (a local GGUF file in-process).",
    )
    llm_model: str = Field(default="", description="Model name (openai/ollama) or GGUF path (gguf).")
    llm_base_url: str = Field(default="", description="Base URL of the LLM server.")
    llm_api_key: str = Field(default="", description="API key for the LLM server, if it needs one.")
    llm_timeout: float = Field(default=60.0, description="Seconds to wait for the LLM.")
    host: str = Field(default="127.0.0.1", description="Address the web chat listens on.")
    port: int = Field(default=7860, description="Port the web chat listens on.")
    auth: str = Field(
        default="",
        description="'user:password' (comma-separated for several) to password-protect the web chat; empty: open.",
    )
    login_client_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins from one client address (any user names) before it is locked out for a while.",
    )
    login_user_failures: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins for one user name (from all addresses) before the name is locked out for a while.",
    )
    login_lockout_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds of the first sign-in lockout; each further failure doubles it.",
    )
    login_lockout_max_s: float = Field(
        default=300.0,
        gt=0,
        description="Longest sign-in lockout, in seconds.",
    )
    log_level: str = Field(default="WARNING", description="Logging level for the CLI and UI.")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (e.g. CLI flags) on top.

    Raises SettingsError (one sentence naming the variable and what it accepts) for a bad value.

    >>> get_settings(top_k=3).top_k
    3
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise settings_error(exc, Settings) from None
