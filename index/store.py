"""The on-disk index: generations that replace each other atomically.

Layout of an index folder::

    CURRENT            name of the live generation, e.g. "gen-000003" (replaced atomically)
    gen-000003/        manifest.json, chunks.jsonl, sentences.jsonl, chunk_vecs.npy,
                       sent_vecs.npy, texts/<sha256>.txt (each report's source text)
    chroma/            the Chroma store; one collection per generation ("arolwg-g3")

A write builds a whole new generation next to the live one and only then points CURRENT at it,
so a failure midway leaves the previous index usable. Readers see one generation throughout.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.chunking import Sentence
from index.text import stems
from index.types import Chunk, ReportMeta
from index.errors import ChromaServerError, ForeignIndexError, IncompatibleIndexError, IndexMissingError
from index.settings import IndexSettings as Settings

log = logging.getLogger(__name__)

FORMAT = "arolwg-index"
FORMAT_VERSION = 1
_OURS = {"CURRENT", "chroma", ".lock", "CURRENT.tmp"}


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


@lru_cache(maxsize=8)
def _persistent_client(path: str):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=path, settings=ChromaSettings(anonymized_telemetry=False))


def chroma_client(index_dir: Path, settings: Settings):
    """The Chroma client: a server when AROLWG_CHROMA_HOST is set, else on disk in the index."""
    if settings.chroma_host:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

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
        return client
    return _persistent_client(str(Path(index_dir).resolve() / "chroma"))


def collection_name(settings: Settings, generation: int) -> str:
    return f"{settings.collection}-g{generation}"


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


class Generation:
    """The files of one generation, read into memory (small: a few MB for dozens of reports)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.manifest = json.loads((path / "manifest.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise ForeignIndexError(path.parent) from exc
        if self.manifest.get("format") != FORMAT:
            raise ForeignIndexError(path.parent)
        self.generation: int = self.manifest["generation"]
        self.reports: dict[str, ReportMeta] = {
            rid: ReportMeta(**{k: v for k, v in r.items() if k in ReportMeta.__dataclass_fields__})
            for rid, r in self.manifest["reports"].items()
        }
        self.chunks: list[Chunk] = []
        with open(path / "chunks.jsonl", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                d["section"] = tuple(d["section"])
                self.chunks.append(Chunk(**d))
        self.sentences: list[Sentence] = []
        with open(path / "sentences.jsonl", encoding="utf-8") as fh:
            for line in fh:
                self.sentences.append(Sentence(**json.loads(line)))
        self.chunk_vecs = np.load(path / "chunk_vecs.npy")
        self.sent_vecs = np.load(path / "sent_vecs.npy")
        # Generations written before the vocabulary was kept have none: no word bridging then.
        try:
            self.vocab: list[str] = json.loads((path / "vocab.json").read_text())
            self.vocab_vecs = np.load(path / "vocab_vecs.npy")
        except FileNotFoundError:
            self.vocab, self.vocab_vecs = [], np.zeros((0, 0), "float32")
        self._texts: dict[str, str] = {}

    def source_text(self, report_id: str) -> str:
        if report_id not in self._texts:
            sha = self.reports[report_id].sha256
            self._texts[report_id] = (self.path / "texts" / f"{sha}.txt").read_bytes().decode("utf-8")
        return self._texts[report_id]

    def report_infos(self) -> list[ReportInfo]:
        counts: dict[str, int] = {}
        for c in self.chunks:
            counts[c.report_id] = counts.get(c.report_id, 0) + 1
        return [ReportInfo(**asdict(m), n_chunks=counts.get(rid, 0)) for rid, m in sorted(self.reports.items())]


def write_generation(
    index_dir: Path,
    generation: int,
    *,
    reports: dict[str, ReportMeta],
    texts: dict[str, str],
    chunks: list[Chunk],
    sentences: list[Sentence],
    chunk_vecs: np.ndarray,
    sent_vecs: np.ndarray,
    embedding_model: str,
    chunker: str,
    settings: Settings,
    vocab: list[str] | None = None,
    vocab_vecs: np.ndarray | None = None,
) -> None:
    """Write a complete generation and make it live; on any failure the old one stays live."""
    final = gen_dir(index_dir, generation)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    client = chroma_client(index_dir, settings)
    name = collection_name(settings, generation)
    try:
        (tmp / "texts").mkdir(parents=True)
        counts: dict[str, int] = {}
        for c in chunks:
            counts[c.report_id] = counts.get(c.report_id, 0) + 1
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generation": generation,
            "embedding_model": embedding_model,
            "chunker": chunker,
            "reports": {rid: {**asdict(m), "n_chunks": counts.get(rid, 0)} for rid, m in reports.items()},
        }
        for rid, text in texts.items():
            (tmp / "texts" / f"{reports[rid].sha256}.txt").write_bytes(text.encode("utf-8"))
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        with open(tmp / "sentences.jsonl", "w", encoding="utf-8") as fh:
            for s in sentences:
                fh.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")
        np.save(tmp / "chunk_vecs.npy", chunk_vecs.astype("float32"))
        np.save(tmp / "sent_vecs.npy", sent_vecs.astype("float32"))
        (tmp / "vocab.json").write_text(json.dumps(vocab or [], ensure_ascii=False))
        np.save(tmp / "vocab_vecs.npy", (vocab_vecs if vocab_vecs is not None else np.zeros((0, 0))).astype("float32"))
        with contextlib.suppress(Exception):
            client.delete_collection(name)  # left over from a crashed build
        col = client.create_collection(name, metadata={"hnsw:space": "cosine"})
        for i in range(0, len(chunks), 1000):
            part = chunks[i : i + 1000]
            col.add(
                ids=[c.id for c in part],
                embeddings=chunk_vecs[i : i + 1000].tolist(),
                documents=[c.text for c in part],
                metadatas=[
                    {
                        "report_id": c.report_id,
                        "authority": reports[c.report_id].authority,
                        "section": " > ".join(c.section),
                        "start": c.start,
                        "end": c.end,
                    }
                    for c in part
                ],
            )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        os.replace(tmp, final)
        cur_tmp = Path(index_dir) / "CURRENT.tmp"
        cur_tmp.write_text(final.name)
        with open(cur_tmp) as fh:
            os.fsync(fh.fileno())
        os.replace(cur_tmp, Path(index_dir) / "CURRENT")  # the commit point
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if current_generation(index_dir) != generation:
            shutil.rmtree(final, ignore_errors=True)
            with contextlib.suppress(Exception):
                client.delete_collection(name)
        raise
    _drop_old(index_dir, generation, client, settings)


def _drop_old(index_dir: Path, keep: int, client, settings: Settings) -> None:
    """Remove generations older than ``keep`` (best effort: a reader may still hold one open)."""
    for p in Path(index_dir).glob("gen-*"):
        try:
            g = int(p.name.removeprefix("gen-").removesuffix(".tmp"))
        except ValueError:
            continue
        if g < keep:
            shutil.rmtree(p, ignore_errors=True)
            with contextlib.suppress(Exception):
                client.delete_collection(collection_name(settings, g))


class IndexStore:
    """Read access to the live generation of an index: dense (Chroma) and keyword (BM25) search."""

    def __init__(self, index_dir: Path, settings: Settings, generation: Generation) -> None:
        self.index_dir = Path(index_dir)
        self.settings = settings
        self.gen = generation
        self.chunk_pos = {c.id: i for i, c in enumerate(generation.chunks)}
        self.sent_rows: dict[str, list[int]] = {}
        for i, s in enumerate(generation.sentences):
            self.sent_rows.setdefault(s.chunk_id, []).append(i)
        self.sent_chunk = np.array([self.chunk_pos[s.chunk_id] for s in generation.sentences], dtype=np.int64)
        self._bm25 = None
        self._common: frozenset[str] | None = None
        self._collection = None
        self._lock = threading.Lock()

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
        if self._collection is None:
            client = chroma_client(self.index_dir, self.settings)
            try:
                self._collection = client.get_collection(collection_name(self.settings, self.gen.generation))
            except Exception as exc:  # noqa: BLE001 - the store is unusable without its collection
                raise IndexMissingError(self.index_dir) from exc
        return self._collection

    def bm25(self):
        with self._lock:
            if self._bm25 is None:
                from rank_bm25 import BM25Okapi

                from index.text import terms

                # Headings are part of what a chunk is about ("What needs to improve", "Prevention").
                docs = [terms(" ".join(c.section[-2:]) + " " + c.text) for c in self.chunks]
                self._bm25 = BM25Okapi(docs) if docs else None
        return self._bm25

    def common_stems(self) -> frozenset[str]:
        """Stems of the words the reports use in lower case: a capitalised word whose stem is not
        among them is a proper name (a person's, a place's, an organisation's)."""
        with self._lock:
            if self._common is None:
                found = {w for c in self.chunks for w in re.findall(r"(?<![A-Za-z])[a-z]+(?![A-Za-z])", c.text)}
                self._common = frozenset(stems(sorted(found)))
        return self._common

    def idf(self) -> dict[str, float]:
        """BM25's inverse document frequency of each term (empty for an empty index)."""
        bm = self.bm25()
        return bm.idf if bm is not None else {}

    def dense_search(self, qvec: list[float], n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, cosine similarity), best first."""
        if not self.chunks:
            return []
        where = None
        if report_ids is not None:
            if not report_ids:
                return []
            where = {"report_id": {"$in": list(report_ids)}}
        res = self.collection().query(
            query_embeddings=[qvec], n_results=min(n, len(self.chunks)), where=where, include=["distances"]
        )
        return [(self.chunk_pos[i], 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0])]

    def sentence_search(self, qvec: np.ndarray, n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, best sentence cosine), best first: finds a passage by its one
        sentence that matches, where the whole passage's vector is diluted by the others."""
        if not len(self.sent_chunk):
            return []
        sims = self.gen.sent_vecs @ qvec
        best: dict[int, float] = {}
        allowed = None if report_ids is None else set(report_ids)
        for row in np.argsort(-sims):
            pos = int(self.sent_chunk[row])
            if pos in best or (allowed is not None and self.chunks[pos].report_id not in allowed):
                continue
            best[pos] = float(sims[row])
            if len(best) >= n:
                break
        return list(best.items())

    def keyword_search(self, query_terms: list[str], n: int, report_ids: list[str] | None) -> list[tuple[int, float]]:
        """(chunk position, BM25 score), best first; chunks sharing no term are left out."""
        bm = self.bm25()
        if bm is None or not query_terms:
            return []
        scores = bm.get_scores(query_terms)
        allowed = None if report_ids is None else set(report_ids)
        order = np.argsort(-scores)
        out: list[tuple[int, float]] = []
        for i in order:
            if scores[i] <= 0:
                break
            if allowed is None or self.chunks[i].report_id in allowed:
                out.append((int(i), float(scores[i])))
                if len(out) >= n:
                    break
        return out


_STORES: dict[tuple[str, int, str], IndexStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(index_dir: Path, settings: Settings, *, embedding_model: str | None = None) -> IndexStore:
    """The live generation of ``index_dir``, cached per process until a new generation lands."""
    index_dir = Path(index_dir)
    check_index_dir(index_dir)
    gen = current_generation(index_dir)
    if gen is None:
        raise IndexMissingError(index_dir)
    key = (str(index_dir.resolve()), gen, settings.chroma_host)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            path = gen_dir(index_dir, gen)
            if not path.is_dir():
                raise IndexMissingError(index_dir)
            store = IndexStore(index_dir, settings, Generation(path))
            for k in [k for k in _STORES if k[0] == key[0]]:
                del _STORES[k]
            _STORES[key] = store
    if embedding_model and store.embedding_model != embedding_model:
        raise IncompatibleIndexError(index_dir, store.embedding_model, embedding_model)
    return store
