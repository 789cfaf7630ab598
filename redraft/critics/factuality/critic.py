"""FActScore-style factuality critic: claims → evidence from a local KB → verification → score."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import JsonValue

from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.factuality.claims import split_claims
from redraft.critics.factuality.kb import KnowledgeBase
from redraft.critics.factuality.labels import REFUTED, SUPPORTED, UNKNOWN, claim_label, verdict_label
from redraft.critics.factuality.verifiers import Verifier, default_verifier
from redraft.errors import InputError


def factscore(supported: int, total: int, gamma: float | None = None) -> float:
    """Share of supported claims, times FActScore's length penalty when ``gamma`` is set:
    1 if total > γ, else exp(1 − γ/total).

    Example:
        >>> factscore(3, 4), round(factscore(3, 4, gamma=10), 4)
        (0.75, 0.1673)
    """
    if total == 0:
        raise ValueError("no claims to score")
    score = supported / total
    if gamma is not None and total <= gamma:
        score *= math.exp(1 - gamma / total)
    return score


class FactualityCritic(Critic):
    """Passes a draft iff the share of its claims the KB supports is at least ``threshold``.

    A draft with no checkable claim gets ``passed=None`` (not applicable).

    Args:
        kb: where evidence comes from (``KnowledgeBase.default()`` or ``from_jsonl``).
        verifier: a :class:`Verifier`; by default :func:`default_verifier`, the MiniLM
            cross-encoder shipped with redraft (``LexicalVerifier()`` is the baseline).
        threshold: the least share of claims that must not count against the draft for it to pass.
        k: passages retrieved per claim.
        support_threshold: P(supported) above which a claim counts as supported.
        gamma: FActScore's optional length penalty.
        unknown: what a claim the evidence does not cover does: ``pass`` (only refuted claims
            count against a draft) or ``fail``.

    Every claim gets one of FEVER's three labels (:func:`claim_label`): ``supported`` (the
    verifier's P(supported) reaches ``support_threshold``), ``refuted`` (it does not, and the
    evidence it read is about the claim, :func:`about_claim`: it speaks, and not for the claim;
    a three-class verifier may still call it not enough evidence), or ``not enough evidence``
    (the evidence is about something else: the knowledge base does not cover the claim, which
    says nothing about whether it is true). The score stays FActScore's share of
    supported claims; whether the draft passes follows ``unknown``.
    """

    higher_is_better = True  # score: the share of claims the KB supports

    def __init__(
        self,
        kb: KnowledgeBase,
        verifier: Verifier | None = None,
        *,
        threshold: float = 0.8,
        k: int = 3,
        support_threshold: float = 0.5,
        gamma: float | None = None,
        name: str = "factuality",
        unknown: Literal["pass", "fail"] = "pass",
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {threshold}")
        self.kb, self.verifier = kb, verifier if verifier is not None else default_verifier()
        self.threshold, self.k, self.support_threshold, self.gamma = threshold, k, support_threshold, gamma
        self.name = name
        self.unknown = unknown

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "verifier": self.verifier.name,
            "threshold": self.threshold,
            "k": self.k,
            "support_threshold": self.support_threshold,
            "gamma": self.gamma,
            "unknown": self.unknown,
        }

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        if not items:
            return []
        start = time.perf_counter()
        claims = [split_claims(i.draft) for i in items]
        flat = [(b, c) for b, cs in enumerate(claims) for c in cs]
        # The prompt names the topic ("a biography of Marie Curie"), which claims often omit ("She won...").
        evidence = self.kb.search([f"{c} {items[b].prompt}" for b, c in flat], k=self.k)
        verdicts = self.verifier.verify([c for _, c in flat], evidence)
        latency = (time.perf_counter() - start) / len(items)
        per_item: list[list[dict[str, JsonValue]]] = [[] for _ in items]
        for (b, claim), passages, v in zip(flat, evidence, verdicts, strict=True):
            label = claim_label(
                claim,
                passages,
                v.p_supported >= self.support_threshold,
                v.premise,
                verdict=verdict_label(v.p_supported, v.p_refuted, self.support_threshold),
            )
            row: dict[str, JsonValue] = {
                "claim": claim,
                "p_supported": round(v.p_supported, 4),
                # A three-class verifier's P(refuted); P(not enough evidence) is the rest.
                **({"p_refuted": round(v.p_refuted, 4)} if v.p_refuted is not None else {}),
                "supported": label == SUPPORTED,
                "label": label,
                # Whether this claim counts against the draft: refuted, or unknown when asked to.
                "flagged": label == REFUTED or (label == UNKNOWN and self.unknown == "fail"),
                "truncated": v.truncated,
                # Every passage the claim was judged against, in full: the grounded and reanswer
                # revisions quote them to the reviser.
                "evidence": [p.as_evidence() for p in passages],
            }
            if v.premise is not None:
                row["window"] = v.premise  # the words the verifier actually read
            per_item[b].append(row)
        return [self._critique(rows, latency) for rows in per_item]

    def _critique(self, rows: list[dict[str, JsonValue]], latency: float) -> Critique:
        if not rows:
            return Critique(critic=self.name, passed=None, feedback="No checkable claim.", latency_s=latency)
        supported = sum(bool(r["supported"]) for r in rows)
        refuted = sum(r["label"] == REFUTED for r in rows)
        unknown = len(rows) - supported - refuted
        score = factscore(supported, len(rows), self.gamma)
        ok = len(rows) - sum(bool(r["flagged"]) for r in rows)
        passed = ok / len(rows) >= self.threshold
        lines = [
            f"{supported} of {len(rows)} claims are supported by the knowledge base ({score:.0%}), {refuted} "
            f"refuted by it, and {unknown} it has not enough evidence for"
            + (" (those do not count against the draft)." if self.unknown == "pass" else ".")
        ]
        for r in rows:
            if r["label"] == SUPPORTED:
                continue
            ev = r["evidence"]
            best = ev[0] if isinstance(ev, list) and ev else None
            lines.append(f'- {"Refuted" if r["label"] == REFUTED else "Not enough evidence"}: "{r["claim"]}"')
            if r["label"] == UNKNOWN:
                continue
            if r.get("window"):
                lines.append(f'  Best evidence: "{r["window"]}"')
            elif isinstance(best, dict):
                lines.append(f'  Best evidence [{best["title"]}]: "{best["text"]}"')
        if not passed:
            lines.append("Correct or remove the refuted claims, using the evidence.")
        return Critique(
            critic=self.name,
            passed=passed,
            score=score,
            feedback="\n".join(lines),
            evidence=tuple(rows),
            latency_s=latency,
        )
