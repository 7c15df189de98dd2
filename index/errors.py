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
    def __init__(self, path: object, why: str) -> None:
        super().__init__(f"{path} could not be read ({why}): check the file opens, or export it again.")


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
