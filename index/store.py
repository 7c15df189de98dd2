"""The on-disk index: one immutable segment per report, and small generations that list them.

Layout of an index folder::

    CURRENT             name of the live generation, e.g. "gen-000003" (replaced atomically)
    gen-000003/         manifest.json (the reports and the segment of each), keyword/ (the bm25s
                        index of every passage, in generation order), lexicon.json and
                        vocab_vecs.npy (term IDF, the reports' vocabulary and its vectors)
    segments/<key>/     one report: source.txt (the text every span points into), chunks.jsonl,
                        sentences.jsonl, chunk_vecs.npy, sent_vecs.npy, terms.json (each chunk's
                        keyword terms), words.json (its vocabulary and lower-case stems), done
    chroma/             the on-disk Chroma store (unless a Chroma server is used): one collection
                        per index and embedding model, holding every live passage

A segment is keyed by its report's id, text hash, chunker version and embedding model, so a
report is chunked and embedded once, whatever else is added or removed later. A write builds the
new segments, makes Chroma hold exactly the new generation's passages (adding before the commit,
deleting after it), writes the new generation beside the live one and only then points CURRENT at
it. A write killed midway leaves the last generation answering: readers only ever use passages
their own generation lists, so passages added to Chroma for an unfinished write are invisible,
and the next write reconciles Chroma with what it commits. Readers see one generation throughout.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from index.chunking import Sentence
from index.errors import (
    ChromaServerError,
    ForeignIndexError,
    IncompatibleIndexError,
    IndexDamagedError,
    IndexMissingError,
    OutdatedIndexError,
)
from index.settings import IndexSettings
from index.types import Chunk, ReportMeta

log = logging.getLogger(__name__)

FORMAT = "arolwg-index"
FORMAT_VERSION = 2
_OURS = {"CURRENT", "chroma", ".lock", "CURRENT.tmp", "segments"}
BM25_EPSILON = 0.25  # as rank-bm25's BM25Okapi: a term in most passages still counts a little


@dataclass(frozen=True)
class ReportInfo:
    """An indexed report as listed to users."""

    report_id: str
    title: str
    authority: str
    kind: str
    dates: str
    sha256: str
    n_chunks: int
    dated_by: str = ""  # "hand": the dates were set by a user, not read from the text

    @property
    def dates_shown(self) -> str:
        return f"{self.dates} (dated by hand)" if self.dates and self.dated_by == "hand" else self.dates


def is_index_dir(index_dir: Path) -> bool:
    return (Path(index_dir) / "CURRENT").is_file()


def check_index_dir(index_dir: Path) -> None:
    """Raise ForeignIndexError if the folder holds something other than an Arolwg index."""
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise ForeignIndexError(index_dir)
    if not index_dir.is_dir() or is_index_dir(index_dir):
        return
    strangers = [p.name for p in index_dir.iterdir() if p.name not in _OURS and not p.name.startswith("gen-")]
    if strangers:
        raise ForeignIndexError(index_dir)


# --- Chroma ---------------------------------------------------------------------------------

_CLIENTS: dict[tuple, object] = {}
_CLIENTS_LOCK = threading.Lock()


def chroma_client(index_dir: Path, settings: IndexSettings):
    """The Chroma client, one per process and place: a server when AROLWG_CHROMA_HOST is set,
    else on disk in the index folder. Safe to call from several threads at once."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if settings.chroma_host:
        key: tuple = ("http", settings.chroma_host, settings.chroma_port)
    else:
        key = ("disk", str(Path(index_dir).resolve() / "chroma"))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        if key[0] == "http":
            where = f"{settings.chroma_host}:{settings.chroma_port}"
            try:
                client = chromadb.HttpClient(
                    host=settings.chroma_host,
                    port=settings.chroma_port,
                    settings=ChromaSettings(anonymized_telemetry=False),
                )
                client.heartbeat()
            except Exception as exc:  # noqa: BLE001 - any connection failure is one sentence to the user
                raise ChromaServerError(where, str(exc).splitlines()[0][:160] or type(exc).__name__) from exc
        else:
            try:
                client = chromadb.PersistentClient(path=key[1], settings=ChromaSettings(anonymized_telemetry=False))
            except Exception as exc:  # noqa: BLE001 - chromadb raises many kinds on a damaged store
                raise IndexDamagedError(index_dir, "its vector store cannot be opened") from exc
        _CLIENTS[key] = client
        return client


def _server_error(settings: IndexSettings, exc: BaseException) -> ChromaServerError:
    why = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return ChromaServerError(f"{settings.chroma_host}:{settings.chroma_port}", why)


def _is_missing(exc: BaseException) -> bool:
    """Chroma's way of saying a collection does not exist (its error classes vary by version)."""
    text = f"{type(exc).__name__} {exc}".lower()
    return "notfound" in text.replace(" ", "") or "does not exist" in text


