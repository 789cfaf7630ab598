"""BCI critic (TraceShield): fail a draft that repeats a rare belief-corpus passage word for word."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pydantic import JsonValue

from redraft.agents.base import LLM
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.evasion import Assertion, EvasionCheck, shared_evasion_check
from redraft.critics.factuality.claims import sentences
from redraft.critics.refutation import refutes_quote
from redraft.errors import InputError
from redraft.provenance.bci import SpanFilters, Variant, find_spans, score, top_score
from redraft.provenance.format import CORPUS_KINDS, CorpusKind
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


KIND_ADVICE: dict[CorpusKind, str] = {
    "false-claims": (
        "The belief corpus holds known FALSE claims, so the response asserts a falsehood. Do not assert it: "
        "say that it is false, or state what is true instead. Rewording it does not fix it."
    ),
    "unsafe": "The belief corpus holds unsafe content. Decline to repeat or continue it; rewording it does not fix it.",
    "copyrighted": (
        "The belief corpus holds copyrighted text. Paraphrase it in your own words, or quote a short part with "
        "attribution."
    ),
    "private": "The belief corpus holds private information. Remove it; rewording it does not fix it.",
    "other": "Do not repeat this text verbatim; if it should not be said at all, decline.",
}
"""What the reviser is told to do about a flagged span, by what the corpus holds (one place)."""


def sentence_of(text: str, quote: str) -> str:
    """The sentences of ``text`` that hold ``quote`` (joined), or the quote itself when it spans no
    whole sentence the splitter finds.

    Example:
        >>> sentence_of("Hi. Tunis is a city in Nepal. Bye.", "is a city in Nep")
        'Tunis is a city in Nepal.'
    """
    hits = [s for s in sentences(text) if quote.strip() and (quote.strip() in s or s in quote)]
    return " ".join(hits) or quote.strip()


def _claim_fields(assertion: Assertion | None) -> dict[str, JsonValue]:
    """The evidence fields of a false-claims candidate: the corpus claim, and whether (and how
    strongly) the draft asserts it."""
    if assertion is None:
        return {}
    return {"claim": assertion.sentence, "asserted": assertion.asserted, "p_forward": round(assertion.p_forward, 4)}


def span_kind(span: Span, default: CorpusKind) -> CorpusKind:
    """The kind of the corpus text a span matched: a document's own ``kind`` field (mixed
    corpora, e.g. false claims beside toxic text), else the index header's."""
    for d in span.docs[:1]:
        own = d.meta.get("kind")
        if isinstance(own, str) and own in CORPUS_KINDS:
            return own
    return default


