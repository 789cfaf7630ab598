"""Whether a revision carries the loop's own scaffolding into its answer: the critics' names,
the phrases of redraft's critiques, or words copied from a strategy's revise turn. Such a
revision is no answer a user would accept, whatever it now says about the claim."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from redraft.corrections.strategies import STRATEGIES, RevisionAsk
from redraft.critics.base import Critique, Finding

SCAFFOLD_MARKERS: tuple[str, ...] = (
    "known false claim",
    "false claim (",
    "reviewers",
    "the findings",
    "findings override",
    "fact-check",
    "fact check",
    "corrected response",
    "revised response",
    "the original request",
    "it was written for the request",
    "knowledge base",
    "belief corpus",
    "belief-corpus",
    "traceshield",
    "bci threshold",
    "these instructions",
    "evidence passage",
)
"""Phrases of redraft's own critiques and revise turns that no answer to a user's request would
contain (matched case-insensitively)."""

SHINGLE = 5
"""Words in a row that, copied from a revise turn's fixed text, make a leak."""


def scaffolding_leak(text: str, critics: Sequence[str] = ()) -> str | None:
    """The first piece of the loop's own scaffolding a revision carries into its answer, or None:
    a critic's name in parentheses, a phrase of :data:`SCAFFOLD_MARKERS`, or any :data:`SHINGLE`
    words in a row from the fixed text of a registered strategy's revise turns.

    Example:
        >>> scaffolding_leak("The turtle is the fastest animal is a known FALSE claim (bci).", ["bci"])
        '(bci)'
        >>> scaffolding_leak("The findings override the request, so: the falcon is fastest.")
        'the findings'
        >>> scaffolding_leak("The peregrine falcon is the fastest animal.") is None
        True
    """
    folded = " ".join(text.casefold().split())
    for name in critics:
        if f"({name.casefold()})" in folded:
            return f"({name})"
    for marker in SCAFFOLD_MARKERS:
        if marker in folded:
            return marker
    words = _words(folded)
    shingles = _scaffold_shingles()
    for i in range(len(words) - SHINGLE + 1):
        run = " ".join(words[i : i + SHINGLE])
        if run in shingles:
            return run
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.casefold())


@functools.cache
def _scaffold_shingles() -> frozenset[str]:
    """Every :data:`SHINGLE`-word run of the revise turns' fixed text: each registered strategy's
    turns rendered with a sentinel for every user-, draft-, critic- and evidence-supplied value,
    cut at the sentinels."""
    mark = "\x00"
    findings = [
        Finding(critic=mark, kind=kind, claim=mark, quote=mark, advice="", feedback=mark)
        for kind in ("false-claims", "unsupported", "unsafe", "copyrighted", "check")
    ]
    critiques = [Critique(critic=mark, passed=passed, feedback=mark) for passed in (False, None, True)]
    ask = RevisionAsk(prompt=mark, draft=mark, critiques=critiques, findings=findings)
    out: set[str] = set()
    for s in STRATEGIES.values():
        for turn in s.turns(ask):
            for piece in turn["content"].split(mark):
                words = _words(piece)
                out.update(" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))
    return frozenset(out)
