"""Evidence windows: the few words of the retrieved passages that bear on a claim.

A cross-encoder's cost grows with every token it reads, and most of a 120-word passage says
nothing about a given claim. Scoring one short window (SummaC/AlignScore-style chunking, with the
chunk chosen lexically instead of scoring every chunk with the model) costs one short forward
pass per claim instead of one long pass per passage, and the model attends to the words that
decide the claim. Training and inference call the same function, so the verifier sees at run
time what it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from redraft.critics.factuality.kb import Passage

_STOP_WORDS = (
    "a an the and or but of in on at to for from by with as is are was were be been being it its this that "
    "these those he she they his her their there which who whom what when where how than then also not"
)
_STOP = frozenset(_STOP_WORDS.split())
_TERM = re.compile(r"[a-z0-9]+")


def content_terms(text: str) -> set[str]:
    """Lower-cased words of ``text`` without stop words."""
    return {t for t in _TERM.findall(text.lower()) if t not in _STOP}


@dataclass(frozen=True, slots=True)
class Window:
    """The chosen evidence: ``text`` is what the verifier reads (title, then the window)."""

    text: str
    passage: Passage | None
    cut: bool
    """Words of the passages were left out of the window."""


def best_window(claim: str, passages: Sequence[Passage], words: int) -> Window:
    """The ``words``-word window of ``passages`` that shares the most with ``claim``.

    Windows start every quarter window, and each is read after its passage's title. A term counts
    once per window; numbers count double, because a wrong year or count is the error a window
    must not hide. Ties go to the earlier passage (retrieval order) and the earlier window.

    Example:
        >>> p = Passage(doc=0, title="Marie Curie", text="Marie Curie was a physicist. She was born in Warsaw in 1867 "
        ...     "and moved to Paris in 1891. She won two Nobel Prizes.")
        >>> best_window("Curie moved to Paris in 1867.", [p], words=8).text
        'Marie Curie: in Warsaw in 1867 and moved to Paris'
    """
    if words < 1:
        raise ValueError(f"words must be ≥ 1, got {words}")
    wanted = {t: (2 if t.isdigit() else 1) for t in content_terms(claim)}
    best: tuple[int, int, int] | None = None  # (score, -passage, -start) maximised
    for i, p in enumerate(passages):
        tokens = p.text.split()
        titled = content_terms(p.title)  # the title is read with every window of its passage
        last = max(len(tokens) - words, 0)
        starts = sorted({*range(0, last + 1, max(words // 4, 1)), last})
        for s in starts:
            have = titled | content_terms(" ".join(tokens[s : s + words]))
            key = (sum(w for t, w in wanted.items() if t in have), -i, -s)
            if best is None or key > best:
                best = key
    if best is None:
        return Window("", None, False)
    i, s = -best[1], -best[2]
    p = passages[i]
    tokens = p.text.split()
    body = " ".join(tokens[s : s + words])
    cut = len(passages) > 1 or len(tokens) > words
    return Window(f"{p.title}: {body}" if p.title else body, p, cut)
