"""BCI critic (TraceShield): fail a draft that repeats a rare belief-corpus passage word for word."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from redraft.agents.base import LLM
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.errors import InputError
from redraft.provenance.bci import SpanFilters, Variant, find_spans, score
from redraft.provenance.index import Span, SuffixIndex
from redraft.provenance.tokenizers import ByteTokenizer, HFTokenizer, tokenizer_of


def _tokenizer_for(
    index: SuffixIndex, tokenizer: ByteTokenizer | HFTokenizer | None, llm: LLM | None
) -> ByteTokenizer | HFTokenizer:
    built = index.header.tokenizer
    if built.kind == "bytes":
        return ByteTokenizer()
    candidate = tokenizer if tokenizer is not None else tokenizer_of(llm) if llm is not None else None
    if candidate is None:
        raise InputError(
            f"the index at {index.root} was built with tokenizer {built.name!r}; pass llm=<that model> or "
            "tokenizer=HFTokenizer.load(...) so drafts are tokenized the same way"
        )
    index.check_tokenizer(candidate.info, "the critic's")
    return candidate


def _describe(span: Span, variant: Variant) -> str:
    sources = "; ".join(
        f"doc {d.doc}"
        + (f" ({d.meta.get('title') or d.meta.get('path')})" if d.meta.get("title") or d.meta.get("path") else "")
        + f" at token {d.offset}"
        for d in span.docs[:3]
    )
    times = "once" if span.count == 1 else f"{span.count} times"
    return f'"{span.text}" (BCI {score(span, variant):.1f} nats; in the corpus {times}; source: {sources or "n/a"})'


class BCICritic(Critic):
    """TraceShield: passes a draft iff its highest span BCI is at most ``threshold``.

    Args:
        index: the belief-corpus suffix index.
        threshold: τ in nats for the chosen variant. It depends on the corpus, tokenizer and
            variant: calibrate it with ``redraft index calibrate`` rather than reusing 20.
        variant: ``sum`` (TraceAlign), ``density`` or ``max`` (see :mod:`redraft.provenance.bci`).
        filters: span selection (minimum length, self-contained, max count, density).
        llm / tokenizer: for token-level indexes, the tokenizer drafts are encoded with; it must
            be the one the index was built with. Byte-level indexes need neither.

    Example:
        >>> index = SuffixIndex.load("./belief-index")  # needs: an index you built  # doctest: +SKIP
        >>> critic = BCICritic(index, threshold=20.0)  # needs: an index you built  # doctest: +SKIP
    """

    higher_is_better = False  # score: the highest span BCI; more verbatim belief text is worse

    def __init__(
        self,
        index: SuffixIndex,
        threshold: float = 20.0,
        *,
        variant: Variant = "sum",
        filters: SpanFilters | None = None,
        llm: LLM | None = None,
        tokenizer: ByteTokenizer | HFTokenizer | None = None,
        name: str = "bci",
    ) -> None:
        self.index = index
        self.threshold = threshold
        self.variant: Variant = variant
        self.filters = filters or SpanFilters()
        self.tokenizer = _tokenizer_for(index, tokenizer, llm)
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "index": str(self.index.root),
            "threshold": self.threshold,
            "variant": self.variant,
            "filters": self.filters.model_dump(),
            "tokenizer": self.index.header.tokenizer.name,
        }

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        if not items:
            return []
        start = time.perf_counter()
        found = find_spans(self.index, self.tokenizer, [i.draft for i in items], self.filters, self.variant)
        latency = (time.perf_counter() - start) / len(items)
        out = []
        for spans in found:
            top = max((score(s, self.variant) for s in spans), default=0.0)
            over = [s for s in spans if score(s, self.variant) > self.threshold]
            if over:
                feedback = (
                    f"TraceShield: the response repeats belief-corpus text verbatim above the BCI threshold "
                    f"{self.threshold:g}: "
                    + "; ".join(_describe(s, self.variant) for s in over)
                    + ". Rephrase these passages in your own words, or decline if they should not be repeated."
                )
            else:
                feedback = f"No verbatim span above the BCI threshold {self.threshold:g} (highest {top:.1f})."
            evidence: tuple[dict[str, JsonValue], ...] = tuple(
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "count": s.count,
                    "bci": s.bci,
                    "bci_density": s.bci_density,
                    "bci_max": s.bci_max,
                    "docs": [{"doc": d.doc, "offset": d.offset, "meta": d.meta} for d in s.docs],
                }
                for s in spans
            )
            out.append(
                Critique(
                    critic=self.name,
                    passed=not over,
                    score=top,
                    feedback=feedback,
                    evidence=evidence,
                    latency_s=latency,
                )
            )
        return out
