"""Build and update an index: load, clean, chunk, embed and store reports."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from index.chunking import CHUNKER_VERSION, Sentence, chunk_report
from index.clean import clean_text
from index.embeddings import SentenceTransformerEmbeddings, get_embeddings
from index.errors import (
    ArolwgError,
    ChromaServerError,
    CorruptFileError,
    DiskFullError,
    ForeignIndexError,
    IndexDamagedError,
    IndexMissingError,
    NoPassagesError,
    NoReportsError,
    OutdatedIndexError,
    ReportNotIndexedError,
    ReportsDirError,
    is_disk_full,
)
from index.load import discover, load_file
from index.meta import detect_dates, detect_meta, hand_dates
from index.settings import IndexSettings, get_index_settings
from index.store import (
    FORMAT,
    FORMAT_VERSION,
    IndexStore,
    ReportInfo,
    Segment,
    check_index_dir,
    chroma_client,
    chroma_delete,
    chroma_sync,
    collection_name,
    copy_generation,
    current_generation,
    drop_old,
    forget_chroma_client,
    generation_sound,
    gen_dir,
    new_index_id,
    original_path,
    open_store,
    rank_bm25_idf,
    read_manifest,
    read_segment,
    segment_key,
    segment_sound,
    sound_segment,
    segment_text,
    segments_dir,
    write_generation,
    write_lock,
    write_segment,
)
from index.text import stems, terms
from index.types import Chunk, ReportMeta
from index.vocab import embed_vocabulary, vocabulary

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@dataclass
class IndexReport:
    """What a build or update did."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unchanged, reused as they were
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, plain sentence)
    seconds: float = 0.0
    n_chunks: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its place in the report, then its words."""
    return " > ".join(chunk.section) + "\n" + chunk.text


def _sentence_spans(chunk: Chunk, sentences: list[Sentence]) -> list[tuple[int, int]]:
    """Where each sentence stands in the chunk's embedded text (an empty span if it cannot be
    found there, which makes it be encoded on its own)."""
    offset = len(embed_text(chunk)) - len(chunk.text)
    spans, cursor = [], 0
    for s in sentences:
        at = chunk.text.find(s.text, cursor)
        if at < 0:
            spans.append((0, 0))
            continue
        spans.append((offset + at, offset + at + len(s.text)))
        cursor = at + len(s.text)
    return spans


def _lower_stems(chunks: list[Chunk]) -> list[str]:
    found = {w for c in chunks for w in re.findall(r"(?<![A-Za-z])[a-z]+(?![A-Za-z])", c.text)}
    return sorted(set(stems(sorted(found))))


def _chunked(key: str, meta: ReportMeta, text: str, original: Path | None = None) -> Segment:
    """A report's segment before embedding: cleaned, chunked, tokenised."""
    chunks, sentences = chunk_report(meta.report_id, clean_text(text))
    by_chunk: dict[str, list[Sentence]] = {}
    for s in sentences:
        by_chunk.setdefault(s.chunk_id, []).append(s)
    ordered = [s for c in chunks for s in by_chunk.get(c.id, [])]  # each chunk's sentences contiguous
    return Segment(
        key=key,
        meta=meta,
        text=text,
        chunks=chunks,
        sentences=ordered,
        chunk_vecs=np.zeros((0, 0), "float32"),
        sent_vecs=np.zeros((0, 0), "float32"),
        # Headings are part of what a chunk is about ("What needs to improve", "Prevention").
        terms=[terms(" ".join(c.section[-2:]) + " " + c.text) for c in chunks],
        vocab=vocabulary(c.text for c in chunks),
        common=_lower_stems(chunks),
        original=original,
    )