def forget_chroma_client(index_dir: Path, settings: IndexSettings) -> None:
    """Drop the cached on-disk client of an index (its folder was deleted or is being rebuilt)."""
    if not settings.chroma_host:
        with _CLIENTS_LOCK:
            _CLIENTS.pop(("disk", str(Path(index_dir).resolve() / "chroma")), None)
            # chromadb keeps its own per-path system, broken for good once opening it failed.
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(Path(index_dir).resolve() / "chroma"), None)


def collection_name(settings: IndexSettings, index_id: str, embedding_model: str) -> str:
    """One collection per index and embedding model: indexes sharing a server never mix."""
    model = hashlib.sha256(embedding_model.encode()).hexdigest()[:6]
    return f"{settings.collection}-{index_id[:12]}-{model}"


# --- locking and generations ----------------------------------------------------------------


@contextlib.contextmanager
def write_lock(index_dir: Path):
    """One writer at a time per index folder (other processes wait)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_generation(index_dir: Path) -> int | None:
    try:
        name = (Path(index_dir) / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(name.removeprefix("gen-"))
    except ValueError:
        raise ForeignIndexError(index_dir) from None


def gen_dir(index_dir: Path, generation: int) -> Path:
    return Path(index_dir) / f"gen-{generation:06d}"


def read_manifest(path: Path) -> dict:
    """A generation's manifest; ForeignIndexError if it is not one of ours."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError) as exc:
        raise ForeignIndexError(path.parent) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ForeignIndexError(path.parent)
    return manifest


# --- segments -------------------------------------------------------------------------------


def segment_key(report_id: str, sha256: str, chunker: str, embedding_model: str) -> str:
    """A segment's name: the same report text, chunker and model always give the same segment."""
    return hashlib.sha256("\x1f".join([report_id, sha256, chunker, embedding_model]).encode()).hexdigest()[:32]


def segments_dir(index_dir: Path) -> Path:
    return Path(index_dir) / "segments"


@dataclass
class Segment:
    """One report's share of the index, as written to ``segments/<key>/``."""

    key: str
    meta: ReportMeta
    text: str
    chunks: list[Chunk]
    sentences: list[Sentence]  # in chunk order: each chunk's sentences are contiguous
    chunk_vecs: np.ndarray
    sent_vecs: np.ndarray
    terms: list[list[str]]  # each chunk's keyword terms
    vocab: list[str]  # the report's content words, for word bridging
    common: list[str]  # stems of the words the report writes in lower case
    original: Path | None = None  # the file the report was read from, kept as ``original<suffix>``


def original_path(index_dir: Path, key: str) -> Path | None:
    """The copy of the report's original file a segment keeps (None: it has none)."""
    found = sorted((segments_dir(index_dir) / key).glob("original.*"))
    return found[0] if found else None


