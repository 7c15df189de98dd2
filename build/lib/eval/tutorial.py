"""The LangChain RAG tutorial pipeline, built as the tutorial builds it: the baseline to beat.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True) over each
report's text, all-MiniLM-L6-v2 embeddings, a Chroma collection on disk, similarity search top 4.
It has no answer generator here: its "answer" is its four passages joined, so its answer metrics
measure what an LLM would be handed, not what it would say.

>>> from eval.tutorial import TutorialPipeline                      # doctest: +SKIP
>>> with TutorialPipeline({"r.txt": "Some report text."}) as tut:    # doctest: +SKIP
...     [p.source for p in tut.search("report?", k=1)]
['r.txt']
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4  # what the tutorial's retriever returns; deeper ranks are measured only for recall@10


@dataclass(frozen=True)
class Hit:
    """A retrieved tutorial chunk with its span in the report's text."""

    source: str
    start: int
    end: int
    text: str


def default_embeddings(settings=None):
    """The project's shared all-MiniLM-L6-v2 embeddings (a langchain_core Embeddings)."""
    from index.embeddings import get_embeddings

    return get_embeddings(settings)


class TutorialPipeline:
    """Split, embed and store reports in a temporary Chroma, then search it like the tutorial."""

    def __init__(self, texts: Mapping[str, str], embeddings=None) -> None:
        self._texts = dict(texts)
        self._embeddings = embeddings
        self._dir: str | None = None
        self.store = None
        self.n_chunks = 0
        self.build_seconds = 0.0

    def __enter__(self) -> TutorialPipeline:
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self) -> None:
        """Split every report and add the chunks to a fresh on-disk Chroma collection (timed)."""
        import chromadb
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if self._embeddings is None:
            self._embeddings = default_embeddings()
        self._dir = tempfile.mkdtemp(prefix="arolwg-tutorial-")
        started = time.perf_counter()
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
        )
        docs = splitter.split_documents(
            [Document(page_content=text, metadata={"source": source}) for source, text in self._texts.items()]
        )
        self.store = Chroma(
            collection_name="tutorial",
            embedding_function=self._embeddings,
            persist_directory=self._dir,
            client_settings=chromadb.config.Settings(anonymized_telemetry=False),
        )
        self.store.add_documents(docs)
        self.build_seconds = time.perf_counter() - started
        self.n_chunks = len(docs)
        log.info("tutorial pipeline: %d chunks in %.1f s", self.n_chunks, self.build_seconds)

    def search(self, question: str, k: int = TOP_K) -> list[Hit]:
        """The ``k`` chunks most similar to ``question`` (Chroma's default L2 on normalised vectors)."""
        docs = self.store.similarity_search(question, k=k)
        return [
            Hit(d.metadata["source"], d.metadata["start_index"], d.metadata["start_index"] + len(d.page_content), d.page_content)
            for d in docs
        ]

    def close(self) -> None:
        """Drop the temporary Chroma store."""
        self.store = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