def _embed(segs: list[Segment], emb, progress: Callable[[int, int, str], None] | None, on_done: Callable[[Segment], None]) -> None:
    """Embed the chunks of ``segs`` and their sentences: one transformer pass per chunk when the
    model allows it (sentence vectors pooled from the chunk's tokens), else both encoded.

    ``on_done(seg)`` is called as soon as a segment's vectors are complete, so a long build keeps
    what it has finished (a killed build resumes from there) and holds few vectors in memory.
    """
    items = [(seg, i) for seg in segs for i in range(len(seg.chunks))]
    late = hasattr(emb, "encode_with_spans")
    total, done, t0 = len(items), 0, time.perf_counter()
    cvecs: dict[str, list[np.ndarray]] = {seg.key: [] for seg in segs}
    svecs: dict[str, list[np.ndarray]] = {seg.key: [] for seg in segs}
    per_chunk = {seg.key: _group_sentences(seg) for seg in segs}
    for seg in segs:
        if not seg.chunks:
            seg.chunk_vecs, seg.sent_vecs = np.zeros((0, 384), "float32"), np.zeros((0, 384), "float32")
            on_done(seg)
    step = 256  # chunks per progress update
    for b in range(0, total, step):
        part = items[b : b + step]
        texts = [embed_text(seg.chunks[i]) for seg, i in part]
        sents = [per_chunk[seg.key][i] for seg, i in part]
        if late:
            cv, sv = emb.encode_with_spans(texts, [_sentence_spans(seg.chunks[i], ss) for (seg, i), ss in zip(part, sents)])
        else:
            cv = emb.encode(texts)
            flat = emb.encode([s.text for ss in sents for s in ss])
            sv, at = [], 0
            for ss in sents:
                sv.append(flat[at : at + len(ss)])
                at += len(ss)
        for (seg, _), c, sentv in zip(part, cv, sv):
            cvecs[seg.key].append(np.asarray(c, "float32")[None, :])
            svecs[seg.key].append(np.asarray(sentv, "float32").reshape(-1, len(c)))
            if len(cvecs[seg.key]) == len(seg.chunks):
                seg.chunk_vecs = np.concatenate(cvecs.pop(seg.key))
                seg.sent_vecs = np.concatenate(svecs.pop(seg.key))
                on_done(seg)
        done += len(part)
        if progress:
            rate = done / max(time.perf_counter() - t0, 1e-6)
            progress(done, total, f"embedding passages ({rate:.0f}/s)")


def _group_sentences(seg: Segment) -> list[list[Sentence]]:
    by_chunk: dict[str, list[Sentence]] = {}
    for s in seg.sentences:
        by_chunk.setdefault(s.chunk_id, []).append(s)
    return [by_chunk.get(c.id, []) for c in seg.chunks]


def _chroma_entry(seg_meta: ReportMeta, c: Chunk) -> dict:
    """A passage's metadata in Chroma: its report, place (``start``/``end``: characters in the
    report's text) and the report's inspection dates, so a ``where`` on them works in Chroma too."""
    return {
        "report_id": c.report_id,
        "authority": seg_meta.authority,
        "section": " > ".join(c.section),
        "start": c.start,
        "end": c.end,
        **_dates_entry(seg_meta),
    }


def _dates_entry(meta: ReportMeta) -> dict:
    """The inspection-date fields of a passage's Chroma metadata (no ``year`` when undated:
    Chroma holds no None)."""
    entry: dict = {"inspection_start": meta.start, "inspection_end": meta.end, "dated_by": meta.dated_by}
    if meta.year is not None:
        entry["year"] = meta.year
    return entry


@dataclass
class _Old:
    """What the live index holds, whatever format an earlier Arolwg wrote it in."""

    generation: int | None
    index_id: str
    model: str | None
    reports: dict[str, ReportMeta]
    segments: dict[str, str]  # report id -> segment key (format 2)
    text: Callable[[str], str]  # report id -> its stored source text
    legacy: list[str]  # Chroma collections of format 1, dropped once the upgrade is committed
    current: bool = True  # written in this Arolwg's format and chunking


