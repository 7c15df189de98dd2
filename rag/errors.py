"""User-facing errors: each carries one plain sentence saying what is wrong and what to do.

The CLI and the web UI show ``str(error)`` and nothing else (no traceback).
"""

from __future__ import annotations

from index.errors import (  # noqa: F401 - re-exported: one module lists every user-facing error
    ArolwgError,
    BadDatesError,
    ChromaServerError,
    CorruptFileError,
    DiskFullError,
    ForeignIndexError,
    IncompatibleIndexError,
    IndexDamagedError,
    IndexMissingError,
    ModelLoadError,
    NoPassagesError,
    NoReportsError,
    OutdatedIndexError,
    PasswordProtectedError,
    ReportNotIndexedError,
    ReportsDirError,
    SettingsError,
    UnsupportedFileError,
)


class EmptyQuestionError(ArolwgError):
    def __init__(self) -> None:
        super().__init__("The question is empty: type a question about the inspection reports.")


class QuestionTooLongError(ArolwgError):
    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The question is {length} characters long, over the limit of {limit}: "
            "shorten it to the point you want answered."
        )


class LLMError(ArolwgError):
    """The configured LLM failed (unreachable, timed out, or answered garbage)."""


class EvalSetError(ArolwgError):
    """An evaluation set could not be used at all."""


class AuthSettingError(ArolwgError):
    def __init__(self) -> None:
        super().__init__(
            "The web chat password setting (AROLWG_AUTH or --auth) is malformed: write it as "
            "user:password, with commas between several accounts."
        )


class HistoryFileError(ArolwgError):
    def __init__(self, path: object, why: str) -> None:
        super().__init__(
            f"The history file {path} {why}: it must be a JSON list of [question, answer] pairs, "
            'such as [["How many case files were reviewed in Cardiff?", "50 case files."]].'
        )


class InvalidArgumentError(ArolwgError, ValueError):
    """A bad argument to the Python API (``k``, ``filters``, ``history``): a ValueError whose
    message says what is expected."""
