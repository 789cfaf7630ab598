"""FActScore-style factuality critic: claims → evidence from a local KB → verification → score."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.factuality.claims import split_claims
from redraft.critics.factuality.kb import KnowledgeBase
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
        threshold: minimum supported share to pass.
        k: passages retrieved per claim.
        support_threshold: P(supported) above which a claim counts as supported.
        gamma: FActScore's optional length penalty.
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
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold must be in [0, 1], got {threshold}")
        self.kb, self.verifier = kb, verifier if verifier is not None else default_verifier()
        self.threshold, self.k, self.support_threshold, self.gamma = threshold, k, support_threshold, gamma
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "verifier": self.verifier.name,
            "threshold": self.threshold,
            "k": self.k,
            "support_threshold": self.support_threshold,
            "gamma": self.gamma,
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
            row: dict[str, JsonValue] = {
                "claim": claim,
                "p_supported": round(v.p_supported, 4),
                "supported": v.p_supported >= self.support_threshold,
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
        score = factscore(supported, len(rows), self.gamma)
        lines = [f"{supported} of {len(rows)} claims are supported by the knowledge base ({score:.0%})."]
        for r in rows:
            if not r["supported"]:
                ev = r["evidence"]
                best = ev[0] if isinstance(ev, list) and ev else None
                lines.append(f'- Unsupported: "{r["claim"]}"')
                if r.get("window"):
                    lines.append(f'  Best evidence: "{r["window"]}"')
                elif isinstance(best, dict):
                    lines.append(f'  Best evidence [{best["title"]}]: "{best["text"]}"')
        if score < self.threshold:
            lines.append("Correct or remove the unsupported claims, using the evidence.")
        return Critique(
            critic=self.name,
            passed=score >= self.threshold,
            score=score,
            feedback="\n".join(lines),
            evidence=tuple(rows),
            latency_s=latency,
        )