def _read_old(index_dir: Path, settings: IndexSettings) -> _Old:
    gen = current_generation(index_dir)
    if gen is None:
        return _Old(None, new_index_id(), None, {}, {}, lambda rid: "", [])
    path = gen_dir(index_dir, gen)
    if not path.is_dir():
        log.warning("the live generation %s is missing: rebuilding from the segments on disk", path.name)
        return _orphans(index_dir, gen)
    try:
        manifest = read_manifest(path)
    except ForeignIndexError:
        if not segments_dir(index_dir).is_dir():
            raise
        log.warning("the manifest of %s cannot be read: rebuilding from the segments on disk", path.name)
        return _orphans(index_dir, gen)
    reports = {
        rid: ReportMeta(**{k: v for k, v in r.items() if k in ReportMeta.__dataclass_fields__})
        for rid, r in manifest["reports"].items()
    }
    if manifest.get("version", 1) == 1:
        # Format 1 kept every report's text in texts/<sha256>.txt: enough to rebuild it all.
        def text_v1(rid: str) -> str:
            return (path / "texts" / f"{reports[rid].sha256}.txt").read_bytes().decode("utf-8")

        legacy = [f"{settings.collection}-g{g}" for g in range(1, gen + 1)]
        return _Old(gen, new_index_id(), None, reports, {}, text_v1, legacy, current=False)
    segs = {rid: r["segment"] for rid, r in manifest["reports"].items()}
    return _Old(gen, manifest["index_id"], manifest.get("embedding_model"), reports, segs,
                lambda rid: segment_text(index_dir, segs[rid]), [], current=manifest.get("chunker") == CHUNKER_VERSION)


def _orphans(index_dir: Path, gen: int) -> _Old:
    """The reports whose segments survive when the generation listing them is lost."""
    reports: dict[str, ReportMeta] = {}
    segs: dict[str, str] = {}
    for p in sorted(segments_dir(index_dir).glob("*")):
        try:
            meta = ReportMeta(**json.loads((p / "meta.json").read_text()))
            (p / "source.txt").stat()
        except (OSError, ValueError, TypeError):
            continue
        reports[meta.report_id], segs[meta.report_id] = meta, p.name
    index_id = new_index_id()
    return _Old(gen, index_id, None, reports, segs, lambda rid: segment_text(index_dir, segs[rid]), [], current=False)


def _sync(index_dir: Path, settings: IndexSettings, embeddings, **kw) -> IndexReport:
    """One write to the index (see :func:`_write`); a full disk is one sentence, the old index kept."""
    try:
        return _write(index_dir, settings, embeddings, **kw)
    except OSError as exc:
        # numpy's short writes carry no errno: a nearly full disk says it instead.
        if is_disk_full(exc) or _nearly_full(Path(index_dir)):
            raise DiskFullError(index_dir) from exc
        raise


def _nearly_full(path: Path, margin: int = 16 * 2**20) -> bool:
    try:
        return shutil.disk_usage(path if path.exists() else path.parent).free < margin
    except OSError:
        return False