def write_segment(index_dir: Path, seg: Segment) -> None:
    """Write a segment atomically (a rename), replacing a damaged one of the same key."""
    final = segments_dir(index_dir) / seg.key
    tmp = final.with_name(seg.key + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (tmp / "source.txt").write_bytes(seg.text.encode("utf-8"))
        (tmp / "meta.json").write_text(json.dumps(asdict(seg.meta), ensure_ascii=False))
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in seg.chunks:
                fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        with open(tmp / "sentences.jsonl", "w", encoding="utf-8") as fh:
            for s in seg.sentences:
                fh.write(json.dumps([s.chunk_id, s.text, s.start, s.end], ensure_ascii=False) + "\n")
        # Half precision, as a query process holds them: it reads them without converting, and
        # they take half the disk (older segments, in float32, are read too).
        np.save(tmp / "chunk_vecs.npy", np.asarray(seg.chunk_vecs, dtype="float16"))
        np.save(tmp / "sent_vecs.npy", np.asarray(seg.sent_vecs, dtype="float16"))
        (tmp / "terms.json").write_text(json.dumps(seg.terms, ensure_ascii=False))
        (tmp / "words.json").write_text(json.dumps({"vocab": seg.vocab, "common": seg.common}, ensure_ascii=False))
        # The original file (a PDF to open at its page, a DOCX to download) survives the uploaded
        # file being deleted; one kept by a segment being rewritten is carried over.
        original = seg.original if seg.original is not None and seg.original.is_file() else original_path(index_dir, seg.key)
        if original is not None:
            shutil.copyfile(original, tmp / f"original{original.suffix.lower()}")
        (tmp / "done").write_text(str(len(seg.chunks)))  # written last: the segment is complete
        shutil.rmtree(final, ignore_errors=True)  # a damaged one, or one left by a killed write
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_SECTIONS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_section(section: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple object for each distinct heading path, whichever segment reads it."""
    return _SECTIONS.setdefault(section, section)


def _read_jsonl(path: Path) -> list:
    """The records of a JSON Lines file, parsed as one JSON array (one parser call per file, not
    per line: a new process reads every segment before its first answer)."""
    text = path.read_text(encoding="utf-8").strip()
    return json.loads("[" + text.replace("\n", ",") + "]") if text else []


def read_segment(
    index_dir: Path, key: str, *, vectors: bool | str = True, extras: bool = False, sentences: bool = True
) -> Segment:
    """Read a segment back; FileNotFoundError/ValueError if it is missing or damaged.

    ``sentences=False`` leaves its sentences out (empty), for a reader that takes only their bounds.
    ``vectors="mapped"`` maps the vector files instead of reading them: their headers and sizes are
    checked, their contents are read only if used.
    """
    path = segments_dir(index_dir) / key
    n = int((path / "done").read_text())
    meta = ReportMeta(**json.loads((path / "meta.json").read_text()))
    chunks = []
    report_id = sys.intern(meta.report_id)
    for d in _read_jsonl(path / "chunks.jsonl"):
        # Every passage of a report names it and most share their headings: one copy of each.
        d["report_id"] = report_id if d["report_id"] == report_id else d["report_id"]
        d["section"] = _shared_section(tuple(sys.intern(h) for h in d["section"]))
        chunks.append(Chunk(**d))
    sents = [Sentence(cid, text, start, end) for cid, text, start, end in _read_jsonl(path / "sentences.jsonl")] if sentences else []
    if len(chunks) != n:
        raise ValueError(f"segment {key} has {len(chunks)} chunks, not {n}")
    if vectors == "mapped":
        cv, sv = np.load(path / "chunk_vecs.npy", mmap_mode="r"), np.load(path / "sent_vecs.npy", mmap_mode="r")
    elif vectors:
        cv, sv = np.load(path / "chunk_vecs.npy").astype("float32"), np.load(path / "sent_vecs.npy").astype("float32")
    else:
        cv = sv = np.zeros((0, 0), "float32")
    if vectors and (len(cv) != len(chunks) or (sentences and len(sv) != len(sents))):
        raise ValueError(f"segment {key} has vectors for {len(cv)} chunks and {len(sv)} sentences")
    terms: list[list[str]] = []
    vocab: list[str] = []
    common: list[str] = []
    if extras:
        terms = json.loads((path / "terms.json").read_text())
        words = json.loads((path / "words.json").read_text())
        vocab, common = words["vocab"], words["common"]
        if len(terms) != len(chunks):
            raise ValueError(f"segment {key} has terms for {len(terms)} of {len(chunks)} chunks")
    return Segment(key, meta, "", chunks, sents, cv, sv, terms, vocab, common)


# What reading a damaged file raises (a truncated .npy raises ValueError, a truncated JSON file
# JSONDecodeError, a missing one FileNotFoundError, a wrong shape KeyError or TypeError).
_DAMAGE = (OSError, ValueError, KeyError, TypeError, EOFError)


def segment_sound(index_dir: Path, key: str) -> bool:
    """The segment is complete and readable (checked before reusing one)."""
    return sound_segment(index_dir, key) is not None


def sound_segment(index_dir: Path, key: str) -> Segment | None:
    """The segment, read with its keyword terms and vocabulary and its vectors mapped (their sizes
    checked), if it is complete and readable; None if not. A write reuses what it read."""
    try:
        seg = read_segment(index_dir, key, extras=True, vectors="mapped")
        if seg.chunk_vecs.ndim != 2 or seg.sent_vecs.ndim != 2:
            raise ValueError(f"segment {key} has vectors of the wrong shape")
        segment_text(index_dir, key)
        return seg
    except _DAMAGE:
        return None


def generation_sound(index_dir: Path, generation: int) -> list[str]:
    """What is wrong with a generation's own files (empty: nothing)."""
    path = gen_dir(index_dir, generation)
    problems = []
    try:
        lex = json.loads((path / "lexicon.json").read_text())
        if len(np.load(path / "vocab_vecs.npy")) != len(lex["vocab"]):
            problems.append("its vocabulary vectors do not match its vocabulary")
    except _DAMAGE:
        problems.append("its vocabulary files cannot be read")
    try:
        m = read_manifest(path)
        if any(r.get("n_chunks") for r in m["reports"].values()):
            import bm25s

            bm25s.BM25.load(str(path / "keyword"), mmap=True, show_progress=False)
    except (*_DAMAGE, ForeignIndexError):
        problems.append("its keyword index cannot be read")
    return problems


def segment_text(index_dir: Path, key: str) -> str:
    return (segments_dir(index_dir) / key / "source.txt").read_bytes().decode("utf-8")


# --- generations ----------------------------------------------------------------------------


def rank_bm25_idf(df: dict[str, int], n_docs: int) -> dict[str, float]:
    """Okapi IDF as rank-bm25 computes it (the answerer's word weights were tuned on it)."""
    idf = {t: math.log(n_docs - n + 0.5) - math.log(n + 0.5) for t, n in df.items()}
    if idf:
        eps = BM25_EPSILON * (sum(idf.values()) / len(idf))
        idf = {t: (v if v >= 0 else eps) for t, v in idf.items()}
    return idf


def write_generation(
    index_dir: Path,
    generation: int,
    *,
    manifest: dict,
    terms: list[list[str]],
    idf: dict[str, float],
    common: list[str],
    vocab: list[str],
    vocab_vecs: np.ndarray,
) -> Path:
    """Write a generation's own files (manifest, keyword index, lexicon) and make it live."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each build at DEBUG to stderr
    with _new_generation(index_dir, generation, manifest) as tmp:
        tmp.mkdir(parents=True)
        if terms:
            bm = bm25s.BM25()
            bm.index([t or [""] for t in terms], show_progress=False)
            bm.save(str(tmp / "keyword"))
        (tmp / "lexicon.json").write_text(
            json.dumps({"idf": idf, "common": common, "vocab": vocab}, ensure_ascii=False)
        )
        np.save(tmp / "vocab_vecs.npy", vocab_vecs.astype("float32"))
    return gen_dir(index_dir, generation)


@contextlib.contextmanager
def _new_generation(index_dir: Path, generation: int, manifest: dict):
    """A folder to make a generation's files in; when the block ends, the manifest is written and
    the generation made live. A failure anywhere leaves no trace of it and the live one as it was."""
    final = gen_dir(index_dir, generation)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        _commit(index_dir, generation, tmp, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if current_generation(index_dir) != generation:
            shutil.rmtree(final, ignore_errors=True)
        raise


def _commit(index_dir: Path, generation: int, tmp: Path, manifest: dict) -> None:
    """Write the manifest into a generation made in ``tmp``, move it in place, make it live."""
    final = gen_dir(index_dir, generation)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    cur_tmp = Path(index_dir) / "CURRENT.tmp"
    cur_tmp.write_text(final.name)
    with open(cur_tmp) as fh:
        os.fsync(fh.fileno())
    os.replace(cur_tmp, Path(index_dir) / "CURRENT")  # the commit point


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_generation(index_dir: Path, source: int, generation: int, manifest: dict) -> Path:
    """Make live a generation that is ``source``'s files (keyword index, lexicon) with a new
    manifest: a change of metadata only, written as safely as any other generation."""
    with _new_generation(index_dir, generation, manifest) as tmp:
        # A generation's files are never changed once written: linking them costs no disk.
        shutil.copytree(gen_dir(index_dir, source), tmp, copy_function=_link_or_copy)
    return gen_dir(index_dir, generation)


def drop_old(index_dir: Path, keep: int) -> None:
    """Remove generations before the previous one, and segments neither of the two lists.

    The previous generation stays for readers that opened it before the switch.
    """
    index_dir = Path(index_dir)
    gens = []
    for p in index_dir.glob("gen-*"):
        try:
            gens.append((int(p.name.removeprefix("gen-").removesuffix(".tmp")), p))
        except ValueError:
            continue
    kept = sorted(g for g, p in gens if g <= keep and not p.name.endswith(".tmp"))[-2:]
    used: set[str] = set()
    for g, p in gens:
        if g in kept:
            with contextlib.suppress(ForeignIndexError):
                m = read_manifest(p)
                used |= {r.get("segment", "") for r in m.get("reports", {}).values()}
        elif g < keep or p.name.endswith(".tmp"):
            shutil.rmtree(p, ignore_errors=True)
    for p in segments_dir(index_dir).glob("*"):
        if p.name not in used:
            shutil.rmtree(p, ignore_errors=True)


class _Sentences:
    """Every sentence of a generation, held as columns: built into a Sentence when read.

    A sentence's text is a slice of its passage's text (both are verbatim spans of the report), so
    only its bounds are kept: a second copy of every sentence's text would cost as much memory as
    the passages themselves.
    """

    def __init__(self, chunks: list[Chunk], bounds: np.ndarray) -> None:
        self._chunks, self._bounds = chunks, bounds

    def __len__(self) -> int:
        return len(self._bounds)

    def __getitem__(self, row: int) -> Sentence:
        pos, start, end = (int(x) for x in self._bounds[row])
        c = self._chunks[pos]
        return Sentence(c.id, c.text[start - c.start : end - c.start], start, end)

    def __iter__(self):
        return (self[i] for i in range(len(self._bounds)))

    def chunk_positions(self) -> np.ndarray:
        return self._bounds[:, 0]


class HalfVectors:
    """Unit vectors kept in half precision, read as float32: ``vecs @ q`` and ``vecs[rows]``.

    numpy has no fast half-precision product (about 20x slower than float32), torch's is as fast
    as numpy's float32 one, so the product goes through torch, imported when first needed (a
    query process has it loaded for the embedding model already). Rounding to half precision
    moves a cosine by about 1e-3.
    """

    def __init__(self, half: np.ndarray) -> None:
        self._half = half
        self._torch = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._half.shape

    @property
    def nbytes(self) -> int:
        return self._half.nbytes

    def __len__(self) -> int:
        return len(self._half)

    def __getitem__(self, rows) -> np.ndarray:
        return np.asarray(self._half[rows], dtype="float32")

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        return self.product(q, [(0, len(self._half))])

    def product(self, q: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
        """``vecs[a:b] @ q`` for each range, concatenated: a scope's rows are a few runs."""
        total = sum(b - a for a, b in ranges)
        if not total:
            return np.zeros(0, "float32")
        import torch

        if self._torch is None:
            self._torch = torch.from_numpy(self._half)
        qt = torch.from_numpy(np.ascontiguousarray(q, dtype="float16"))
        with torch.inference_mode():
            if len(ranges) == 1:
                a, b = ranges[0]
                return torch.mv(self._torch[a:b], qt).float().numpy()
            return torch.cat([torch.mv(self._torch[a:b], qt) for a, b in ranges if b > a]).float().numpy()


class Generation:
    """The live generation of an index, read into memory from its segments."""

    def __init__(self, index_dir: Path, path: Path) -> None:
        self.index_dir = Path(index_dir)
        self.path = path
        self.manifest = read_manifest(path)
        if self.manifest.get("version", 1) != FORMAT_VERSION:
            raise OutdatedIndexError(index_dir)
        self.generation: int = self.manifest["generation"]
        self.index_id: str = self.manifest["index_id"]
        self.reports: dict[str, ReportMeta] = {}
        self.segments: dict[str, str] = {}
        self.chunks: list[Chunk] = []
        bounds: list[tuple[int, int, int]] = []  # (chunk position, start, end) of each sentence
        for rid in sorted(self.manifest["reports"]):
            r = self.manifest["reports"][rid]
            self.reports[rid] = ReportMeta(**{k: v for k, v in r.items() if k in ReportMeta.__dataclass_fields__})
            self.segments[rid] = r["segment"]
            try:
                seg = read_segment(self.index_dir, r["segment"], vectors=False, sentences=False)
                first = len(self.chunks)
                local = {c.id: first + i for i, c in enumerate(seg.chunks)}
                # Only each sentence's bounds are kept (its text is a slice of its passage's).
                bounds.extend([(local[cid], start, end) for cid, _, start, end in _read_jsonl(
                    segments_dir(self.index_dir) / r["segment"] / "sentences.jsonl")])
            except _DAMAGE as exc:
                raise IndexDamagedError(index_dir, f"the passages of {rid} cannot be read") from exc
            self.chunks.extend(seg.chunks)
        n_sent = len(bounds)
        self.sentences = _Sentences(self.chunks, np.asarray(bounds, dtype=np.int64).reshape(-1, 3))
        # Sentence and passage vectors are searched in full (a scoped search is a mask over them),
        # so each lives in one array, filled segment by segment (no second copy at load: the peak
        # memory is the array itself), in half precision: the largest things a query process holds,
        # halved.
        self.sent_vecs = HalfVectors(self._stack("sent_vecs.npy", n_sent, "sentence"))
        self.chunk_vecs = HalfVectors(self._stack("chunk_vecs.npy", len(self.chunks), "passage"))
        try:
            lex = json.loads((path / "lexicon.json").read_text())
            self.idf: dict[str, float] = lex["idf"]
            self.common: frozenset[str] = frozenset(lex["common"])
            self.vocab: list[str] = lex["vocab"]
            self.vocab_vecs = np.load(path / "vocab_vecs.npy")
            if len(self.vocab) != len(self.vocab_vecs):
                raise ValueError("vocabulary and its vectors differ in length")
        except _DAMAGE as exc:
            raise IndexDamagedError(index_dir, "its vocabulary files cannot be read") from exc
        self._texts: dict[str, str] = {}

    def _stack(self, name: str, rows: int, what: str) -> np.ndarray:
        """The ``name`` vectors of every segment, in generation order, as one float16 array."""
        out = np.empty((rows, 0), "float16")
        row = 0
        for rid in sorted(self.manifest["reports"]):
            try:
                v = np.load(segments_dir(self.index_dir) / self.segments[rid] / name, mmap_mode="r")
                if out.shape[1] != v.shape[1]:
                    if row:
                        raise ValueError("vectors of different widths")
                    out = np.empty((rows, v.shape[1]), "float16")
                _to_half(out[row : row + len(v)], v)
            except (*_DAMAGE, IndexError) as exc:
                raise IndexDamagedError(self.index_dir, f"the passages of {rid} cannot be read") from exc
            row += len(v)
        if row != rows:
            raise IndexDamagedError(self.index_dir, f"its {what} vectors do not match its {what}s")
        return out

    def chunk_vector(self, pos: int) -> np.ndarray:
        """The vector of the passage at ``pos``."""
        return self.chunk_vecs[pos]

    def source_text(self, report_id: str) -> str:
        if report_id not in self._texts:
            self._texts[report_id] = segment_text(self.index_dir, self.segments[report_id])
        return self._texts[report_id]

    def report_infos(self) -> list[ReportInfo]:
        return [
            ReportInfo(**asdict(m), n_chunks=self.manifest["reports"][rid].get("n_chunks", 0))
            for rid, m in sorted(self.reports.items())
        ]


class _SentRows:
    """Chunk id -> its sentence rows (a contiguous run), computed when asked."""

    def __init__(self, chunk_pos: dict[str, int], first: np.ndarray, count: np.ndarray) -> None:
        self._pos, self._first, self._count = chunk_pos, first, count

    def get(self, chunk_id: str, default=None):
        pos = self._pos.get(chunk_id)
        if pos is None:
            return default
        f = int(self._first[pos])
        return list(range(f, f + int(self._count[pos])))

    def __getitem__(self, chunk_id: str) -> list[int]:
        rows = self.get(chunk_id)
        if rows is None:
            raise KeyError(chunk_id)
        return rows

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._pos


class IndexStore:
    """Read access to the live generation of an index: dense (Chroma), sentence and keyword search.

    Every search takes the report ids in scope and filters inside the store (a Chroma ``where``,
    a bm25s weight mask, a numpy mask): nothing per query loops over passages in Python.
    """

    def __init__(self, index_dir: Path, settings: IndexSettings, generation: Generation) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self.gen = generation
        self.chunk_pos = {c.id: i for i, c in enumerate(generation.chunks)}
        rids = sorted(generation.reports)
        self._report_no = {rid: i for i, rid in enumerate(rids)}
        self.chunk_report = np.array([self._report_no[c.report_id] for c in generation.chunks], dtype=np.int64)
        sent_chunk = np.ascontiguousarray(generation.sentences.chunk_positions())
        self.sent_chunk = sent_chunk
        # Sentences are stored chunk by chunk, so each chunk's rows are one contiguous run.
        n_chunks = len(generation.chunks)
        counts = np.bincount(sent_chunk, minlength=n_chunks) if n_chunks else np.zeros(0, np.int64)
        self._sent_first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if n_chunks else counts
        self._sent_count = counts
        self.sent_rows = _SentRows(self.chunk_pos, self._sent_first, counts)
        # Chunks are stored report by report, so a report's passages (and their sentences) are one
        # run of rows: a scoped search computes only its scope's runs.
        self._report_start = np.searchsorted(self.chunk_report, np.arange(len(rids) + 1)).astype(np.int64)
        self._sent_end = np.concatenate([self._sent_first, [len(sent_chunk)]]).astype(np.int64)
        self._bm25 = None
        self._bm25_vocab: dict[str, int] | None = None
        self._collection = None
        self._recency: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def recency(self) -> np.ndarray:
        """Per chunk position, its report's place in time (higher: inspected later; undated first).

        Ranking ties are broken by it, newest first: reports of a council repeat one another word
        for word, and the same words are then quoted from the latest report that says them.
        """
        if self._recency is None:
            rids = sorted(self._report_no, key=lambda r: (self.reports[r].start, self.reports[r].end, r))
            rank = np.empty(len(rids), dtype=np.int64)
            rank[[self._report_no[r] for r in rids]] = np.arange(len(rids))
            self._recency = rank[self.chunk_report] if len(rids) else np.zeros(0, np.int64)
        return self._recency

    @property
    def reports(self) -> dict[str, ReportMeta]:
        return self.gen.reports

    @property
    def chunks(self) -> list[Chunk]:
        return self.gen.chunks

    @property
    def embedding_model(self) -> str:
        return self.gen.manifest["embedding_model"]

    def source_text(self, report_id: str) -> str:
        return self.gen.source_text(report_id)

    def collection(self):
        with self._lock:
            if self._collection is None:
                client = chroma_client(self.index_dir, self.settings)
                name = collection_name(self.settings, self.gen.index_id, self.embedding_model)
                try:
                    self._collection = client.get_collection(name)
                except Exception as exc:  # noqa: BLE001 - the store is unusable without its collection
                    if self.settings.chroma_host and not _is_missing(exc):
                        raise _server_error(self.settings, exc) from exc
                    raise IndexDamagedError(self.index_dir, f"its vector store has no collection {name}") from exc
            return self._collection

    def warm(self) -> None:
        """Load now what a first search loads: Chroma reads its vector index on the first query
        (about 0.6 s, whatever the corpus size), bm25s maps its keyword index. A chat app calls this
        at start, so its first question over every report does not wait for them."""
        if self.chunks:
            self.bm25()
            self.dense_search(self.gen.chunk_vector(0), 1, None)

    def bm25(self):
        """The generation's bm25s index, loaded (memory-mapped) on first use."""
        with self._lock:
            if self._bm25 is None and (self.gen.path / "keyword").is_dir():
                import bm25s

                try:
                    self._bm25 = bm25s.BM25.load(str(self.gen.path / "keyword"), mmap=True, show_progress=False)
                except _DAMAGE as exc:
                    raise IndexDamagedError(self.index_dir, "its keyword index cannot be read") from exc
                self._bm25_vocab = self._bm25.vocab_dict
        return self._bm25

    def common_stems(self) -> frozenset[str]:
        """Stems of the words the reports use in lower case: a capitalised word whose stem is not
        among them is a proper name (a person's, a place's, an organisation's)."""
        return self.gen.common

    def idf(self) -> dict[str, float]:
        """Okapi inverse document frequency of each term (empty for an empty index)."""
        return self.gen.idf

    def _whole(self, report_ids: list[str] | None) -> bool:
        """The scope is every report of the generation."""
        return report_ids is None or self._report_no.keys() <= set(report_ids)

    def chunk_ranges(self, report_ids: list[str] | None) -> list[tuple[int, int]]:
        """The runs of chunk positions of the reports in scope (None: every report), in order."""
        if report_ids is None:
            return [(0, len(self.chunks))]
        nos = sorted({self._report_no[r] for r in report_ids if r in self._report_no})
        runs: list[tuple[int, int]] = []
        for i in nos:
            a, b = int(self._report_start[i]), int(self._report_start[i + 1])
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            elif b > a:
                runs.append((a, b))
        return runs

    def chunk_positions(self, report_ids: list[str] | None) -> np.ndarray:
        """The chunk positions of the reports in scope (None: every report), in order."""
        return _positions(self.chunk_ranges(report_ids))

    def _sentence_runs(self, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The sentence rows of runs of chunk positions: a chunk's sentences are one run too."""
        return [(int(self._sent_end[a]), int(self._sent_end[b])) for a, b in runs]

    def sentence_positions(self, report_ids: list[str] | None) -> np.ndarray:
        """The sentence rows of the reports in scope (None: every report), in order."""
        return _positions(self._sentence_runs(self.chunk_ranges(report_ids)))

    def passage_scores(self, qvec, report_ids: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions in scope, the cosine similarity of each passage to ``qvec``)."""
        runs = self.chunk_ranges(report_ids)
        return _positions(runs), self.gen.chunk_vecs.product(np.asarray(qvec, dtype="float32"), runs)

    def sentence_scores(self, qvec, report_ids: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chunk positions in scope, the cosine of each passage's best sentence; -inf: none)."""
        runs = self.chunk_ranges(report_ids)
        pos = _positions(runs)
        best = np.full(len(pos), -np.inf, dtype="float32")
        srun = self._sentence_runs(runs)
        sims = self.gen.sent_vecs.product(np.asarray(qvec, dtype="float32"), srun)
        if len(sims):
            # Each passage's sentences are a run too: its best is a max over that run, whose start
            # in ``sims`` is its first sentence row less its report run's start, plus the length
            # of the runs before.
            per_run = [b - a for a, b in runs]
            offset = np.cumsum([0] + [b - a for a, b in srun[:-1]]) - np.asarray([a for a, _ in srun])
            start = self._sent_first[pos] + np.repeat(offset, per_run)
            has = self._sent_count[pos] > 0
            best[has] = np.maximum.reduceat(sims, start[has])
        return pos, best

    def dense_search(self, qvec, n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, cosine similarity), best first.

        Over the whole corpus the search is Chroma's (its HNSW index, on disk or on the server).
        Within a scope (some reports) it is exact, over the scope's passage vectors held here: an
        HNSW graph knows nothing of the filter, and Chroma's filtered search walks the whole graph
        for the few passages allowed, slowly (about 20 ms for one report of 1,000) and
        incompletely (for 9 of 20 questions scoped to one report of 1,000 it returned no passage).
        """
        if not self.chunks or (report_ids is not None and not report_ids):
            return []
        if not self._whole(report_ids):
            return best_of(*self.passage_scores(qvec, report_ids), n, self.recency)
        col = self.collection()
        try:
            res = col.query(query_embeddings=[list(map(float, qvec))], n_results=min(n, len(self.chunks)), include=["distances"])
        except Exception as exc:  # noqa: BLE001 - a broken vector store is one sentence to the user
            if self.settings.chroma_host:
                raise _server_error(self.settings, exc) from exc
            raise IndexDamagedError(self.index_dir, "its vector store cannot be searched") from exc
        # Passages of a write not yet committed (or of a newer generation) are not this one's.
        return [(self.chunk_pos[i], 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0]) if i in self.chunk_pos]

    def sentence_search(self, qvec: np.ndarray, n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, best sentence cosine), best first: finds a passage by its one
        sentence that matches, where the whole passage's vector is diluted by the others."""
        if not len(self.sent_chunk) or (report_ids is not None and not report_ids):
            return []
        return best_of(*self.sentence_scores(qvec, report_ids), n, self.recency)

    def keyword_scores(self, query_terms: list[str]) -> np.ndarray | None:
        """The BM25 score of every passage for ``query_terms`` (None: no keyword index, or no term
        of the question is in it)."""
        bm = self.bm25()
        known = [t for t in query_terms if bm is not None and t in self._bm25_vocab]
        if not known:
            return None
        return np.asarray(bm.get_scores(known), dtype="float32")

    def keyword_search(self, query_terms: list[str], n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, BM25 score), best first; chunks sharing no term are left out."""
        if not query_terms or (report_ids is not None and not report_ids):
            return []
        scores = self.keyword_scores(query_terms)
        if scores is None:
            return []
        # Scored by bm25s over its sparse index (the postings of the question's terms); the scope is
        # then a slice of that array, and bm25s's own top-k would start a thread pool per call.
        pos = self.chunk_positions(report_ids)
        s = scores[pos]
        return best_of(pos, np.where(s > 0, s, -np.inf), n, self.recency)


def _to_half(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src`` into the float16 array ``dst``: as is when it is float16 already, else
    converted by torch (numpy's float32 to float16 conversion is several times slower)."""
    if src.dtype == np.float16 or not len(src):
        dst[...] = src
        return
    import torch

    torch.from_numpy(dst).copy_(torch.from_numpy(np.array(src, dtype="float32", copy=True)))


def _positions(runs: list[tuple[int, int]]) -> np.ndarray:
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in runs]) if runs else np.zeros(0, np.int64)


