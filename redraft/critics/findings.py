"""What each failed critique found, as typed :class:`~redraft.agents.prompts.Finding` objects.

Critiques carry their evidence as JSON (so every store and checkpointer keeps it); this module is
the one place that reads it back into findings for the revise turn and the evasion check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redraft.critics.base import Critique, EvidencePassage, Finding
from redraft.critics.bci import KIND_ADVICE, sentence_of
from redraft.provenance.format import CORPUS_KINDS


def _passages(rows: object) -> tuple[EvidencePassage, ...]:
    if not isinstance(rows, list):
        return ()
    return tuple(
        EvidencePassage(title=str(p.get("title") or ""), text=str(p["text"]))
        for p in rows
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def findings(critique: Critique, draft: str) -> list[Finding]:
    """The problems one critique found in ``draft``; empty when it did not fail the draft.

    BCI critiques give one finding per flagged span (the draft's sentence, the span, its corpus
    kind's advice); factuality critiques one per unsupported claim with every passage it was
    judged against; any other failing critic one finding carrying its feedback.

    Example:
        >>> c = Critique(critic="factuality", passed=False, evidence=({"claim": "Curie was born in Paris.",
        ...     "supported": False, "evidence": [{"title": "Marie Curie", "text": "Born in Warsaw."}]},))
        >>> [(f.kind, f.claim, f.passages[0].text) for f in findings(c, "Curie was born in Paris.")]
        [('unsupported', 'Curie was born in Paris.', 'Born in Warsaw.')]
    """
    if critique.passed is not False:
        return []
    out: list[Finding] = []
    for row in critique.evidence:
        if row.get("flagged") is True and isinstance(row.get("text"), str):
            kind = row.get("kind")
            kind = kind if isinstance(kind, str) and kind in CORPUS_KINDS else "other"
            quote = str(row["text"])
            # A false claim is tracked as the corpus states it, never as a sentence of the draft:
            # a later revision is judged against what was false, not against its own words.
            own = row.get("claim")
            out.append(
                Finding(
                    critic=critique.critic,
                    kind=kind,
                    claim=own if isinstance(own, str) and own else sentence_of(draft, quote),
                    quote=quote.strip(),
                    advice=KIND_ADVICE[kind],
                )
            )
        elif row.get("supported") is False and isinstance(row.get("claim"), str) and row.get("flagged") is not False:
            # A claim the knowledge base has not enough evidence for is no finding (unless the
            # critic was told to fail those: then it is flagged like a refuted one).
            out.append(
                Finding(
                    critic=critique.critic,
                    kind="unsupported",
                    claim=str(row["claim"]),
                    passages=_passages(row.get("evidence")),
                    advice="Correct it from the evidence, or remove it.",
                )
            )
    if not out:  # a critic with no structured evidence (self-check, oracle, human): its words
        out.append(Finding(critic=critique.critic, kind="check", feedback=critique.feedback))
    return out


def all_findings(critiques: Iterable[Critique], draft: str) -> list[Finding]:
    """Every failed critique's findings, in critic order."""
    return [f for c in critiques for f in findings(c, draft)]


def claims_of(found: Sequence[Finding]) -> list[Finding]:
    """The findings that name a claim the draft states, whose fix is a change of meaning. Not
    copyrighted text, where a paraphrase is the fix."""
    return [f for f in found if f.claim and f.kind != "copyrighted" and f.kind in ("unsupported", *CORPUS_KINDS)]


def flagged_so_far(rounds: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Every finding of every round's failed critiques, oldest first, each claim once: what a
    revision is judged against (a claim flagged in round 1 that comes back in round 3 is judged
    in round 3, not forgotten because round 2 dropped it).

    Example:
        >>> fail = {"critic": "factuality", "passed": False, "evidence": [{"claim": "Curie was born in Paris.",
        ...         "supported": False}]}
        >>> rounds = [{"draft": "Curie was born in Paris.", "critiques": [fail]},
        ...           {"draft": "Not sure.", "critiques": [{"critic": "factuality", "passed": True}]},
        ...           {"draft": "Curie was born in Paris.", "critiques": [fail]}]
        >>> [f.claim for f in flagged_so_far(rounds)]
        ['Curie was born in Paris.']
    """
    out: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    for r in rounds:
        failed = [Critique.model_validate(c) for c in r["critiques"] if c.get("passed") is False]
        for f in all_findings(failed, r["draft"]):
            key = (f.critic, f.kind, f.claim or f.feedback or "")
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out
