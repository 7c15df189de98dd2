"""Checking an LLM's answer against the passages it cites.

The answer is split into sentences; each ``[n]`` marker is parsed (``[1]``, ``[1, 2]``, ``[1-3]``,
``[Source 1]``). A sentence is *supported* by a cited passage when one sentence of that passage
(or two adjacent ones) backs it on its own, measured by :func:`support` as the mean of

* **overlap**: the share of the claim's content words (lower-cased, stop words dropped, crudely
  stemmed) found in that sentence, and
* **similarity**: the cosine similarity between the claim and that sentence, with the same
  sentence-transformers model the index uses (all-MiniLM-L6-v2),

at least :data:`SUPPORT_THRESHOLD` (0.55), and every number in the claim appears in that
sentence (a changed figure is the commonest hallucination and barely moves either score).
Without an embedding model the overlap alone is used, against :data:`OVERLAP_THRESHOLD` (0.65).
Judging each passage, and within it one sentence, on its own matters: a vacuous sentence made of
words scattered over five passages (SmolLM2 writes such things) would pass a bag-of-words test
over all of them. The backing sentence is also the citation's quote, so the reader sees it.

The thresholds were set on 30 hand-made pairs from the bundled reports, kept in
``tests/test_llm_verify.py``: 15 verbatim or paraphrased claims scored 0.52-0.98 (one loose
paraphrase, 0.52, falls below the line), 15 claims cited to the wrong passage or invented scored
0.04-0.51 (one with a changed figure scored 0.68 and is caught by the figure check). Overlap
alone accepts 9 of the 15 true claims and none of the false ones. The threshold leans to
flagging: a wrongly flagged true sentence costs less than a wrongly trusted false one. Known
blind spot: a claim that reuses a passage's words but reverses it ("plenty of accommodation"
against "accommodation remains a challenge") scores near 0.5, just under the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

SUPPORT_THRESHOLD = 0.55
OVERLAP_THRESHOLD = 0.65

# --- sentences -------------------------------------------------------------------------------

_ABBREVIATIONS = {"e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "no", "vs", "cf", "st", "approx", "incl"}
# A sentence ends at . ! ? (optionally closed by quotes/brackets) followed by whitespace and a
# plausible sentence start; also at a blank line, and before a bullet on a new line.
_BOUNDARY = re.compile(
    r"(?<=[.!?])[\"'\u2019\u201d)\]]*\s+(?=[\"'\u2018\u201c(\[]?[A-Z0-9\u2022-])"
    r"|\n[ \t]*\n\s*"
    r"|\n(?=[ \t]*(?:[-\u2022*]|\d+[.)])\s)"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, trimmed of surrounding whitespace.

    >>> t = "One is here. Two, e.g. this, is here.\\n\\n- A bullet"
    >>> [t[s:e] for s, e in sentence_spans(t)]
    ['One is here.', 'Two, e.g. this, is here.', '- A bullet']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        before = text[start : m.start()]
        last_word = re.search(r"([A-Za-z.]+)\.\W*$", before)
        if last_word and (last_word.group(1).lower() in _ABBREVIATIONS or len(last_word.group(1)) == 1):
            continue  # "e.g." or an initial, not the end of a sentence
        if re.fullmatch(r"\s*(?:\d{1,3}|[A-Za-z])[.)]", before):
            continue  # the number of a list item: "1. Strong leadership ..."
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        seg = text[s:e]
        ls = len(seg) - len(seg.lstrip())
        rs = len(seg.rstrip())
        if rs > ls:
            out.append((s + ls, s + rs))
    return out


def clean(text: str) -> str:
    """Source text as words: hyphenation across line ends undone, whitespace collapsed."""
    text = re.sub(r"(\w)-[ \t]*\n\s*(\w)", r"\1\2", text)
    return " ".join(text.split())


# --- citation markers ------------------------------------------------------------------------

MARKER = re.compile(
    r"\[\s*(?:sources?|passages?|refs?\.?)?\s*(\d{1,3}(?:\s*(?:,|;|and|&|-|\u2013)\s*(?:sources?\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE,
)


def marker_numbers(inner: str) -> list[int]:
    """The source numbers named inside one marker: ``"1, 3-4"`` gives ``[1, 3, 4]``."""
    nums: list[int] = []
    for part in re.split(r"\s*(?:,|;|and|&)\s*", inner, flags=re.IGNORECASE):
        part = re.sub(r"(?i)sources?\s*", "", part).strip()
        m = re.fullmatch(r"(\d+)\s*[-\u2013]\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if a <= b <= a + 20:
                nums.extend(range(a, b + 1))
        elif part.isdigit():
            nums.append(int(part))
    return nums


def attach_markers(text: str) -> str:
    """Move markers that follow a sentence's full stop before it: ``"Done. [1]"`` -> ``"Done [1]."``."""
    pattern = re.compile(r"([.!?])((?:[ \t]*" + MARKER.pattern + r")+)", re.IGNORECASE)
    return pattern.sub(lambda m: " " + m.group(2).strip() + m.group(1), text)


