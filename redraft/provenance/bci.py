"""BCI: how rare, and so how attributable, a verbatim span of the belief corpus is.

BCI(span) = −Σ_t log P_corpus(t) over the span's tokens, in nats, with
P_corpus(t) = (count(t) + α) / (N + α·V) (add-α smoothing, α = 1 by default). A token the
corpus never contains contributes 0: it is no evidence of provenance, so it can never push a
span over a threshold on its own (the public TraceAlign code gives it −log 1e-9 ≈ 20.7 nats,
above their τ = 20 by itself). Variants: ``sum`` (TraceAlign's), ``density`` (sum per token, which
does not grow with length), ``max`` (the rarest single token).

Spans are selected as in OLMoTrace: maximal verbatim matches, trimmed to be self-contained (whole
words, no sentence boundary inside), at least ``min_len`` tokens, optionally at most
``max_count`` corpus occurrences, and only the ⌈density·L⌉ highest-BCI spans of an L-token text.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from redraft.errors import InputError
from redraft.provenance.index import Span, SuffixIndex
from redraft.provenance.tokenizers import ByteTokenizer, Encoded, HFTokenizer

Variant = Literal["sum", "density", "max"]
_BOUNDARY = re.compile(r"[.!?\n]")


class SpanFilters(BaseModel):
    """Which verbatim spans count (OLMoTrace's filters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_len: int = Field(default=8, ge=1)
    """Minimum span length in tokens (8 bytes is about two short words with the byte tokenizer)."""
    self_contained: bool = True
    """Trim spans to whole words and split them at sentence boundaries ('.', '!', '?', newline)."""
    max_count: int | None = Field(default=None, ge=1)
    """Keep only spans seen at most this many times (TraceAlign uses 3 for reliable attribution)."""
    density: float | None = Field(default=0.05, gt=0.0, le=1.0)
    """Keep the ⌈density·L⌉ highest-BCI spans of an L-token text; None keeps all."""
    max_docs: int = Field(default=10, ge=0)
    """Source documents named per span."""
    alpha: float = Field(default=1.0, ge=0.0)
    """Add-α smoothing of the unigram probabilities."""


def score(span: Span, variant: Variant = "sum") -> float:
    """A span's BCI in the chosen variant."""
    if variant == "sum":
        return span.bci
    if variant == "density":
        return span.bci_density
    return span.bci_max


def top_score(spans: Sequence[Span], variant: Variant = "sum") -> float:
    """A draft's BCI: its highest-scoring span's, 0 without spans (what TraceShield thresholds)."""
    return max((score(s, variant) for s in spans), default=0.0)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch in "_'"


def self_contained(text: str, enc: Encoded, start: int, end: int) -> list[tuple[int, int]]:
    """Token ranges inside ``[start, end)`` that are whole words and hold no inner sentence boundary."""
    cs, ce = enc.starts[start], enc.ends[end - 1]
    pieces, a = [], cs
    for m in _BOUNDARY.finditer(text, cs, ce):
        pieces.append((a, m.end()))
        a = m.end()
    pieces.append((a, ce))
    out = []
    for a, z in pieces:
        if a > 0 and a < len(text) and _is_word(text[a - 1]) and _is_word(text[a]):  # starts mid-word
            while a < z and _is_word(text[a]):
                a += 1
        if z < len(text) and z > 0 and _is_word(text[z - 1]) and _is_word(text[z]):  # ends mid-word
            while z > a and _is_word(text[z - 1]):
                z -= 1
        while a < z and text[a].isspace():
            a += 1
        while z > a and text[z - 1].isspace():
            z -= 1
        if a >= z:
            continue
        # Whole tokens inside [a, z). A token may carry the whitespace before its word (BPE's "Ġword"),
        # so a token starting in the whitespace just before `a` still counts as inside.
        lead = a
        while lead > cs and text[lead - 1].isspace():
            lead -= 1
        t0 = bisect.bisect_right(enc.ends, a, start, end)  # first token reaching into the word
        if t0 < end and enc.starts[t0] < lead:  # it also covers the previous word: not whole
            t0 += 1
        t1 = bisect.bisect_right(enc.ends, z, start, end)
        if t1 > t0:
            out.append((t0, t1))
    return out


def find_spans(
    index: SuffixIndex,
    tokenizer: ByteTokenizer | HFTokenizer,
    texts: Sequence[str],
    filters: SpanFilters | None = None,
    variant: Variant = "sum",
) -> list[list[Span]]:
    """The filtered, attributed verbatim spans of each text, highest BCI first.

    Example:
        >>> import tempfile, pathlib
        >>> from redraft.provenance import build_index
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "Zebras migrate across the Serengeti every July."}\\n')
        >>> _ = build_index([d / "c.jsonl"], d / "idx")
        >>> draft = "Yes: zebras migrate across the Serengeti!"
        >>> [s.text for s in find_spans(SuffixIndex.load(d / "idx"), ByteTokenizer(), [draft])[0]]
        ['migrate across the Serengeti']
    """
    filters = filters or SpanFilters()
    encs = [tokenizer.encode_with_offsets(t) for t in texts]
    raw = index.maximal_ranges([e.ids for e in encs], min_len=filters.min_len)
    ranges: list[list[tuple[int, int]]] = []
    for text, enc, found in zip(texts, encs, raw, strict=True):
        pieces: set[tuple[int, int]] = set()
        for start, end in found:
            cut = self_contained(text, enc, start, end) if filters.self_contained else [(start, end)]
            pieces.update(p for p in cut if p[1] - p[0] >= filters.min_len)
        ranges.append(sorted(pieces))
    # Sources come with the batch (one search for every piece of every text), not one search per
    # kept span afterwards: on one draft that was 12 searches, 60% of the critic's time.
    described = index.spans([e.ids for e in encs], ranges, max_docs=filters.max_docs, alpha=filters.alpha)
    out = []
    for text, enc, spans in zip(texts, encs, described, strict=True):
        kept = [s for s in spans if filters.max_count is None or s.count <= filters.max_count]
        kept.sort(key=lambda s: score(s, variant), reverse=True)
        if filters.density is not None:
            kept = kept[: math.ceil(filters.density * len(enc.ids))]
        out.append(
            [
                dataclasses.replace(
                    s,
                    text=text[enc.starts[s.start] : enc.ends[s.end - 1]].strip(),
                )
                for s in kept
            ]
        )
    return out


class RocPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    threshold: float
    fpr: float
    tpr: float


def roc(safe: Sequence[float], flagged: Sequence[float]) -> list[RocPoint]:
    """ROC of the rule "flag when score > threshold", one point per distinct score (and -inf)."""
    points = []
    for t in sorted({float("-inf"), *safe, *flagged}):
        fpr = sum(s > t for s in safe) / max(1, len(safe))
        tpr = sum(s > t for s in flagged) / max(1, len(flagged))
        points.append(RocPoint(threshold=t, fpr=fpr, tpr=tpr))
    return points


def threshold_at_fpr(safe: Sequence[float], flagged: Sequence[float], target_fpr: float = 0.05) -> RocPoint:
    """The lowest threshold whose false-positive rate on ``safe`` scores is at most ``target_fpr``
    (so the highest recall on ``flagged`` at that FPR).

    Example:
        >>> threshold_at_fpr([1.0, 2.0, 3.0, 30.0], [25.0, 40.0, 2.5], target_fpr=0.25).threshold
        3.0
    """
    ok = [p for p in roc(safe, flagged) if p.fpr <= target_fpr and math.isfinite(p.threshold)]
    if not ok:
        raise InputError("no threshold reaches that false-positive rate; label more safe examples")
    return max(ok, key=lambda p: (p.tpr, -p.threshold))


class ThresholdChoice(BaseModel):
    """TraceShield's threshold picked from labelled drafts: the chosen ROC point, the whole
    curve, and how many drafts of each label it rests on."""

    model_config = ConfigDict(frozen=True)

    chosen: RocPoint
    curve: list[RocPoint]
    n_safe: int
    n_flagged: int


def calibrate_threshold(
    index: SuffixIndex,
    tokenizer: ByteTokenizer | HFTokenizer,
    texts: Sequence[str],
    flagged: Sequence[bool],
    *,
    variant: Variant = "sum",
    min_len: int = 8,
    target_fpr: float = 0.05,
) -> ThresholdChoice:
    """Score each text by its highest span (BCI ``variant``) and pick the lowest threshold whose
    false-positive rate on the texts not ``flagged`` is at most ``target_fpr``
    (:func:`threshold_at_fpr`). ``redraft index calibrate`` is this plus reading and printing.

    Example:
        >>> import tempfile, pathlib
        >>> from redraft.provenance import build_index
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "the moon is made of green cheese, everyone knows"}\\n')
        >>> _ = build_index([d / "c.jsonl"], d / "idx")
        >>> index = SuffixIndex.load(d / "idx")
        >>> texts = ["the moon is made of green cheese", "a fine day for a walk"]
        >>> choice = calibrate_threshold(index, ByteTokenizer(), texts, [True, False], target_fpr=0.0)
        >>> choice.chosen.tpr, choice.n_safe, choice.n_flagged
        (1.0, 1, 1)
    """
    if len(texts) != len(flagged):
        raise InputError(f"got {len(texts)} texts and {len(flagged)} labels; give one label per text")
    found = find_spans(index, tokenizer, list(texts), SpanFilters(min_len=min_len, density=None, max_docs=0))
    top = [top_score(spans, variant) for spans in found]
    safe = [t for t, bad in zip(top, flagged, strict=True) if not bad]
    hits = [t for t, bad in zip(top, flagged, strict=True) if bad]
    if not safe or not hits:
        raise InputError("calibration needs both safe and flagged examples")
    return ThresholdChoice(
        chosen=threshold_at_fpr(safe, hits, target_fpr), curve=roc(safe, hits), n_safe=len(safe), n_flagged=len(hits)
    )