def _write(
    index_dir: Path,
    settings: IndexSettings,
    embeddings: SentenceTransformerEmbeddings | None,
    *,
    files: Iterable[Path],
    remove: Iterable[str] = (),
    keep_others: bool,
    progress: Progress | None,
    report: IndexReport,
) -> IndexReport:
    t0 = time.perf_counter()
    index_dir = Path(index_dir)
    check_index_dir(index_dir)
    emb = embeddings or get_embeddings(settings)
    model = emb.name if hasattr(emb, "name") else type(emb).__name__
    files = list(files)
    remove = set(remove)

    def tell(done: int, total: int, msg: str) -> None:
        if progress:
            progress(done, total, msg)

    if settings.chroma_host:
        chroma_client(index_dir, settings)  # an unreachable server fails now, before any embedding
    with write_lock(index_dir):
        old = _read_old(index_dir, settings)
        want: dict[str, ReportMeta] = {}  # report id -> metadata, for the new generation
        texts: dict[str, str] = {}  # report id -> source text, for reports read from files now
        files_by_id: dict[str, Path] = {}  # report id -> the file it was read from now
        if keep_others:
            want.update({rid: m for rid, m in old.reports.items() if rid not in remove})
        for n, path in enumerate(files):
            tell(n, len(files), f"reading {path.name}")
            try:
                loaded = load_file(path, max_bytes=int(settings.max_file_mb * 1e6))
                meta = detect_meta(loaded.report_id, loaded.source_text, clean_text(loaded.source_text).text)
            except ArolwgError as exc:
                report.failed.append((path.name, str(exc)))
                log.warning("%s", exc)
                if path.name in old.reports:
                    want[path.name] = old.reports[path.name]  # keep the version we had
                continue
            except Exception as exc:  # noqa: BLE001 - one bad file costs only itself
                log.debug("reading %s failed", path, exc_info=True)
                err = CorruptFileError(path.name, f"it could not be read: {type(exc).__name__}")
                report.failed.append((path.name, str(err)))
                if path.name in old.reports:
                    want[path.name] = old.reports[path.name]
                continue
            rid = meta.report_id
            unchanged = rid in old.reports and old.reports[rid].sha256 == meta.sha256
            if unchanged and old.reports[rid].dated_by == "hand":
                # Dates a user set stay with the same text, whichever write reads it again.
                meta = replace(meta, dates=old.reports[rid].dates, dated_by="hand")
            (report.skipped if unchanged else report.added).append(rid)
            want[rid] = meta
            texts[rid] = loaded.source_text
            files_by_id[rid] = path
        report.removed = sorted(set(old.reports) - set(want))
        if not want and not report.removed:
            raise NoReportsError(", ".join(p.name for p in files) or index_dir)

        # Reuse every sound segment; chunk and embed the rest (new or changed reports, and
        # reports whose segment is missing, damaged, or made by another chunker or model).
        keys = {rid: segment_key(rid, m.sha256, CHUNKER_VERSION, model) for rid, m in want.items()}
        todo: list[Segment] = []
        reused: dict[str, Segment] = {}  # key -> the sound segment as checked, read once per write
        for rid, key in list(keys.items()):
            if (segments_dir(index_dir) / key / "done").is_file() and (rid not in texts or rid in old.reports):
                seg = sound_segment(index_dir, key)
                if seg is not None:
                    reused[key] = seg
                    continue
            text = texts[rid] if rid in texts else old.text(rid)
            seg = _chunked(key, want[rid], text, files_by_id.get(rid))
            if not seg.chunks and rid in texts:
                # Nothing left to quote (every line was page furniture): refused, not indexed empty.
                report.failed.append((rid, str(NoPassagesError(rid))))
                report.added = [r for r in report.added if r != rid]
                report.skipped = [r for r in report.skipped if r != rid]
                if rid in old.reports:
                    want[rid], keys[rid] = old.reports[rid], old.segments.get(rid, key)  # keep the version we had
                else:
                    del want[rid], keys[rid]
                continue
            todo.append(seg)
        report.removed = sorted(set(old.reports) - set(want))
        if not want and not report.removed:
            raise NoReportsError(", ".join(p.name for p in files) or index_dir)
        if todo:
            def keep(seg: Segment) -> None:
                write_segment(index_dir, seg)
                seg.chunk_vecs = seg.sent_vecs = np.zeros((0, 0), "float32")  # on disk now
                seg.text = ""

            _embed(todo, emb, tell, keep)
        # What the new generation is made of, read back from the segments (vectors not needed).
        parts = [reused.get(keys[rid]) or read_segment(index_dir, keys[rid], vectors=False, extras=True) for rid in sorted(want)]
        chunks = [c for seg in parts for c in seg.chunks]
        meta_of = {rid: want[rid] for rid in want}  # the generation's metadata (hand dates too), not the segment's

        tell(0, 1, "updating the vector store")
        with _server_errors(settings):
            col, client = _collection(index_dir, settings, collection_name(settings, old.index_id, model))
        where = {c.id: (seg.key, n) for seg in parts for n, c in enumerate(seg.chunks)}
        with _server_errors(settings):
            added, extra = chroma_sync(col, [c.id for c in chunks], fetch=lambda ids: _fetch(index_dir, parts, where, meta_of, ids))
        if not todo and not report.removed and not report.added and old.generation is not None and old.model == model and not added and not extra and old.current and not generation_sound(index_dir, old.generation):
            report.n_chunks = len(chunks)
            report.seconds = time.perf_counter() - t0
            tell(1, 1, "index is up to date")
            return report
        if added and not todo:
            log.warning("the vector store lacked %d passages: restored them from the index's segments", added)

        tell(0, 1, "writing the keyword index")
        all_terms = [t for seg in parts for t in seg.terms]
        df: dict[str, int] = {}
        for t in all_terms:
            for term in set(t):
                df[term] = df.get(term, 0) + 1
        vocab = sorted({w for seg in parts for w in seg.vocab})
        previous = _old_vocab(index_dir, old, model)
        vocab_vecs = embed_vocabulary(vocab, emb.encode, previous)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generation": (old.generation or 0) + 1,
            "index_id": old.index_id,
            "embedding_model": model,
            "chunker": CHUNKER_VERSION,
            "reports": {
                rid: {**asdict(want[rid]), "segment": keys[rid], "n_chunks": len(seg.chunks)}
                for rid, seg in zip(sorted(want), parts)
            },
        }
        write_generation(
            index_dir,
            manifest["generation"],
            manifest=manifest,
            terms=all_terms,
            idf=rank_bm25_idf(df, len(all_terms)),
            common=sorted({w for seg in parts for w in seg.common}),
            vocab=vocab,
            vocab_vecs=vocab_vecs,
        )
        # Committed: what only the old generation used can go.
        with _server_errors(settings):
            chroma_delete(col, extra)
        for name in old.legacy:
            with contextlib.suppress(Exception):
                client.delete_collection(name)
        if old.model not in (None, model) and old.generation is not None:
            with contextlib.suppress(Exception):
                client.delete_collection(collection_name(settings, old.index_id, old.model))
        drop_old(index_dir, manifest["generation"])
        tell(1, 1, "done")
    report.n_chunks = len(chunks)
    report.seconds = time.perf_counter() - t0
    log.info("indexed %d reports (%d chunks) in %.1fs", len(want), report.n_chunks, report.seconds)
    return report


