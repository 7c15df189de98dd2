"""Build and update an index: load, clean, chunk, embed and store reports."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from index.chunking import CHUNKER_VERSION, Sentence, chunk_report
from index.clean import clean_text
from index.embeddings import SentenceTransformerEmbeddings, get_embeddings
from index.vocab import embed_vocabulary, vocabulary
from index.load import discover, load_file
from index.meta import detect_meta
from index.store import (
    Generation,
    IndexStore,
    ReportInfo,
    check_index_dir,
    current_generation,
    gen_dir,
    open_store,
    write_generation,
    write_lock,
)
from index.types import Chunk, ReportMeta
from index.errors import ArolwgError, IndexMissingError, NoReportsError, ReportsDirError
from index.settings import IndexSettings as Settings, get_index_settings as get_settings

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


@dataclass
class _Doc:
    meta: ReportMeta
    text: str
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_vecs: np.ndarray | None = None
    sent_vecs: np.ndarray | None = None


def _prepare(path: Path, settings: Settings) -> _Doc:
    loaded = load_file(path, max_bytes=int(settings.max_file_mb * 1e6))
    mapped = clean_text(loaded.source_text)
    meta = detect_meta(loaded.report_id, loaded.source_text, mapped.text)
    chunks, sentences = chunk_report(loaded.report_id, mapped)
    return _Doc(meta, loaded.source_text, chunks, sentences)


def _from_generation(gen: Generation, rid: str) -> _Doc:
    if gen.manifest.get("chunker") != CHUNKER_VERSION:
        # Chunked by an older Arolwg: chunk the stored text again (it is the text every span
        # points into), so no report is lost even if its file is no longer at hand.
        text = gen.source_text(rid)
        chunks, sentences = chunk_report(rid, clean_text(text))
        return _Doc(gen.reports[rid], text, chunks, sentences)
    rows = [i for i, c in enumerate(gen.chunks) if c.report_id == rid]
    ids = {gen.chunks[i].id for i in rows}
    srows = [i for i, s in enumerate(gen.sentences) if s.chunk_id in ids]
    return _Doc(
        gen.reports[rid],
        gen.source_text(rid),
        [gen.chunks[i] for i in rows],
        [gen.sentences[i] for i in srows],
        gen.chunk_vecs[rows],
        gen.sent_vecs[srows],
    )


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its place in the report, then its words."""
    return " > ".join(chunk.section) + "\n" + chunk.text


def _sync(
    index_dir: Path,
    settings: Settings,
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
    step = 0
    total = len(files) + 3

    def tick(msg: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(min(step, total), total, msg)

    with write_lock(index_dir):
        old_gen_no = current_generation(index_dir)
        old = Generation(gen_dir(index_dir, old_gen_no)) if old_gen_no is not None else None
        reusable = old is not None and old.manifest.get("embedding_model") == model and old.manifest.get("chunker") == CHUNKER_VERSION
        docs: dict[str, _Doc] = {}
        if old is not None and keep_others:
            for rid in old.reports:
                if rid not in set(remove):
                    docs[rid] = _from_generation(old, rid)
        for path in files:
            tick(f"reading {path.name}")
            try:
                doc = _prepare(path, settings)
            except ArolwgError as exc:
                report.failed.append((path.name, str(exc)))
                log.warning("%s", exc)
                if old is not None and path.name in old.reports:
                    docs[path.name] = _from_generation(old, path.name)  # keep the version we had
                continue
            rid = doc.meta.report_id
            if reusable and rid in old.reports and old.reports[rid].sha256 == doc.meta.sha256:
                docs[rid] = _from_generation(old, rid)
                report.skipped.append(rid)
            else:
                docs[rid] = doc
                report.added.append(rid)
        if old is not None:
            report.removed = sorted(set(old.reports) - set(docs))
        if not docs and not report.removed:
            raise NoReportsError(", ".join(p.name for p in files) or index_dir)
        if old is not None and not report.changed and reusable:
            report.skipped = sorted(set(report.skipped) | set(docs))
            report.n_chunks = sum(len(d.chunks) for d in docs.values())
            report.seconds = time.perf_counter() - t0
            if progress:
                progress(total, total, "index is up to date")
            return report

        todo = [d for d in docs.values() if d.chunk_vecs is None or not reusable]
        n_texts = sum(len(d.chunks) + len(d.sentences) for d in todo)
        done = 0
        for d in todo:
            vecs = []
            texts = [embed_text(c) for c in d.chunks] + [s.text for s in d.sentences]
            for i in range(0, len(texts), 64):
                vecs.append(emb.encode(texts[i : i + 64]))
                done += len(texts[i : i + 64])
                if progress:
                    # Count embedded texts too, so the bar moves through the long part.
                    progress(step + done, total + n_texts, f"embedding {done}/{n_texts} passages and sentences")
            allv = np.concatenate(vecs) if vecs else np.zeros((0, 384), "float32")
            d.chunk_vecs, d.sent_vecs = allv[: len(d.chunks)], allv[len(d.chunks) :]
        step += n_texts
        total += n_texts
        ordered = [docs[k] for k in sorted(docs)]
        tick("embedding the reports' vocabulary")
        vocab = vocabulary(c.text for d in ordered for c in d.chunks)
        previous = dict(zip(old.vocab, old.vocab_vecs)) if old is not None and old.manifest.get("embedding_model") == model else {}
        vocab_vecs = embed_vocabulary(vocab, emb.encode, previous)
        tick("writing the index")
        dim = next((d.chunk_vecs.shape[1] for d in ordered if d.chunk_vecs is not None and d.chunk_vecs.size), 384)
        write_generation(
            index_dir,
            (old_gen_no or 0) + 1,
            reports={d.meta.report_id: d.meta for d in ordered},
            texts={d.meta.report_id: d.text for d in ordered},
            chunks=[c for d in ordered for c in d.chunks],
            sentences=[s for d in ordered for s in d.sentences],
            chunk_vecs=np.concatenate([d.chunk_vecs for d in ordered]) if ordered else np.zeros((0, dim), "float32"),
            sent_vecs=np.concatenate([d.sent_vecs for d in ordered]) if ordered else np.zeros((0, dim), "float32"),
            embedding_model=model,
            chunker=CHUNKER_VERSION,
            settings=settings,
            vocab=vocab,
            vocab_vecs=vocab_vecs,
        )
        tick("done")
    report.n_chunks = sum(len(d.chunks) for d in docs.values())
    report.seconds = time.perf_counter() - t0
    log.info("indexed %d reports (%d chunks) in %.1fs", len(docs), report.n_chunks, report.seconds)
    return report


def build_index(
    reports_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    *,
    settings: Settings | None = None,
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
    settings = settings or get_settings()
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
    settings: Settings | None = None,
    embeddings: SentenceTransformerEmbeddings | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Add report files to an index, or remove reports by id, keeping the rest."""
    settings = settings or get_settings()
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


def list_reports(index_dir: str | Path | None = None, settings: Settings | None = None) -> list[ReportInfo]:
    """The reports in an index, with their metadata and chunk counts."""
    settings = settings or get_settings()
    return open_store(Path(index_dir or settings.index_dir), settings).gen.report_infos()


def source_text(report_id: str, index_dir: str | Path | None = None, settings: Settings | None = None) -> str:
    """The text that an indexed report's spans point into."""
    settings = settings or get_settings()
    store = open_store(Path(index_dir or settings.index_dir), settings)
    if report_id not in store.reports:
        raise IndexMissingError(f"{index_dir or settings.index_dir} (report {report_id})")
    return store.source_text(report_id)
