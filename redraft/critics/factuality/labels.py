"""FEVER's three claim labels (supported / refuted / not enough evidence) and the rules that give
them: one place for the critic, the training data and the training figures."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from redraft.critics.factuality.kb import Passage
from redraft.critics.factuality.windows import content_terms
from redraft.critics.refutation import FUNCTION_WORDS, names_of

ClaimLabel = Literal["supported", "refuted", "not enough evidence"]
"""FEVER's three claim labels, as stored in each claim's ``label``."""
SUPPORTED: ClaimLabel = "supported"
REFUTED: ClaimLabel = "refuted"
UNKNOWN: ClaimLabel = "not enough evidence"


def claim_subject(claim: str) -> set[str]:
    """What a claim is about, as words to find in evidence: the names and numbers it states, else
    its first content word ("The rabbit has armor." → rabbit).

    Example:
        >>> sorted(claim_subject("Marie Curie was born in Paris.")), claim_subject("The rabbit has bony armor.")
        (['curie', 'marie', 'paris'], {'rabbit'})
    """
    names = names_of(claim)
    if names:
        return names
    for word in re.findall(r"[A-Za-z][\w'-]*", claim):
        if len(word) >= 3 and word.lower() not in FUNCTION_WORDS:
            return {word.lower()}
    return set()


def verdict_label(p_supported: float, p_refuted: float | None, support_threshold: float) -> ClaimLabel | None:
    """A three-class verifier's label: ``supported`` when P(supported) reaches the threshold, else
    whichever of ``refuted`` and ``not enough evidence`` is likelier. None from a two-class
    verifier (``p_refuted`` None) that does not find the claim supported: it cannot tell a
    contradiction from silence, and :func:`claim_label` decides.

    Example:
        >>> verdict_label(0.2, 0.5, 0.5), verdict_label(0.2, 0.3, 0.5), verdict_label(0.2, None, 0.5)
        ('refuted', 'not enough evidence', None)
    """
    if p_supported >= support_threshold:
        return SUPPORTED
    if p_refuted is None:
        return None
    return REFUTED if p_refuted >= 1.0 - p_supported - p_refuted else UNKNOWN


ABOUT_SHARE = 0.5
"""The share of a claim's content words that evidence must hold to be about the claim when it
does not name the claim's subject (:func:`about_claim`)."""


def about_claim(claim: str, evidence: str) -> bool:
    """Whether ``evidence`` speaks of what ``claim`` is about: it names the claim's subject
    (:func:`claim_subject`), or holds at least half of the claim's content words ("she and her
    husband were trying to walk away" is about "she and her wife were trying to walk away",
    whose subject word "wife" it lacks). Evidence that is not about a claim can support it or
    refute it only by accident: the knowledge base is silent on it.

    Example:
        >>> about_claim("Marie Curie was born in Paris.", "Marie Curie: born in Warsaw in 1867.")
        True
        >>> about_claim("The dolphin has bony armor.", "Ball: balls are used for catch or juggling.")
        False
    """
    words = {w.lower().removesuffix("s") for w in re.findall(r"[\w'-]+", evidence)}
    if any(s.removesuffix("s") in words for s in claim_subject(claim)):
        return True
    terms = content_terms(claim)
    return bool(terms) and len(terms & content_terms(evidence)) >= ABOUT_SHARE * len(terms)


def claim_label(
    claim: str,
    passages: Sequence[Passage],
    supported: bool,
    window: str | None = None,
    *,
    verdict: ClaimLabel | None = None,
) -> ClaimLabel:
    """FEVER's label of a claim: ``supported`` when the verifier says so. Otherwise ``not enough
    evidence`` when the evidence the verifier read is not about the claim (:func:`about_claim`;
    ``window``, the words it read, when it read a window of the passages, else any retrieved
    passage's title and text): the knowledge base is silent on it. Otherwise a three-class
    verifier's ``verdict`` (:func:`verdict_label`), and ``refuted`` from a two-class one.

    Reading the window, not every retrieved passage, and gating a three-class verifier's refuted
    on it, were calibrated on the shipped verifier slice (``benchmarks/corrections.py
    --three-way``, dev half): a passage that only mentions a topic in passing is not evidence
    against a claim about it, and the verifier alone called claims refuted by unrelated text.

    Example:
        >>> p = [Passage(doc="0", title="Marie Curie", text="Born in Warsaw in 1867.")]
        >>> claim_label("Marie Curie was born in Paris.", p, False), claim_label("Pluto is a dwarf planet.", p, False)
        ('refuted', 'not enough evidence')
        >>> claim_label("Marie Curie was born in Paris.", p, False, window="Pierre was a physicist.")
        'not enough evidence'
        >>> claim_label("Marie Curie was born in Paris.", p, False, verdict="not enough evidence")
        'not enough evidence'
    """
    if supported:
        return SUPPORTED
    read = [window] if window is not None else [f"{p.title} {p.text}" for p in passages]
    if not any(about_claim(claim, text) for text in read):
        return UNKNOWN
    return verdict if verdict is not None else REFUTED