@contextlib.contextmanager
def _server_errors(settings: IndexSettings):
    """A Chroma server failing mid-write is one sentence; nothing is committed before it answers."""
    try:
        yield
    except ArolwgError:
        raise
    except Exception as exc:  # noqa: BLE001 - httpx and chromadb raise many kinds
        if not settings.chroma_host:
            raise
        raise ChromaServerError(f"{settings.chroma_host}:{settings.chroma_port}", str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__) from exc


def _collection(index_dir: Path, settings: IndexSettings, name: str):
    """The index's Chroma collection, made if missing; an on-disk store too damaged to open is
    moved aside (never deleted) and made anew, to be refilled from the segments."""
    try:
        client = chroma_client(index_dir, settings)
        return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}), client
    except IndexDamagedError:
        if settings.chroma_host:
            raise
    except Exception as exc:  # noqa: BLE001 - chromadb raises many kinds on a damaged store
        if settings.chroma_host:
            raise ChromaServerError(f"{settings.chroma_host}:{settings.chroma_port}", type(exc).__name__) from exc
    aside = index_dir / f"chroma.damaged-{int(time.time())}"
    log.warning("the vector store of %s cannot be opened: moved it to %s and rebuilding it", index_dir, aside.name)
    forget_chroma_client(index_dir, settings)
    os.replace(index_dir / "chroma", aside)
    client = chroma_client(index_dir, settings)
    return client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}), client


def _fetch(index_dir: Path, parts: list[Segment], where: dict, meta_of: dict, ids: list[str]):
    """Vectors, documents and metadata of the chunks ``ids``, read from their segments."""
    by_seg: dict[str, list[tuple[str, int]]] = {}
    for i in ids:
        key, n = where[i]
        by_seg.setdefault(key, []).append((i, n))
    seg_of = {seg.key: seg for seg in parts}
    out: dict[str, tuple] = {}
    for key, items in by_seg.items():
        vecs = np.load(segments_dir(index_dir) / key / "chunk_vecs.npy")
        seg = seg_of[key]
        for i, n in items:
            c = seg.chunks[n]
            out[i] = (vecs[n], c.text, _chroma_entry(meta_of[c.report_id], c))
    return [out[i] for i in ids]