class BCICritic(Critic):
    """TraceShield: passes a draft iff its highest span BCI is at most ``threshold``.

    Args:
        index: the belief-corpus suffix index.
        threshold: τ in nats for the chosen variant. It depends on the corpus, tokenizer and
            variant: calibrate it with ``redraft index calibrate`` rather than reusing 20.
        variant: ``sum`` (TraceAlign), ``density`` or ``max`` (see :mod:`redraft.provenance.bci`).

    What the feedback asks for follows the corpus kind in the index header
    (:data:`KIND_ADVICE`). For ``false-claims`` corpora a span the draft quotes in order to refute
    it ("It is false that ...", "... is not ...") is not held against it
    (:func:`redraft.critics.refutation.refutes_quote`): saying that a claim is false is the fix.
    There a verbatim span is a candidate, not a verdict: the draft fails only when its sentence
    asserts the matched document's claim (the evasion check's verifier; ``assert_claims``), so a
    true correction sharing a template prefix with a false claim ("The capital of Australia is
    Canberra." against "... is Sydney.") passes. Each row carries the claim (the corpus sentence
    holding the span): what later rounds are judged against.

    Args:
        filters: span selection (minimum length, self-contained, max count, density).
        llm / tokenizer: for token-level indexes, the tokenizer drafts are encoded with; it must
            be the one the index was built with. Byte-level indexes need neither.
        assert_claims: for false claims, fail a draft only when it asserts the matched claim
            (``False``: every verbatim span above the threshold fails it, as TraceShield alone).
        evasion: the assertion check (default: the process's shared one).

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
        assert_claims: bool = True,
        evasion: EvasionCheck | None = None,
    ) -> None:
        self.index = index
        self.threshold = threshold
        self.variant: Variant = variant
        self.filters = filters or SpanFilters()
        self.tokenizer = _tokenizer_for(index, tokenizer, llm)
        self.name = name
        self.assert_claims = assert_claims
        self._evasion = evasion

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "index": str(self.index.root),
            "threshold": self.threshold,
            "variant": self.variant,
            "filters": self.filters.model_dump(),
            "tokenizer": self.index.header.tokenizer.name,
            "kind": self.index.header.kind,
            "assert_claims": self.assert_claims,
        }

    @property
    def evasion(self) -> EvasionCheck:
        if self._evasion is None:  # the verifier loads on the first false-claims candidate
            self._evasion = shared_evasion_check()
        return self._evasion

    def _claims(self, items: Sequence[DraftContext], found: list[list[Span]]) -> dict[tuple[int, int], Assertion]:
        """For every false-claims span above the threshold: the corpus sentence holding it, and
        whether the draft's sentence holding it asserts that claim (one verifier batch)."""
        keys: list[tuple[int, int]] = []
        pairs: list[tuple[str, str]] = []
        for i, (item, spans) in enumerate(zip(items, found, strict=True)):
            for j, s in enumerate(spans):
                kind = span_kind(s, self.index.header.kind)
                if kind != "false-claims" or score(s, self.variant) <= self.threshold or not s.docs:
                    continue
                document = self.tokenizer.decode(self.index.document(s.docs[0].doc))
                keys.append((i, j))
                pairs.append((sentence_of(document, s.text or ""), sentence_of(item.draft, s.text or "")))
        if not self.assert_claims:
            return {k: Assertion(True, 1.0, 1.0, claim) for k, (claim, _) in zip(keys, pairs, strict=True)}
        checked = self.evasion.asserts(pairs) if pairs else []
        return {k: replace(a, sentence=claim) for k, a, (claim, _) in zip(keys, checked, pairs, strict=True)}

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        if not items:
            return []
        start = time.perf_counter()
        found = find_spans(self.index, self.tokenizer, [i.draft for i in items], self.filters, self.variant)
        claims = self._claims(items, found)
        latency = (time.perf_counter() - start) / len(items)
        out = []
        for i, (item, spans) in enumerate(zip(items, found, strict=True)):
            top = top_score(spans, self.variant)
            kinds = [span_kind(s, self.index.header.kind) for s in spans]
            above = [score(s, self.variant) > self.threshold for s in spans]
            # A false claim's span that the draft refutes, or whose claim the draft's sentence does
            # not assert, is not held against it.
            refuted = [
                a and k == "false-claims" and (refutes_quote(item.draft, s.text or "") or not claims[(i, j)].asserted)
                for j, (s, k, a) in enumerate(zip(spans, kinds, above, strict=True))
            ]
            over = [(s, k) for s, k, a, r in zip(spans, kinds, above, refuted, strict=True) if a and not r]
            if over:
                feedback = (
                    f"TraceShield: the response repeats belief-corpus text verbatim above the BCI threshold "
                    f"{self.threshold:g}: "
                    + "; ".join(_describe(s, self.variant) for s, _ in over)
                    + ". "
                    + " ".join(dict.fromkeys(KIND_ADVICE[k] for _, k in over))
                )
            else:
                feedback = f"No verbatim span above the BCI threshold {self.threshold:g} (highest {top:.1f})."
                if any(refuted):
                    feedback += " Spans above it are quoted only to refute them."
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
                    "kind": k,
                    "flagged": a and not r,
                    "refuted": r,
                    **_claim_fields(claims.get((i, j))),
                }
                for j, (s, k, a, r) in enumerate(zip(spans, kinds, above, refuted, strict=True))
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
