"""Load report files (text, Markdown, PDF, DOCX, HTML) into their source text.

The *source text* is what every span in the index points into: for text and Markdown it is the
file's content exactly; for PDF, DOCX and HTML it is the extracted text (the pages of a PDF joined
by a form feed, without their running headers, footers and page numbers, so the page of an offset
is the number of form feeds before it, plus one). It is stored in the index so any excerpt can be
shown in place and checked.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from index.clean import strip_page_furniture
from index.errors import ArolwgError, CorruptFileError, PasswordProtectedError, UnsupportedFileError

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")

# A DOCX is a zip of XML parts; a report's XML is a few MB. More than this unpacked is a zip bomb.
MAX_DOCX_XML_BYTES = 100_000_000
BOMB_FIX = "if it is a genuine report, save or export it again and add that copy"


@dataclass(frozen=True)
class LoadedFile:
    path: Path
    report_id: str
    source_text: str


# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _utf16_without_mark(data: bytes) -> str | None:
    """"utf-16-le"/"utf-16-be" when the bytes look like UTF-16 text with no byte-order mark
    (English or Welsh text then has a zero in nearly every other byte), else None."""
    head = data[:4096]
    if len(head) < 32:
        return None
    even, odd = head[0::2], head[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.9 and zeros_even < 0.02:
        return "utf-16-le"
    if zeros_even > 0.9 and zeros_odd < 0.02:
        return "utf-16-be"
    return None


def _decode(data: bytes, path: Path) -> str:
    r"""Text from bytes: UTF-8, UTF-16/32 (with a byte-order mark, or UTF-16 without), or Windows-1252.

    >>> _decode("Caerdydd\n".encode("utf-16"), Path("r.txt"))
    'Caerdydd\n'
    """
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), None) or _utf16_without_mark(data)
    if encoding:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise CorruptFileError(path.name, f"it looks like {encoding.upper()} text but is not valid {encoding.upper()}") from exc
    if b"\x00" in data[:4096]:
        raise CorruptFileError(path.name, "it holds binary data, not text")
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise CorruptFileError(path.name, "its text encoding is not UTF-8 or Windows-1252")


def _scrub(message: object, path: Path) -> str:
    """An exception's text without the folder the file sits in (a server's temp path is nobody's business)."""
    text = str(message)
    for full in {str(path.resolve()), str(path.absolute()), str(path)}:
        text = text.replace(full, path.name)
    return text.rstrip(".")


def _pdf(path: Path) -> str:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            # Many published PDFs are encrypted with an empty user password (only the owner
            # password, which restricts editing, is set): they open in any viewer, and here.
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise CorruptFileError(
                    path.name,
                    "it is AES-encrypted and the cryptography package that opens it is missing",
                    "reinstall Arolwg, or run `pip install cryptography`",
                ) from exc
            except Exception as exc:  # noqa: BLE001 - pypdf raises several kinds here
                raise PasswordProtectedError(path.name) from exc
            if opened == PasswordType.NOT_DECRYPTED:  # decrypt() says so; it does not raise
                raise PasswordProtectedError(path.name)
        pages = [(page.extract_text() or "").strip("\n") for page in reader.pages]
    except CorruptFileError:
        raise
    except LimitReachedError as exc:
        raise CorruptFileError(
            path.name, "part of it would decompress to far more data than any report holds, as a decompression bomb does", BOMB_FIX
        ) from exc
    except FileNotDecryptedError as exc:
        raise PasswordProtectedError(path.name) from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise CorruptFileError(path.name, f"it is not a readable PDF: {_scrub(exc, path)}") from exc
    # Running headers, footers and page numbers are left out of the source text (the page breaks
    # stay), so a sentence broken across pages is one span of the report's own words.
    return "\n\f\n".join(strip_page_furniture(pages))


def _docx(path: Path) -> str:
    import zipfile

    import docx
    from lxml import etree

    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist() if i.filename.endswith((".xml", ".rels")))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptFileError(path.name, "it is not a readable Word document") from exc
    if unpacked > MAX_DOCX_XML_BYTES:
        raise CorruptFileError(
            path.name, f"it would unpack to {unpacked / 1e6:.0f} MB of text, far more than any report holds, as a zip bomb does", BOMB_FIX
        )
    try:
        document = docx.Document(str(path))
    except etree.XMLSyntaxError as exc:
        if "limit" in str(exc).lower() or "huge" in str(exc).lower():
            raise CorruptFileError(
                path.name, "part of its text is too large to read safely, as in a zip bomb or a damaged document", BOMB_FIX
            ) from exc
        raise CorruptFileError(path.name, "its contents are damaged") from exc
    except Exception as exc:  # noqa: BLE001 - python-docx raises its own PackageNotFoundError etc.
        # Their messages name the file's full path (a server's temp folder, for an upload): not shown.
        log.debug("python-docx could not open %s", path, exc_info=True)
        raise CorruptFileError(path.name, "it is not a readable Word document") from exc
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

    Raises UnsupportedFileError or CorruptFileError (PasswordProtectedError) with a plain
    sentence naming the file (never its folder), whatever went wrong inside the parser.

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
    kind = {".pdf": "PDF", ".docx": "Word document", ".html": "HTML file", ".htm": "HTML file"}.get(suffix, "text file")
    try:
        if suffix in (".txt", ".md"):
            text = _decode(path.read_bytes(), path)
        elif suffix == ".pdf":
            text = _pdf(path)
        elif suffix == ".docx":
            text = _docx(path)
        else:
            text = _html(path)
    except ArolwgError:
        raise
    except MemoryError as exc:
        raise CorruptFileError(path.name, "it needs more memory to read than this machine has", BOMB_FIX) from exc
    except Exception as exc:  # noqa: BLE001 - whatever a parser raises, one bad file costs only itself
        log.debug("reading %s failed", path, exc_info=True)
        raise CorruptFileError(path.name, f"it is not a readable {kind}") from exc
    if len(re.findall(r"[A-Za-z]{2,}", text)) < 20:
        raise CorruptFileError(path.name, "it has almost no text (a scanned PDF needs OCR first)")
    return LoadedFile(path=path, report_id=path.name, source_text=text)


def discover(folder: Path) -> tuple[list[Path], list[Path]]:
    """Report files in ``folder`` (not recursive): (supported, unsupported), hidden files ignored."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    ok = [p for p in files if p.suffix.lower() in SUPPORTED]
    return ok, [p for p in files if p.suffix.lower() not in SUPPORTED]
