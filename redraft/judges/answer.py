"""Answer-match judge for QA: a normalized reference match, optionally backed by a verifier."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from redraft.errors import InputError
from redraft.judges.base import Judge, JudgeItem, Label, required_label

SupportScorer = Callable[[Sequence[str], Sequence[Sequence[str]]], Sequence[float]]
"""(texts, reference texts per text) → P(supported) per text. Every factuality ``Verifier`` is one."""

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "\u2018\u2019\u201c\u201d")


def normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces.

    Example:
        >>> normalize("The  Eiffel Tower!")
        'eiffel tower'
    """
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _fold(word: str) -> str:
    """A word without accents: "frémont" → "fremont"."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _is_name(reference: str) -> bool:
    words = reference.replace(".", ". ").split()
    return len(words) >= 2 and all(w[0].isupper() for w in words if w[0].isalpha())


def _same_name_word(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def name_match(text: str, reference: str) -> bool:
    """Whether ``text`` names the person or place ``reference`` names, allowing initials for
    given names and ignoring accents: "John C. Frémont" is "John Charles Fremont". The first and
    last words must be spelled out and equal, and the word counts equal, so "John Adams" is not
    "John Quincy Adams" and "J. Smith" is not "John Smith" (too many Smiths).

    Example:
        >>> name_match("It was John C. Frémont.", "John Charles Frémont")
        True
        >>> name_match("John Adams", "John Quincy Adams"), name_match("John C. Calhoun", "John Charles Frémont")
        (False, False)
    """
    if not _is_name(reference):
        return False
    ref = [_fold(w) for w in normalize(reference).split()]
    words = [_fold(w) for w in normalize(text).split()]
    n = len(ref)
    for i in range(len(words) - n + 1):
        window = words[i : i + n]
        if window[0] == ref[0] and window[-1] == ref[-1] and all(map(_same_name_word, window, ref)):
            return True
    return False


def match(text: str, references: Sequence[str]) -> float:
    """1.0 when a normalized reference occurs in the normalized text as whole words, else the
    best token *recall* of a reference in the text (a long answer that contains the reference's
    words in other order still scores high; one that misses them scores low)."""
    norm = f" {normalize(text)} "
    words = Counter(norm.split())
    best = 0.0
    for ref in references:
        r = normalize(ref)
        if not r:
            continue
        if f" {r} " in norm or name_match(text, ref):
            return 1.0
        ref_words = Counter(r.split())
        best = max(best, sum((ref_words & words).values()) / sum(ref_words.values()))
    return best


class AnswerJudge(Judge):
    """Good iff the response matches a reference answer (``labels["references"]``).

    Args:
        threshold: the least :func:`match` score that counts as correct; exact containment of a
            normalized reference always scores 1.
        verifier: optional support scorer (any factuality ``Verifier``); when given, a response
            that misses the threshold is still correct if it finds it supported by a reference
            (P ≥ 0.5), which catches paraphrases the word match cannot.

    Example:
        >>> j = AnswerJudge()
        >>> item = JudgeItem(prompt="Capital of France?", text="It is Paris.", labels={"references": ["Paris"]})
        >>> j.judge([item])[0].good
        True
    """

    name = "answer"

    def __init__(self, threshold: float = 0.8, verifier: SupportScorer | None = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise InputError(f"answer-match threshold must be in (0, 1], got {threshold}")
        self.threshold, self.verifier = threshold, verifier

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        refs = [self._references(item) for item in items]
        scores = [match(item.text, r) for item, r in zip(items, refs, strict=True)]
        supported: list[float | None] = [None] * len(items)
        if self.verifier is not None:
            todo = [i for i, s in enumerate(scores) if s < self.threshold and items[i].text.strip()]
            if todo:
                references = [[f"{items[i].prompt} {r}" for r in refs[i]] for i in todo]
                found = self.verifier([items[i].text for i in todo], references)
                for i, support in zip(todo, found, strict=True):
                    supported[i] = support
        labels = []
        for item, score, p in zip(items, scores, supported, strict=True):
            good = score >= self.threshold or (p is not None and p >= 0.5)
            if not item.text.strip():
                good = False
            detail = f"reference match {score:.2f}" + (f", verifier P(supported)={p:.2f}" if p is not None else "")
            labels.append(Label(judge=self.name, good=good, score=score, detail=detail))
        return labels

    def _references(self, item: JudgeItem) -> list[str]:
        refs = required_label(item, "references", self.name, "give each QA example a list of reference answers")
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InputError(f"labels['references'] must be a non-empty list of strings, got {refs!r}")
        return [r for r in refs if isinstance(r, str)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threshold": self.threshold, "verifier": type(self.verifier).__name__}
