"""The evasion check: does a revision still assert a claim a critic flagged?

A critic falling silent is not a fix. Asked to fix "Tunis is a city in Nepal.", a small model
writes "Tunis is a city located in Nepal.": the verbatim detector passes it and the claim stands.
This check reads the meaning instead. For each sentence of the revision it asks the shipped
verifier whether that sentence entails the flagged claim (and records the reverse direction too),
after setting aside sentences that refute or negate it (:mod:`redraft.critics.refutation`).

Measured on the 42 hand-labelled pairs in ``tests/critics/data/evasion_pairs.jsonl`` (20
restatements, 22 fixes): forward entailment ≥ 0.5 with the refutation and negation rules scores
38/42 (0.905), catching 16 of 20 restatements with 0 of 22 fixes taken for one. The four it
misses swap a word for a synonym ("invented" → "created", "is a bank" → "operates in the banking
industry"): the verifier learned near-verbatim support. Adding the reverse direction, as either
an alternative or a requirement, did worse on the same pairs (it calls true statements about the
same subject restatements), so it is recorded but does not decide.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from redraft.critics.factuality.claims import sentences
from redraft.critics.factuality.verifiers import Verifier, default_verifier
from redraft.critics.refutation import drops_a_name, has_negation, refutation_cue


@dataclass(frozen=True, slots=True)
class Assertion:
    """Whether a text asserts a claim, and why."""

    asserted: bool
    p_forward: float
    """The highest P(claim | sentence) over the sentences that neither refute nor negate it."""
    p_backward: float
    """P(sentence | claim) for that same sentence (recorded, not decisive)."""
    sentence: str
    """The sentence that asserts it most strongly ("" when none was left to read)."""

    def as_json(self) -> dict[str, object]:
        return {
            "asserted": self.asserted,
            "p_forward": round(self.p_forward, 4),
            "p_backward": round(self.p_backward, 4),
            "sentence": self.sentence,
        }


def _sets_aside(sentence: str, neighbours: Sequence[str], claim: str) -> bool:
    """A sentence that refutes (its own or a neighbour's refutation phrase), negates the claim (a
    negation the claim does not have) or leaves out a name or number it states does not assert it."""
    if any(refutation_cue(s) for s in (sentence, *neighbours)):
        return True
    if drops_a_name(sentence, claim):
        return True
    return has_negation(sentence) and not has_negation(claim)


class EvasionCheck:
    """Judges whether texts still assert flagged claims.

    Args:
        verifier: the entailment model (default: the shipped verifier).
        threshold: P(claim | sentence) at or above which a sentence asserts the claim.

    Example:
        >>> check = EvasionCheck()  # the shipped verifier loads on first use (CPU, about a second)
        >>> pair = ("Tunis is a city in Nepal.", "Tunis is a city located in Nepal.")
        >>> [a.asserted for a in check.asserts([pair, (pair[0], "It is false that " + pair[0])])]
        [True, False]
    """

    def __init__(self, verifier: Verifier | None = None, *, threshold: float = 0.5) -> None:
        self._verifier = verifier
        self.threshold = threshold

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:  # loaded on first use: most runs never revise
            self._verifier = default_verifier()
        return self._verifier

    def asserts(self, pairs: Sequence[tuple[str, str]]) -> list[Assertion]:
        """For each ``(claim, text)``: whether ``text`` still asserts ``claim``. One batch of
        verifier calls for all pairs."""
        owners: list[int] = []
        kept: list[str] = []
        for i, (claim, text) in enumerate(pairs):
            parts = sentences(text)
            for j, s in enumerate(parts):
                if not _sets_aside(s, parts[max(0, j - 1) : j] + parts[j + 1 : j + 2], claim):
                    owners.append(i)
                    kept.append(s)
        claims = [pairs[i][0] for i in owners]
        forward = self.verifier(claims, [[s] for s in kept]) if kept else []
        backward = self.verifier(kept, [[c] for c in claims]) if kept else []
        best: list[tuple[float, float, str]] = [(0.0, 0.0, "") for _ in pairs]
        for i, s, f, b in zip(owners, kept, forward, backward, strict=True):
            if f > best[i][0]:
                best[i] = (f, b, s)
        return [Assertion(f >= self.threshold, f, b, s) for f, b, s in best]

    def asserts_each(self, claims: Sequence[Sequence[str]], texts: Sequence[str]) -> list[list[Assertion]]:
        """For each text, whether it still asserts each of its claims (``claims[i]`` are the
        claims of ``texts[i]``), in one :meth:`asserts` batch regrouped by text.

        Example:
            >>> check = EvasionCheck()
            >>> [[a.asserted for a in row] for row in check.asserts_each(
            ...     [["Tunis is a city in Nepal."], []], ["Tunis is a city located in Nepal.", "Hello."])]
            [[True], []]
        """
        flat = [(claim, text) for group, text in zip(claims, texts, strict=True) for claim in group]
        results = iter(self.asserts(flat) if flat else [])
        return [[next(results) for _ in group] for group in claims]


@functools.cache
def shared_evasion_check() -> EvasionCheck:
    """The process's one evasion check on the shipped verifier, shared by the loop and the BCI
    critic (and every experiment cell): the verifier loads once per process, on first use."""
    return EvasionCheck()