def tidy(text: str) -> str:
    """Spaces left by removed markers: doubled spaces and spaces before punctuation."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    return text.strip()


# --- words -----------------------------------------------------------------------------------

_STOP = set(
    """a an the and or but if of to in on at by for with from as is are was were be been being has
    have had do does did this that these those it its they them their there here we our us you your
    he she his her which who whom whose what when where why how not no nor so than too very can could
    will would shall should may might must also into about over under between within all any both
    each few more most other some such only own same just while during after before because until
    per via out up down off again further then once s""".split()
)


def _stem(w: str) -> str:
    # Crude on purpose: "services"/"service", "reviewed"/"review", "working"/"work" meet.
    for suf in ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w


def content_words(text: str) -> set[str]:
    """Lower-cased, stemmed words of ``text`` minus stop words.

    >>> sorted(content_words("The services were reviewed by inspectors."))
    ['inspector', 'review', 'servic']
    """
    words = re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "'").replace("'s ", " "))
    return {_stem(w) for w in words if w not in _STOP and (len(w) > 1 or w.isdigit())}


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    """Figures written in digits (``"1,200"`` and ``"1200"`` are the same)."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


# --- support ---------------------------------------------------------------------------------


@dataclass
class SourceSentences:
    """The sentences of one cited passage, as spans of the report's source text."""

    spans: list[tuple[int, int]]  # absolute spans in the source text
    texts: list[str]  # cleaned text of each span
    words: set[str] = field(default_factory=set)
    figures: set[str] = field(default_factory=set)
    vectors: list | None = None  # unit embedding per sentence, when an embedding model is given


def source_sentences(source: str, start: int, end: int) -> SourceSentences:
    """Split ``source[start:end]`` (a passage's span of its report) into sentences."""
    chunk = source[start:end]
    spans = [(start + s, start + e) for s, e in sentence_spans(chunk)] or [(start, end)]
    texts = [clean(source[s:e]) for s, e in spans]
    joined = " ".join(texts)
    return SourceSentences(spans, texts, content_words(joined), numbers(joined))


def overlap(claim_words: set[str], source_words: set[str]) -> float:
    """Share of the claim's content words found in the source (1.0 for a claim with none)."""
    if not claim_words:
        return 0.0
    return len(claim_words & source_words) / len(claim_words)


Embed = Callable[[list[str]], list[list[float]]]


