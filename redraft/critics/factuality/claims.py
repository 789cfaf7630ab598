"""Claims: the checkable sentences of a draft.

Sentences are split with pysbd (rule-based sentence boundary disambiguation, so "Dr. Curie won
in 1903." stays one sentence). Sentences with nothing to check are dropped: questions,
pleasantries ("Sure!", "I hope this helps."), and short sentences with no name or number.
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_PLEASANTRY = re.compile(
    r"^(sure|certainly|of course|absolutely|great question|i hope (this|that) helps|let me know|"
    r"feel free|thanks|thank you|here (is|are)|i'?m (happy|glad)|happy to help|good luck)\b",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def _segmenter() -> object:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (pysbd), stripped, empty ones removed."""
    if not text.strip():
        return []
    return [s.strip() for s in _segmenter().segment(text) if s.strip()]  # type: ignore[attr-defined]


def checkable(sentence: str) -> bool:
    """Whether a sentence states something a knowledge base could support or refute.

    Example:
        >>> [checkable(s) for s in ["Sure!", "I hope this helps.", "Curie won in 1903.", "Why?"]]
        [False, False, True, False]
    """
    s = sentence.strip()
    if s.endswith("?") or _PLEASANTRY.match(s):
        return False
    words = _WORD.findall(s)
    has_name = any(w[0].isupper() for w in words[1:])
    has_number = any(ch.isdigit() for ch in s)
    return (len(words) >= 3 and (has_name or has_number)) or len(words) >= 6


def split_claims(text: str) -> list[str]:
    """The checkable sentences of ``text``, in order.

    Example:
        >>> split_claims("Sure! Marie Curie was born in Warsaw in 1867. I hope this helps.")
        ['Marie Curie was born in Warsaw in 1867.']
    """
    return [s for s in sentences(text) if checkable(s)]