def best_of(positions: np.ndarray, scores: np.ndarray, n: int, recency: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The ``n`` best (position, score), best first; -inf scores left out. Ties (copies of a
    passage) go to the newest report (``recency``, per position: :attr:`IndexStore.recency`),
    then in position order: deterministic."""
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return []
    kth = -np.partition(-scores, n - 1)[n - 1]
    top = np.flatnonzero(scores >= kth)
    p = positions[top]
    keys = (p, -scores[top]) if recency is None else (p, -recency[p], -scores[top])
    top = top[np.lexsort(keys)][:n]
    return list(zip(positions[top].tolist(), scores[top].tolist()))  # Python ints and floats, as float() gives


_STORES: dict[tuple[str, int, str, int, str], IndexStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(index_dir: Path, settings: IndexSettings, *, embedding_model: str | None = None) -> IndexStore:
    """The live generation of ``index_dir``, cached per process until a new generation lands.

    Safe to call from several threads at once: one of them loads, the others wait for it.
    """
    index_dir = Path(index_dir)
    check_index_dir(index_dir)
    gen = current_generation(index_dir)
    if gen is None:
        raise IndexMissingError(index_dir)
    key = (str(index_dir.resolve()), gen, settings.chroma_host, settings.chroma_port, settings.collection)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            path = gen_dir(index_dir, gen)
            if not path.is_dir():
                raise IndexDamagedError(index_dir, f"its live generation {path.name} is missing")
            try:
                store = IndexStore(index_dir, settings, Generation(index_dir, path))
            except ForeignIndexError as exc:
                if segments_dir(index_dir).is_dir():  # our layout, with its manifest damaged
                    raise IndexDamagedError(index_dir, f"the manifest of {path.name} cannot be read") from exc
                raise
            for k in [k for k in _STORES if k[0] == key[0]]:
                del _STORES[k]
            _STORES[key] = store
    if embedding_model and store.embedding_model != embedding_model:
        raise IncompatibleIndexError(index_dir, store.embedding_model, embedding_model)
    return store


def new_index_id() -> str:
    return uuid.uuid4().hex


def chroma_sync(collection, want: Iterable[str], *, fetch, batch: int = 1000) -> tuple[int, list[str]]:
    """Add to ``collection`` the passages of ``want`` it lacks; return (added, ids it holds beyond).

    ``fetch(ids)`` gives each id's (vector, document, metadata). Extra ids are returned, not
    deleted: they may still serve readers of the live generation until the new one is committed.
    """
    want = list(want)
    have: set[str] = set()
    total = collection.count()
    for off in range(0, total, 10000):
        have |= set(collection.get(include=[], limit=10000, offset=off)["ids"])
    missing = [i for i in want if i not in have]
    for b in range(0, len(missing), batch):
        part = missing[b : b + batch]
        rows = fetch(part)
        collection.upsert(
            ids=part,
            embeddings=np.asarray([r[0] for r in rows], dtype="float32"),
            documents=[r[1] for r in rows],
            metadatas=[r[2] for r in rows],
        )
    return len(missing), sorted(have - set(want))


def chroma_delete(collection, ids: Iterable[str], *, batch: int = 5000) -> None:
    ids = list(ids)
    for b in range(0, len(ids), batch):
        collection.delete(ids=ids[b : b + batch])
