"""Errors a user may see from indexing and the store: each carries one plain sentence saying what
is wrong and what to do. ``rag.errors`` re-exports them beside the answering errors.

The CLI and the web UI show ``str(error)`` and nothing else (no traceback).
"""

from __future__ import annotations


class ArolwgError(Exception):
    """Base class of every error a user may see; the message is a complete sentence."""


class IndexMissingError(ArolwgError):
    def __init__(self, index_dir: object) -> None:
        super().__init__(
            f"There is no Arolwg index at {index_dir}: build one with "
            f"`arolwg index --index {index_dir}` (or set AROLWG_INDEX_DIR to an existing index)."
        )


class ForeignIndexError(ArolwgError):
    def __init__(self, index_dir: object) -> None:
        super().__init__(
            f"The folder {index_dir} holds files that are not an Arolwg index: "
            "choose an empty or new folder for the index, or point AROLWG_INDEX_DIR at a real index."
        )


class IncompatibleIndexError(ArolwgError):
    def __init__(self, index_dir: object, built_with: str, wanted: str) -> None:
        super().__init__(
            f"The index at {index_dir} was built with the embedding model {built_with!r}, "
            f"not {wanted!r}: rebuild it with `arolwg index --index {index_dir}`."
        )


class ReportsDirError(ArolwgError):
    def __init__(self, reports_dir: object, why: str) -> None:
        super().__init__(f"Cannot read reports from {reports_dir}: {why}.")


class UnsupportedFileError(ArolwgError):
    def __init__(self, path: object, suffix: str) -> None:
        super().__init__(
            f"{path} is a {suffix or 'extensionless'} file, which Arolwg cannot read: "
            "use PDF, DOCX, HTML, Markdown or plain text."
        )


class CorruptFileError(ArolwgError):
    def __init__(self, path: object, why: str, fix: str = "check the file opens, or export it again") -> None:
        super().__init__(f"{path} could not be read ({why}): {fix}.")


class PasswordProtectedError(CorruptFileError):
    def __init__(self, path: object) -> None:
        ArolwgError.__init__(
            self,
            f"{path} is password-protected, so Arolwg cannot read it: "
            "save a copy without the password and add that instead.",
        )


class NoReportsError(ArolwgError):
    def __init__(self, reports_dir: object) -> None:
        super().__init__(
            f"No readable reports were found in {reports_dir}: add PDF, DOCX, HTML, Markdown or text files."
        )


class ModelLoadError(ArolwgError):
    def __init__(self, model: object, why: str) -> None:
        super().__init__(
            f"The embedding model {model} could not be loaded ({why}): set AROLWG_EMBEDDING_MODEL "
            "to a local sentence-transformers folder, or reinstall Arolwg."
        )


class ChromaServerError(ArolwgError):
    def __init__(self, where: str, why: str) -> None:
        super().__init__(
            f"The Chroma server at {where} could not be reached ({why}): start it, "
            "or unset AROLWG_CHROMA_HOST to use the local index."
        )


class DiskFullError(ArolwgError):
    """An index write ran out of disk space; the previous index is kept as it was."""

    def __init__(self, where: object = None) -> None:
        at = f" at {where}" if where else ""
        super().__init__(
            f"The disk is full, so the index{at} could not be written; the previous index is kept and "
            "still answers: free some disk space and try again."
        )


def is_disk_full(exc: BaseException) -> bool:
    """``exc`` is an OSError saying the disk (or the user's quota) is full."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class SettingsError(ArolwgError):
    """An ``AROLWG_*`` setting (or the flag that overrides it) has a value it does not accept."""

    def __init__(self, variable: str, value: object, accepts: str, more: int = 0) -> None:
        shown = "" if value is None else f" is set to {str(value)[:60]!r}, but it"
        also = f" ({more} other setting{'s' if more > 1 else ''} also invalid)" if more else ""
        super().__init__(f"{variable}{shown} must be {accepts}{also}: correct it or unset it.")


class OutdatedIndexError(ArolwgError):
    def __init__(self, index_dir: object) -> None:
        super().__init__(
            f"The index at {index_dir} was written by an older Arolwg: upgrade it with "
            f"`arolwg index --index {index_dir} --upgrade` (every report it holds is kept)."
        )


class IndexDamagedError(ArolwgError):
    def __init__(self, index_dir: object, what: str) -> None:
        super().__init__(
            f"The index at {index_dir} is damaged ({what}): repair it with `arolwg index --index {index_dir} --upgrade`, "
            "which rebuilds what is damaged from the report texts it holds."
        )


class NoPassagesError(ArolwgError):
    def __init__(self, path: object) -> None:
        super().__init__(
            f"{path} has nothing to index once its page headers, footers and numbers are set aside: "
            "check the file holds the report's text, or export it again."
        )


class BadDatesError(ArolwgError):
    """Inspection dates given by hand that are not real, ordered, plausible dates."""

    def __init__(self, given: str, why: str) -> None:
        super().__init__(
            f"The inspection dates {given} cannot be used ({why}): give the first and last day of the "
            "inspection as YYYY-MM-DD, e.g. 2019-03-04 2019-03-08 (or a single day)."
        )


class ReportNotIndexedError(ArolwgError):
    def __init__(self, report_id: str, index_dir: object, known: list[str]) -> None:
        shown = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
        super().__init__(
            f"No report named {report_id!r} is in the index at {index_dir}: give a report's file name "
            f"as the index lists it ({shown or 'it holds no reports'})."
        )
