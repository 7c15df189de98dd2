"""Load report files (text, Markdown, PDF, DOCX, HTML) into their source text.

The *source text* is what every span in the index points into: for text and Markdown it is the
file's content exactly; for PDF, DOCX and HTML it is the extracted text (pages of a PDF joined by a
form feed). It is stored in the index so any excerpt can be shown in place and checked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from index.errors import CorruptFileError, UnsupportedFileError

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    report_id: str
    source_text: str


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data[:4096]:
        raise CorruptFileError(path.name, "it holds binary data, not text")
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise CorruptFileError(path.name, "its text encoding is not UTF-8 or Windows-1252")


def _pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:  # noqa: BLE001 - pypdf raises several kinds here
                raise CorruptFileError(path.name, "it is password-protected") from exc
        pages = [(page.extract_text() or "").strip("\n") for page in reader.pages]
    except CorruptFileError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptFileError(path.name, f"it is not a readable PDF: {exc}") from exc
    return "\n\f\n".join(pages)


def _docx(path: Path) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CorruptFileError(path.name, "it is not a readable Word document") from exc
    except Exception as exc:  # noqa: BLE001 - python-docx raises its own PackageNotFoundError etc.
        raise CorruptFileError(path.name, f"it is not a readable Word document: {exc}") from exc
    blocks = [p.text.strip() for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(c.text.strip() for c in row.cells))
    return "\n\n".join(b for b in blocks if b)


_BLOCK_TAGS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "div", "section", "article", "br"]


def _html(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path.read_bytes(), path), "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript", "template"]):
        tag.decompose()
    root = soup.find("main") or soup.body or soup
    text = root.get_text("\n", strip=True) if root else ""
    # get_text("\n") splits inline tags too; rejoin lines that continue a sentence.
    return re.sub(r"\n(?=[a-z,.;:])", " ", text).replace("\n", "\n\n")


def load_file(path: Path, *, max_bytes: int | None = None) -> LoadedFile:
    """Read one report file into its source text.

    Raises UnsupportedFileError or CorruptFileError with a plain sentence.

    >>> from index.settings import BUNDLED_REPORTS_DIR
    >>> load_file(BUNDLED_REPORTS_DIR / "ciw-cardiff-2020-12.txt").report_id
    'ciw-cardiff-2020-12.txt'
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFileError(path.name, suffix)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptFileError(path.name, f"it cannot be opened: {exc.strerror}") from exc
    if max_bytes is not None and size > max_bytes:
        raise CorruptFileError(
            path.name, f"it is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit (AROLWG_MAX_FILE_MB)"
        )
    if size == 0:
        raise CorruptFileError(path.name, "it is empty")
    if suffix in (".txt", ".md"):
        text = _decode(path.read_bytes(), path)
    elif suffix == ".pdf":
        text = _pdf(path)
    elif suffix == ".docx":
        text = _docx(path)
    else:
        text = _html(path)
    if len(re.findall(r"[A-Za-z]{2,}", text)) < 20:
        raise CorruptFileError(path.name, "it has almost no text (a scanned PDF needs OCR first)")
    return LoadedFile(path=path, report_id=path.name, source_text=text)


def discover(folder: Path) -> tuple[list[Path], list[Path]]:
    """Report files in ``folder`` (not recursive): (supported, unsupported), hidden files ignored."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    ok = [p for p in files if p.suffix.lower() in SUPPORTED]
    return ok, [p for p in files if p.suffix.lower() not in SUPPORTED]
