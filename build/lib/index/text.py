"""Word-level text processing shared by the keyword index and the answerer."""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also did does tell say said says
    many much anything something please whether""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes dropped: "children's" -> "childrens")."""
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", ""))


def stems(ws: list[str]) -> list[str]:
    """The stem of each word."""
    return _stemmer().stemWords(ws)


def terms(text: str) -> list[str]:
    """Stemmed content words: what BM25 and word-overlap scores compare.

    >>> terms("What must Wrexham improve about carers' assessments?")
    ['must', 'wrexham', 'improv', 'carer', 'assess']
    """
    return _stemmer().stemWords([w for w in words(text) if w not in STOPWORDS])