def _old_vocab(index_dir: Path, old: _Old, model: str) -> dict[str, np.ndarray]:
    """The vocabulary vectors the live generation already holds, if made by the same model."""
    if old.generation is None or old.model != model:
        return {}
    path = gen_dir(index_dir, old.generation)
    try:
        vocab = json.loads((path / "lexicon.json").read_text())["vocab"]
        vecs = np.load(path / "vocab_vecs.npy")
    except (OSError, ValueError, KeyError):
        return {}
    return dict(zip(vocab, vecs)) if len(vocab) == len(vecs) else {}


def build_index(
    reports_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    *,
    settings: IndexSettings | None = None,
    embeddings: SentenceTransformerEmbeddings | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Make the index hold exactly the reports of a folder.

    New or changed reports are indexed, unchanged ones reused, ones no longer in the folder
    dropped; unreadable files are reported in ``failed`` and skipped.

    >>> import tempfile
    >>> r = build_index(index_dir=tempfile.mkdtemp())  # the two bundled CIW reports
    >>> sorted(r.added)
    ['ciw-cardiff-2020-12.txt', 'ciw-wrexham-2020-10.txt']
    """
    settings = settings or get_index_settings()
    reports_dir = Path(reports_dir or settings.reports_dir)
    index_dir = Path(index_dir or settings.index_dir)
    if not reports_dir.is_dir():
        raise ReportsDirError(reports_dir, "no such folder")
    files, unsupported = discover(reports_dir)
    report = IndexReport(failed=[(p.name, f"{p.name} is not a report format Arolwg reads (PDF, DOCX, HTML, Markdown, text).") for p in unsupported])
    if not files:
        raise NoReportsError(reports_dir)
    return _sync(index_dir, settings, embeddings, files=files, keep_others=False, progress=progress, report=report)


def update_index(
    index_dir: str | Path | None = None,
    *,
    add: Iterable[str | Path] = (),
    remove: Iterable[str] = (),
    settings: IndexSettings | None = None,
    embeddings: SentenceTransformerEmbeddings | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Add report files to an index, or remove reports by id, keeping the rest."""
    settings = settings or get_index_settings()
    index_dir = Path(index_dir or settings.index_dir)
    remove = list(remove)
    return _sync(
        index_dir,
        settings,
        embeddings,
        files=[Path(p) for p in add],
        remove=remove,
        keep_others=True,
        progress=progress,
        report=IndexReport(),
    )


def is_outdated(store: IndexStore) -> bool:
    """The index was chunked by an older version of Arolwg (``update_index`` brings it up to date)."""
    return store.gen.manifest.get("chunker") != CHUNKER_VERSION


def needs_upgrade(index_dir: str | Path) -> bool:
    """The index was written by an older Arolwg, in a format or chunking this one must redo."""
    index_dir = Path(index_dir)
    gen = current_generation(index_dir)
    if gen is None:
        return False
    try:
        m = read_manifest(gen_dir(index_dir, gen))
    except ForeignIndexError:
        return False
    return m.get("version", 1) != FORMAT_VERSION or m.get("chunker") != CHUNKER_VERSION


def original_file(report_id: str, index_dir: str | Path | None = None, settings: IndexSettings | None = None) -> Path | None:
    """The copy of a report's original file (PDF, DOCX, HTML, text) the index keeps, or None.

    Only files the index holds are ever returned: the path comes from the live manifest, never
    from the caller.
    """
    settings = settings or get_index_settings()
    store = open_store(Path(index_dir or settings.index_dir), settings)
    key = store.gen.segments.get(report_id)
    return original_path(store.index_dir, key) if key else None


def check_index(index_dir: str | Path | None = None, settings: IndexSettings | None = None) -> list[str]:
    """What is wrong with an index, one plain sentence each (empty: it is sound).

    Checks every file a query reads: the live generation, each report's segment, the keyword
    index and vocabulary, and that the vector store holds exactly the live passages.

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); _ = build_index(index_dir=d)
    >>> check_index(d)
    []
    """
    settings = settings or get_index_settings()
    index_dir = Path(index_dir or settings.index_dir)
    check_index_dir(index_dir)
    gen = current_generation(index_dir)
    if gen is None:
        return [f"There is no index at {index_dir}."]
    path = gen_dir(index_dir, gen)
    if not path.is_dir():
        return [f"Its live generation {path.name} is missing."]
    try:
        manifest = read_manifest(path)
    except ForeignIndexError:
        return [f"The manifest of {path.name} cannot be read."]
    if manifest.get("version", 1) != FORMAT_VERSION:
        return ["It was written by an older Arolwg and needs upgrading."]
    problems = [f"The passages of {rid} are damaged or missing." for rid, r in sorted(manifest["reports"].items())
                if not segment_sound(index_dir, r["segment"])]
    problems += [p[0].upper() + p[1:] + "." for p in generation_sound(index_dir, gen)]
    if problems:
        return problems
    ids = [c.id for r in sorted(manifest["reports"]) for c in read_segment(index_dir, manifest["reports"][r]["segment"], vectors=False).chunks]
    try:
        client = chroma_client(index_dir, settings)
        col = client.get_collection(collection_name(settings, manifest["index_id"], manifest["embedding_model"]))
        have: set[str] = set()
        for off in range(0, col.count(), 10000):
            have |= set(col.get(include=[], limit=10000, offset=off)["ids"])
    except ChromaServerError:
        raise
    except Exception:  # noqa: BLE001 - any failure here means the vector store is not usable
        return ["Its vector store cannot be opened or has no collection for this index."]
    lacking = len(set(ids) - have)
    if lacking:
        problems.append(f"Its vector store lacks {lacking} of its {len(ids)} passages.")
    return problems


def list_reports(index_dir: str | Path | None = None, settings: IndexSettings | None = None) -> list[ReportInfo]:
    """The reports in an index, with their metadata and chunk counts."""
    settings = settings or get_index_settings()
    return open_store(Path(index_dir or settings.index_dir), settings).gen.report_infos()


def source_text(report_id: str, index_dir: str | Path | None = None, settings: IndexSettings | None = None) -> str:
    """The text that an indexed report's spans point into."""
    settings = settings or get_index_settings()
    store = open_store(Path(index_dir or settings.index_dir), settings)
    if report_id not in store.reports:
        raise IndexMissingError(f"{index_dir or settings.index_dir} (report {report_id})")
    return store.source_text(report_id)


def set_report_dates(
    report_id: str,
    start: str,
    end: str | None = None,
    index_dir: str | Path | None = None,
    *,
    settings: IndexSettings | None = None,
) -> ReportMeta:
    """Date a report's inspection by hand (ISO days; ``end`` defaults to ``start``); returns its metadata.

    For a report whose dates could not be found in its text (or were read wrongly). Nothing is
    embedded or chunked again: a new generation lists the same segments with these dates (kept
    as metadata with ``dated_by="hand"``, so later writes and upgrades keep them), and the
    report's passages in Chroma get the new dates. Raises :class:`BadDatesError` for dates that
    are not real, ordered days from 1990 to today, :class:`ReportNotIndexedError` for a report
    the index does not hold.
    """
    settings = settings or get_index_settings()
    index_dir = Path(index_dir or settings.index_dir)
    return _write_dates(index_dir, settings, report_id, hand_dates(start, end))  # checked before the index is touched


def clear_report_dates(
    report_id: str, index_dir: str | Path | None = None, *, settings: IndexSettings | None = None
) -> ReportMeta:
    """Undo :func:`set_report_dates`: the report's dates are again those read from its own text
    ("" when it gives none); returns its metadata. A report not dated by hand is left as it is.

    As with dating by hand, nothing is embedded again. Raises :class:`ReportNotIndexedError` for
    a report the index does not hold.
    """
    settings = settings or get_index_settings()
    return _write_dates(Path(index_dir or settings.index_dir), settings, report_id, None)


def _write_dates(index_dir: Path, settings: IndexSettings, report_id: str, shown: str | None) -> ReportMeta:
    try:
        return _set_dates(index_dir, settings, report_id, shown)
    except OSError as exc:
        if is_disk_full(exc) or _nearly_full(index_dir):
            raise DiskFullError(index_dir) from exc
        raise


def _set_dates(index_dir: Path, settings: IndexSettings, report_id: str, shown: str | None) -> ReportMeta:
    """Give ``report_id`` the dates ``shown`` (by hand), or (None) the dates its text gives."""
    check_index_dir(index_dir)
    with write_lock(index_dir):
        gen = current_generation(index_dir)
        if gen is None:
            raise IndexMissingError(index_dir)
        try:
            manifest = read_manifest(gen_dir(index_dir, gen))
        except ForeignIndexError as exc:
            if segments_dir(index_dir).is_dir():
                raise IndexDamagedError(index_dir, f"the manifest of {gen_dir(index_dir, gen).name} cannot be read") from exc
            raise
        if manifest.get("version", 1) != FORMAT_VERSION:
            raise OutdatedIndexError(index_dir)
        entry = manifest["reports"].get(report_id)
        if entry is None:
            raise ReportNotIndexedError(report_id, index_dir, sorted(manifest["reports"]))
        before = ReportMeta(**{k: v for k, v in entry.items() if k in ReportMeta.__dataclass_fields__})
        if shown is not None:
            after = replace(before, dates=shown, dated_by="hand")
        elif before.dated_by != "hand":
            return before  # its dates are already its text's: nothing to write
        else:
            try:
                text = segment_text(index_dir, entry["segment"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise IndexDamagedError(index_dir, f"the text of {report_id} cannot be read") from exc
            after = replace(before, dates=detect_dates(clean_text(text).text), dated_by="")
        try:
            ids = [c.id for c in read_segment(index_dir, entry["segment"], vectors=False).chunks]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexDamagedError(index_dir, f"the passages of {report_id} cannot be read") from exc
        name = collection_name(settings, manifest["index_id"], manifest["embedding_model"])
        with _server_errors(settings):
            try:
                col = chroma_client(index_dir, settings).get_collection(name)
            except ArolwgError:
                raise
            except Exception as exc:  # noqa: BLE001 - without its collection the store is damaged
                if settings.chroma_host:
                    raise
                raise IndexDamagedError(index_dir, f"its vector store has no collection {name}") from exc
            # Before the commit: readers of the live generation filter by report id, never by
            # these fields, so the new dates showing early in Chroma changes no answer.
            _chroma_dates(col, ids, after)
        new = {**manifest, "generation": gen + 1, "reports": {**manifest["reports"], report_id: {**entry, **asdict(after)}}}
        try:
            copy_generation(index_dir, gen, gen + 1, new)
        except BaseException:
            with contextlib.suppress(Exception):
                _chroma_dates(col, ids, before)  # back to what the live generation says
            raise
        drop_old(index_dir, gen + 1)
    log.info("dated %s %s: %s", report_id, "by hand" if shown is not None else "from its text again", after.dates or "(no date found)")
    return after


def _chroma_dates(col, ids: list[str], meta: ReportMeta, batch: int = 1000) -> None:
    """Give the passages ``ids`` the inspection dates of ``meta`` in Chroma (their other metadata kept)."""
    # An update merges keys, and None removes one: an undated report must lose its year.
    fields = {"year": None, **_dates_entry(meta)}
    for b in range(0, len(ids), batch):
        part = ids[b : b + batch]
        old = col.get(ids=part, include=["metadatas"])
        by_id = dict(zip(old["ids"], old["metadatas"]))
        have = [i for i in part if i in by_id]
        if have:
            col.update(ids=have, metadatas=[{**(by_id[i] or {}), **fields} for i in have])