def unit_vectors(embed: Embed, texts: Sequence[str]):
    """Embeddings of ``texts`` scaled to length 1 (numpy array, one row per text)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 1))
    v = np.asarray(embed(list(texts)), dtype=float)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return v / norms


@dataclass
class Window:
    """One or two adjacent sentences of a cited passage, scored against a claim."""

    passage: int  # index into the ``sources`` given to :func:`support`
    first: int  # first and last sentence index (inclusive) within that passage
    last: int
    score: float
    overlap: float
    similarity: float | None
    figures_ok: bool

    def supported(self, threshold: float | None = None) -> bool:
        if threshold is None:
            threshold = SUPPORT_THRESHOLD if self.similarity is not None else OVERLAP_THRESHOLD
        return self.figures_ok and self.score >= threshold


#: A two-sentence window is preferred to its best single sentence only when it adds this much:
#: the claim joins words of both sentences, so the quote must show both.
PAIR_GAIN = 0.15


@dataclass
class Support:
    """How well one claim is backed: the best window of each cited passage, best first."""

    windows: list[Window]

    @property
    def best(self) -> Window | None:
        return self.windows[0] if self.windows else None

    @property
    def score(self) -> float:
        return self.best.score if self.best else 0.0

    @property
    def figures_ok(self) -> bool:
        return bool(self.best and self.best.figures_ok)

    def backing(self, threshold: float | None = None) -> list[Window]:
        """The windows (one per passage at most) that support the claim on their own."""
        return [w for w in self.windows if w.supported(threshold)]

    def supported(self, threshold: float | None = None) -> bool:
        return bool(self.backing(threshold))


def support(claim: str, cited: Sequence[int], sources: Sequence[SourceSentences], claim_vector=None) -> Support:
    """Score ``claim`` against each passage it cites (indexes into ``sources``).

    Each passage is judged on its own, and within it on the single sentence (or pair of
    adjacent sentences) that backs the claim best: the words must be in the quote shown to
    the reader, not scattered over several passages. A window's score is the mean of its
    word overlap with the claim and the best cosine similarity of one of its sentences to the
    claim (the overlap alone without embeddings); its figures must include the claim's.
    """
    words = content_words(claim)
    figures = numbers(claim)
    windows: list[Window] = []
    for i in dict.fromkeys(cited):
        src = sources[i]
        n = len(src.texts)
        sent_words = [content_words(t) for t in src.texts]
        sent_figs = [numbers(t) for t in src.texts]
        sims = None
        if claim_vector is not None and src.vectors is not None:
            sims = [float(v @ claim_vector) for v in src.vectors]

        def window(a: int, b: int) -> Window:
            ws = set().union(*sent_words[a : b + 1])
            fs = set().union(*sent_figs[a : b + 1])
            ov = overlap(words, ws)
            sim = None if sims is None else max(sims[a : b + 1])
            score = ov if sim is None else (ov + sim) / 2
            return Window(i, a, b, score, ov, sim, figures <= fs)

        singles = [window(j, j) for j in range(n)]
        pairs = [window(j, j + 1) for j in range(n - 1)]
        rank = lambda w: (w.figures_ok, w.score)  # noqa: E731 - a sort key
        best = max(singles, key=rank)
        if pairs:
            pair = max(pairs, key=rank)
            if rank(pair) > rank(best) and (pair.figures_ok > best.figures_ok or pair.score >= best.score + PAIR_GAIN):
                best = pair
        windows.append(best)
    windows.sort(key=lambda w: (w.figures_ok, w.score), reverse=True)
    return Support(windows)


# --- abstention ------------------------------------------------------------------------------

_ABSTAIN = re.compile(
    r"\b(?:the|these|those|provided|given)\s+(?:reports?|sources?|passages?|documents?|context|texts?|information)\s+"
    r"(?:provided\s+|given\s+)?(?:do|does|did)\s*(?:not|n't)\s+"
    r"(?:say|answer|contain|mention|provide|include|specify|state|cover|give|address|tell|discuss)"
    r"|\b(?:i|we)\s+(?:cannot|can't|can\s*not|am\s+unable\s+to|am\s+not\s+able\s+to|do\s*(?:not|n't)|don't)\s+"
    r"(?:answer|find|know|say|determine|tell)"
    r"|\bnot\s+(?:mentioned|stated|specified|covered|provided|found|answered|given|included)\s+in\s+the\s+"
    r"(?:reports?|sources?|passages?|documents?|context)"
    r"|\b(?:there\s+is\s+)?no\s+information\s+(?:about|on|regarding|in\s+the\s+(?:reports?|sources?))"
    r"|\bnot\s+(?:possible|able)\s+to\s+(?:answer|say|determine)",
    re.IGNORECASE,
)


def is_abstention(sentence: str) -> bool:
    """Whether a sentence says the sources do not answer (rather than stating a finding).

    >>> is_abstention("The reports do not say.")
    True
    >>> is_abstention("There was no evidence of critical evaluation.")
    False
    """
    return bool(_ABSTAIN.search(sentence))
