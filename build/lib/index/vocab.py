"""The reports' own vocabulary, embedded word by word, to bridge a question's words to theirs.

People ask in their own words ("kids", "infirmary", "teenagers"); the reports say "children",
"hospital", "young people". A question word the reports never use is matched to the nearest
words they do use (by the embedding model's cosine similarity), and those words join the keyword
search and the answerer's word overlap. It bridges only words the reports lack, so a question
in the reports' own words is searched exactly as asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.text import STOPWORDS, stems, words

MIN_SIMILARITY = 0.6  # measured on eval/qa.jsonl: 0.55-0.65 do about as well; 0.7 bridges too little
PER_WORD = 2  # report words added per unknown question word
# Words about the form of a question, not its subject (bridged, "compared" finds "better"),
# and number words, which must match exactly or not at all ("two" is not "three").
FORM_WORDS = frozenset(
    """compare compared comparing comparison versus differ differs different difference differences
    similar similarly contrast explain describe summarise summarize list give mention mentioned
    according one two three four five six seven eight nine ten""".split()
)


def vocabulary(texts) -> list[str]:
    """The distinct content words of ``texts``, sorted (no numbers, stopwords or 1-2 letter words).

    >>> vocabulary(["The children's carers", "carers of children"])
    ['carers', 'children', 'childrens']
    """
    return sorted({w for t in texts for w in words(t) if len(w) > 2 and not w.isdigit() and w not in STOPWORDS})


def embed_vocabulary(vocab: list[str], encode, previous: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Unit vectors for ``vocab``, reusing ``previous`` vectors of words already embedded."""
    previous = previous or {}
    new = [w for w in vocab if w not in previous]
    fresh = dict(zip(new, encode(new))) if new else {}
    if not vocab:
        return np.zeros((0, 0), "float32")
    return np.asarray([previous[w] if w in previous else fresh[w] for w in vocab], dtype="float32")


@dataclass(frozen=True)
class Bridge:
    """A question word the reports don't use, and the report words nearest to it."""

    word: str
    neighbours: tuple[tuple[str, float], ...]


def bridge(
    question: str,
    vocab: list[str],
    vecs: np.ndarray,
    encode,
    *,
    min_similarity: float = MIN_SIMILARITY,
    per_word: int = PER_WORD,
) -> list[Bridge]:
    """For each question word missing from ``vocab``, its nearest vocabulary words above
    ``min_similarity`` (one batch through ``encode`` for all missing words)."""
    if not vocab or not len(vecs):
        return []
    # Known by stem: "get" is no stranger to reports that say "getting".
    known = set(stems(vocab))
    asked = [w for w in words(question) if len(w) > 2 and not w.isdigit() and w not in STOPWORDS and w not in FORM_WORDS]
    missing = list(dict.fromkeys(w for w, st in zip(asked, stems(asked)) if st not in known))
    if not missing:
        return []
    out: list[Bridge] = []
    for w, v in zip(missing, np.asarray(encode(missing), dtype="float32")):
        sims = vecs @ v
        top = np.argsort(-sims)[:per_word]
        out.append(Bridge(w, tuple((vocab[i], round(float(sims[i]), 3)) for i in top if sims[i] >= min_similarity)))
    return out
