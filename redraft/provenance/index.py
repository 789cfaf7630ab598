"""Query a suffix index with batched, vectorized torch, compiled on the CPU (:mod:`redraft.provenance.kernel`).

``SuffixIndex.load(path, device="cpu")`` memory-maps the shards; ``device="cuda"`` copies them
onto the GPU. Every query is a batched binary search over the suffix array written in torch:
each step compares, for all queries at once, a chunk of tokens starting at the longest common
prefix already known for the current bounds (Manber & Myers' LCP trick), so a step costs a few
gathers instead of a full pattern comparison.

Before the first step, a search is narrowed by :class:`~redraft.provenance.shard.Levels`: the first tokens of every
``SAMPLE``-th suffix, packed into sorted int64 keys that ``torch.searchsorted`` looks up for all
queries in one call, so a search starts on ~``SAMPLE`` ranks instead of a block of millions of
suffixes sharing two bytes. Each step then splits every running search's range with as many probes
as keep a step's tensors near ``PROBE_ROWS`` rows: a batch of 100 drafts steps in halves, a single
draft's 500 searches in eighths, so a single draft takes ~3 steps instead of ~27.

Over 400 lines because every query (count, longest match, maximal spans, attribution) runs through
the one batched search of :class:`SuffixIndex`; the on-disk parts are :mod:`redraft.provenance.shard`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from redraft.errors import InputError
from redraft.provenance import format as fmt
from redraft.provenance.format import InvalidIndexError
from redraft.provenance.order import sampled_problems
from redraft.provenance.shard import (
    BLOCKS,
    CHUNK,
    LONG,
    Shard,
    check_files,
    local_positions,
    no_gc,
    range_max,
    read_header,
)
from redraft.provenance.tokenizers import TokenizerInfo

PROBE_ROWS = 4096
"""Probe rows a binary-search round aims for: searches still running share them (see
:meth:`SuffixIndex._bisect`)."""
MAX_PROBES = 15
"""The most probes one search takes per round (a 16-way split)."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda[:n]`` or ``auto`` (CUDA when available). No silent fallback from CUDA."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device={str(device)!r} was requested but no CUDA device is available (torch.cuda.is_available() "
            "is False). Use device='cpu', or device='auto' to pick CUDA only when present."
        )
    return dev


class Insertion(NamedTuple):
    """Where each query's whole sequence inserts in one shard's suffix array: the rank ``r`` of the
    first suffix at or above it, and its LCPs with the suffixes at ``r - 1`` and ``r``."""

    rank: torch.Tensor
    lcp_lo: torch.Tensor
    lcp_hi: torch.Tensor


class DocRef(NamedTuple):
    """Where a span occurs: a document and the token offset inside it (a tuple: cheap to create)."""

    doc: int
    offset: int
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Span:
    """A verbatim match between a query sequence and the corpus.

    A plain dataclass, not a pydantic model: queries create hundreds of thousands of them.
    """

    seq: int
    """Which query sequence (index into the batch)."""
    start: int
    end: int
    """Token positions ``[start, end)`` in the query sequence."""
    count: int
    """Occurrences in the corpus."""
    bci: float
    """−Σ log P_corpus(token) over the span, in nats (see :mod:`redraft.provenance.bci`)."""
    bci_max: float
    """The largest single-token surprisal in the span."""
    docs: tuple[DocRef, ...] = ()
    text: str | None = None

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def bci_density(self) -> float:
        return self.bci / max(1, self.length)


@dataclass(frozen=True)
class Matches:
    """``longest_match`` results for a batch of sequences, flattened position by position."""

    offsets: list[int]
    """Sequence ``b`` owns flat positions ``offsets[b]:offsets[b+1]``."""
    lengths: torch.Tensor  # (P,) longest match starting at each position
    counts: torch.Tensor  # (P,) corpus occurrences of that longest match
    lo: torch.Tensor  # (S, P) suffix-array range per shard: [lo, hi)
    hi: torch.Tensor  # (S, P)


class SuffixIndex:
    """A loaded suffix index. Build one with :func:`redraft.provenance.build_index`.

    Example:
        >>> import tempfile, pathlib
        >>> from redraft.provenance import build_index
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "the cat sat on the mat"}\\n')
        >>> _ = build_index([d / "c.jsonl"], d / "idx")
        >>> index = SuffixIndex.load(d / "idx")
        >>> index.count([list(b"the "), list(b"cat"), list(b"dog")])
        [2, 1, 0]
    """

    def __init__(self, root: Path, header: fmt.Header, device: torch.device, *, compiled: bool | None = None) -> None:
        self.root, self.header, self.device = root, header, device
        if compiled and device.type != "cpu":
            raise InputError(f"compiled=True searches on the CPU, but the index is on {device}; leave it unset")
        self.compiled = device.type == "cpu" if compiled is None else compiled
        """Searches run :mod:`redraft.provenance.kernel` (else the torch search every device runs)."""
        self.shards = [Shard(root, s, header, device) for s in header.shards]
        counts = np.fromfile(root / fmt.UNIGRAM, dtype="<u8").astype(np.float64)
        self.unigram = torch.from_numpy(counts).to(device)  # (V,)

    @property
    def vocab_size(self) -> int:
        return self.header.tokenizer.vocab_size

    def check_tokenizer(self, tokenizer: TokenizerInfo, whose: str) -> None:
        """Refuse a tokenizer with another vocabulary than the one this index was built with: its
        token ids would not match the index's. Every reader of an index (the CLI, the BCI critic,
        Prov-Decode, CBD) checks through here.

        Args:
            tokenizer: the tokenizer that will produce the ids to look up (``.info`` of one).
            whose: who tokenizes, for the message (``"the critic's"``, ``"the model's"``).
        """
        built = self.header.tokenizer
        if tokenizer.vocab_hash != built.vocab_hash:
            raise InputError(
                f"the index at {self.root} was built with tokenizer {built.name!r}, but {whose} tokenizer is "
                f"{tokenizer.name!r} (a different vocabulary: the index's token ids are not the model's). Rebuild "
                "the index with `redraft index build --tokenizer <the model's tokenizer>`, or with --tokenizer "
                "bytes, which works with any LLM (the critics only; Prov-Decode and CBD need the model's ids)."
            )

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", *, verify: bool = True, compiled: bool | None = None
    ) -> SuffixIndex:
        """Open an index directory: memory-mapped on CPU, resident on CUDA.

        Args:
            path: the directory ``build_index`` wrote.
            device: ``cpu``, ``cuda[:n]`` or ``auto``.
            verify: check every file's sha256 against the header, and a sample of adjacent
                suffix-array entries for order (the header's checksum, its consistency and
                every file's size are always checked).
            compiled: search with the compiled CPU kernel (the default on the CPU) or, when
                False, with the torch search that CUDA runs (same answers; for comparison).
        """
        root = Path(path)
        dev = resolve_device(device)
        header = read_header(root)
        check_files(root, header, hashes=verify)
        index = cls(root, header, dev, compiled=compiled)
        if verify:
            problems = sampled_problems(index)
            if problems:
                raise InvalidIndexError(
                    f"{root} fails its suffix-order check: {problems[0]}. The index is corrupt or was tampered "
                    f"with; run `redraft index verify {root}` for the full list, then rebuild it."
                )
        return index

    # -- the binary search --------------------------------------------------------------------------

    def _queries(self, patterns: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Concatenate patterns into one buffer (padded by a chunk of -2, a value no corpus token has)."""
        flat = [t for p in patterns for t in p]
        buf = torch.tensor(flat, dtype=torch.int64)
        if buf.numel():
            low, high = int(buf.min()), int(buf.max())
            if low < 0 or high >= self.vocab_size:
                raise InputError(
                    f"token id {low if low < 0 else high} is outside the index vocabulary [0, {self.vocab_size}) "
                    f"of tokenizer {self.header.tokenizer.name!r}; tokenize queries with the index's tokenizer"
                )
            if bool((buf == self.header.separator).any()):
                raise InputError(
                    f"token id {self.header.separator} is the index's document separator and cannot be queried "
                    "(for byte indexes: 0xFF never occurs in UTF-8 text)"
                )
        lengths = torch.tensor([len(p) for p in patterns], dtype=torch.int64)
        starts = torch.cumsum(lengths, 0) - lengths
        buf = torch.cat([buf, torch.full((LONG,), -2, dtype=torch.int64)])
        d = self.device
        return buf.to(torch.int32).to(d), starts.to(d), lengths.to(d)

    def _bisect(
        self,
        shard: Shard,
        buf: torch.Tensor,
        start: torch.Tensor,
        length: torch.Tensor,
        upper: torch.Tensor,
        within: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each pattern ``buf[start:start+length]``: the first suffix-array rank whose suffix is
        ``>=`` the pattern (where ``upper`` is False) or ``>`` it when only ``length`` tokens are
        compared (where it is True), with the LCP of the pattern and the suffixes just below and at
        that rank. A pattern's two ends run as two rows of one search.

        ``within``: ranks ``(lo, hi)`` already known to bound each answer (``lo`` below it, ``hi``
        at or above it); then only the rank is wanted, and the LCPs of searches that bounds alone
        settle are not measured (returned as 0).

        All patterns step in lockstep, so every step is a handful of whole-batch tensor ops. On the
        CPU the same search runs compiled (:func:`redraft.provenance.kernel.bisect`).
        """
        if self.compiled:
            from redraft.provenance import kernel  # numba: imported by the first search, not by the CLI

            return kernel.search(shard, buf, start, length, upper, within)
        b, dev = start.numel(), self.device
        if b == 0:
            empty = torch.zeros(0, dtype=torch.int64, device=dev)
            return empty, empty, empty
        steps = torch.arange(CHUNK, device=dev)  # (C,)
        long_steps = torch.arange(BLOCKS * LONG, device=dev)  # (W,)
        blocks = torch.arange(0, BLOCKS * LONG, LONG, device=dev)  # (BLOCKS,) window offsets
        last = buf.numel() - LONG  # the last pattern window; later ones are past every pattern's end
        # (len(buf) - C + 1, C); buf carries LONG pad entries. Contiguous: every step gathers rows
        # of it, faster from a plain matrix than from the overlapping view (~25% on 50,000 rows).
        patterns = buf.unfold(0, CHUNK, 1).contiguous()
        long_patterns = buf.unfold(0, LONG, 1)

        def compare(
            rank: torch.Tensor,
            start: torch.Tensor,
            j: torch.Tensor,
            length: torch.Tensor,
            upper: torch.Tensor,
            active: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """For ``(B, k)`` ranks, each suffix's LCP with its row's pattern (capped at ``length``),
            knowing that the first ``j`` tokens match, and whether the suffix sorts below the rank
            searched for. A row's k suffixes share its pattern window (one gather per row); ranks
            not ``active`` (``(B, k)``) stop after one chunk."""
            rows, k = rank.shape
            suffix = shard.sa(rank.flatten().clamp(0, shard.n - 1))  # (B k,)
            s = shard.window(suffix + j.repeat_interleave(k)).view(rows, k, CHUNK)
            p = patterns.index_select(0, start + j)  # (B, C)
            stop = (s != p[:, None]) | (steps >= (length - j)[:, None])[:, None]  # (B, k, C)
            # max returns the first maximal index (documented): any and argmax in one reduction.
            found, at = stop.max(2)  # (B, k) whether and where the chunk mismatches
            s_tok, p_tok = s.gather(2, at[..., None]).squeeze(2), p.gather(1, at)
            lcp = j[:, None] + torch.where(found, at, CHUNK)
            pending = torch.nonzero((~found & active).flatten()).squeeze(1)
            lcp, s_tok, p_tok = lcp.flatten(), s_tok.flatten(), p_tok.flatten()
            while pending.numel():  # matches longer than a chunk: wider gathers from here on
                jp, owner = lcp[pending], pending // k
                s = shard.window((suffix[pending] + jp)[:, None].add(blocks).flatten(), LONG).view(-1, BLOCKS * LONG)
                at_p = (start[owner] + jp)[:, None].add(blocks).clamp(max=last).flatten()
                q = long_patterns.index_select(0, at_p).view(-1, BLOCKS * LONG)
                stop = (s != q) | (long_steps >= (length[owner] - jp)[:, None])
                hit, at = stop.max(1, keepdim=True)
                hit = hit.squeeze(1)
                lcp[pending] = torch.where(hit, jp + at.squeeze(1), jp + BLOCKS * LONG)
                s_tok[pending] = s.gather(1, at).squeeze(1)
                p_tok[pending] = q.gather(1, at).squeeze(1)
                pending = pending[~hit]
            lcp = torch.minimum(lcp.view(rows, k), length[:, None])
            less = (s_tok < p_tok).view(rows, k)
            matched = lcp >= length[:, None]
            return lcp, torch.where(upper[:, None], matched | less, ~matched & less)

        # Start on the ~shard.SAMPLE ranks the sampled keys leave, with the exact LCPs of both bounds
        # (one comparison of each search's two bounds; a virtual bound, -1 or n, shares nothing).
        if within is None:
            lo, hi = shard.levels.narrow(long_patterns, start, length, shard.n, upper)
            measure = torch.arange(b, device=dev)
        else:  # only searches the known bounds leave open are narrowed, measured and run
            lo, hi = within[0].clone(), within[1].clone()
            open_ = torch.nonzero((hi - lo) > 1).squeeze(1)
            key_lo, key_hi = shard.levels.narrow(long_patterns, start[open_], length[open_], shard.n, upper[open_])
            lo[open_], hi[open_] = torch.maximum(lo[open_], key_lo), torch.minimum(hi[open_], key_hi)
            measure = torch.nonzero((hi - lo) > 1).squeeze(1)
        bounds = torch.stack([lo[measure], hi[measure]], 1)  # (M, 2)
        real = (bounds >= 0) & (bounds < shard.n)
        lcp, _ = compare(bounds, start[measure], torch.zeros_like(measure), length[measure], upper[measure], real)
        lcp = torch.where(real, lcp, 0)
        lcp_lo, lcp_hi = torch.zeros_like(lo), torch.zeros_like(hi)
        lcp_lo[measure], lcp_hi[measure] = lcp[:, 0], lcp[:, 1]
        # Searches finish at different steps (most within ~shard.SAMPLE ranks, a few in a large group of
        # equal keys): once at most half are still running, the rest move to smaller tensors.
        out_hi, out_lcp_lo, out_lcp_hi = torch.empty_like(hi), torch.empty_like(lcp_lo), torch.empty_like(lcp_hi)
        rows = torch.arange(b, device=dev)
        while True:
            active = (hi - lo) > 1
            running = int(active.sum())
            if 2 * running <= active.numel():
                done = ~active
                finished = rows[done]
                out_hi[finished], out_lcp_lo[finished], out_lcp_hi[finished] = hi[done], lcp_lo[done], lcp_hi[done]
                if running == 0:
                    return out_hi, out_lcp_lo, out_lcp_hi
                keep = torch.nonzero(active).squeeze(1)
                rows, lo, hi, lcp_lo, lcp_hi = rows[keep], lo[keep], hi[keep], lcp_lo[keep], lcp_hi[keep]
                start, length, upper, active = start[keep], length[keep], upper[keep], active[keep]
            # k probes per search split its range k + 1 ways: a round costs the same few dozen tensor
            # operations whatever k is, so few searches (a single draft, the stragglers of a batch)
            # take more probes and fewer rounds, while a full batch stays binary (memory-bound).
            k = max(1, min(MAX_PROBES, PROBE_ROWS // running))
            width = hi - lo
            probes = lo[:, None] + (width[:, None] * torch.arange(1, k + 1, device=dev)) // (k + 1)
            probes = torch.minimum(torch.maximum(probes, (lo + 1)[:, None]), (hi - 1)[:, None])  # (B, k) inside
            every = torch.minimum(lcp_lo, lcp_hi)  # tokens every suffix strictly inside shares
            j, right = compare(probes, start, every, length, upper, active[:, None].expand(-1, k))
            below = right.sum(1)  # probes below the answer: it lies after probe below - 1
            at_lo, at_hi = (below - 1).clamp(min=0)[:, None], below.clamp(max=k - 1)[:, None]
            move_lo, move_hi = active & (below > 0), active & (below < k)
            lo = torch.where(move_lo, probes.gather(1, at_lo).squeeze(1), lo)
            lcp_lo = torch.where(move_lo, j.gather(1, at_lo).squeeze(1), lcp_lo)
            hi = torch.where(move_hi, probes.gather(1, at_hi).squeeze(1), hi)
            lcp_hi = torch.where(move_hi, j.gather(1, at_hi).squeeze(1), lcp_hi)

    def _ranges(
        self,
        buf: torch.Tensor,
        start: torch.Tensor,
        length: torch.Tensor,
        inserted: Sequence[Insertion] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Suffix-array ranges ``[lo, hi)``, ``(S, B)`` each, of the patterns ``buf[start:start+length]``.

        ``inserted``: per shard, where each pattern's whole remaining sequence was inserted, when
        ``length`` is its longest match (:meth:`_insertions`). The range holds that rank, so each
        search starts from it: a shard where the match is shorter settles both ends at once, and
        otherwise the rank bounds one end of each search (r - 1 and r start with the match when
        their LCP reaches it).
        """
        b = start.numel()
        upper = torch.arange(2 * b, device=self.device) >= b
        twice_start, twice_length = start.repeat(2), length.repeat(2)
        ends = []
        for s, shard in enumerate(self.shards):
            within = None
            if inserted is not None:
                r, lcp_lo, lcp_hi = inserted[s]
                none, every = torch.full_like(r, -1), torch.full_like(r, shard.n)
                matched = length > 0  # the empty pattern's range is every suffix: no hint
                # Lower end: r exactly when suffix r - 1 falls short of the match; else at most r - 1.
                short = matched & (lcp_lo < length)
                below = (torch.where(short, r - 1, none), torch.where(short, r, torch.where(matched, r - 1, every)))
                # Upper end: r exactly when suffix r falls short of the match; else above r.
                short = matched & (lcp_hi < length)
                above = (torch.where(matched, torch.where(short, r - 1, r), none), torch.where(short, r, every))
                within = (torch.cat([below[0], above[0]]), torch.cat([below[1], above[1]]))
            ends.append(self._bisect(shard, buf, twice_start, twice_length, upper, within)[0])
        found = torch.stack(ends)  # (S, 2B): every lower end, then every upper end
        return found[:, :b], found[:, b:]

    # -- public queries -----------------------------------------------------------------------------

    def find(self, patterns: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Suffix-array ranges ``[lo, hi)`` of each pattern in each shard, as two ``(S, B)`` tensors."""
        return self._ranges(*self._queries(patterns))

    def count(self, patterns: Sequence[Sequence[int]]) -> list[int]:
        """Exact corpus occurrences of each pattern (summed over shards)."""
        lo, hi = self.find(patterns)
        return [int(c) for c in (hi - lo).sum(0).tolist()]

    def _insertions(
        self, buf: torch.Tensor, seq_start: torch.Tensor, seq_len: torch.Tensor
    ) -> tuple[torch.Tensor, list[Insertion]]:
        """Longest-match length at every flat position of the concatenated sequences, and per shard
        where each position's remaining sequence inserts, with its LCPs below and at that rank."""
        total = int(seq_len.sum())
        positions = torch.arange(total, device=self.device)  # (P,)
        seq_of = torch.repeat_interleave(torch.arange(seq_len.numel(), device=self.device), seq_len)
        remaining = seq_start[seq_of] + seq_len[seq_of] - positions  # (P,)
        best = torch.zeros_like(positions)
        inserted = []
        lower = torch.zeros_like(positions, dtype=torch.bool)
        for shard in self.shards:
            found = Insertion(*self._bisect(shard, buf, positions, remaining, lower))
            best = torch.maximum(best, torch.maximum(found.lcp_lo, found.lcp_hi))
            inserted.append(found)
        return best, inserted

    def _longest(self, buf: torch.Tensor, seq_start: torch.Tensor, seq_len: torch.Tensor) -> torch.Tensor:
        """Longest-match length at every flat position of the concatenated sequences."""
        return self._insertions(buf, seq_start, seq_len)[0]

    def longest_match(self, sequences: Sequence[Sequence[int]]) -> Matches:
        """For every position of every sequence, the longest prefix of the rest of the sequence that
        occurs in the corpus, its count and its suffix-array range in each shard.

        This is OLMoTrace's primitive: binary-search the whole remaining suffix to its insertion rank
        r; the match length is the larger LCP with the suffixes at r-1 and r.
        """
        buf, seq_start, seq_len = self._queries(sequences)
        best, inserted = self._insertions(buf, seq_start, seq_len)
        positions = torch.arange(best.numel(), device=self.device)
        lo, hi = self._ranges(buf, positions, best, inserted)
        counts = torch.where(best > 0, (hi - lo).sum(0), 0)
        offsets = [0, *(int(o) for o in torch.cumsum(seq_len, 0).tolist())]
        return Matches(offsets=offsets, lengths=best, counts=counts, lo=lo, hi=hi)

    def surprisal(self, alpha: float = 1.0) -> torch.Tensor:
        """−log P_corpus(t) per token id, in nats, with add-``alpha`` smoothing over seen tokens.

        Tokens the corpus never contains get 0: they carry no evidence of provenance, so an unseen
        token can never push a span over a BCI threshold on its own.
        """
        total = float(self.unigram.sum()) + alpha * self.vocab_size
        s = -torch.log((self.unigram + alpha) / total)
        return torch.where(self.unigram > 0, s, torch.zeros_like(s))  # (V,)

    def _maximal(
        self, buf: torch.Tensor, seq_start: torch.Tensor, seq_len: torch.Tensor, min_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, list[Insertion]]:
        """Flat start positions ``(K,)`` and lengths of the maximal spans, and each start's insertion."""
        best, inserted = self._insertions(buf, seq_start, seq_len)  # (P,)
        ends = torch.arange(best.numel(), device=self.device) + best
        # One running maximum over all sequences: they are laid out in order and no span crosses
        # its sequence's end, so an earlier sequence never hides a span of a later one.
        before = torch.cat([ends.new_zeros(1), torch.cummax(ends, 0).values[:-1]])
        chosen = torch.nonzero((best >= max(1, min_len)) & (ends > before)).squeeze(1)  # (K,)
        return chosen, best[chosen], [Insertion(*(t[chosen] for t in found)) for found in inserted]

    def maximal_spans(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        min_len: int = 1,
        max_docs: int = 10,
        alpha: float = 1.0,
    ) -> list[list[Span]]:
        """Maximal verbatim spans of each sequence (OLMoTrace step 2): position i gives the span
        ``[i, i + l_i)`` when it ends further right than every span starting before it.

        Each span carries its count, BCI (sum and max token surprisal) and up to ``max_docs``
        source documents.
        """
        buf, seq_start, seq_len = self._queries(sequences)
        chosen, lengths, inserted = self._maximal(buf, seq_start, seq_len, min_len)
        # Each span is its start's longest match: its range holds the rank that start's search found.
        return self._describe(sequences, buf, seq_start, seq_len, chosen, lengths, max_docs, alpha, inserted)

    def maximal_ranges(self, sequences: Sequence[Sequence[int]], *, min_len: int = 1) -> list[list[tuple[int, int]]]:
        """The ``[start, end)`` token ranges of :meth:`maximal_spans`, without counts, BCI or sources
        (for callers that cut the spans before describing them, as the BCI critic does).

        Example:
            >>> import tempfile, pathlib
            >>> from redraft.provenance import build_index
            >>> d = pathlib.Path(tempfile.mkdtemp())
            >>> _ = (d / "c.jsonl").write_text('{"text": "the cat sat"}\\n')
            >>> _ = build_index([d / "c.jsonl"], d / "idx")
            >>> SuffixIndex.load(d / "idx").maximal_ranges([list(b"a cat sat down")], min_len=3)
            [[(1, 9), (7, 10)]]
        """
        buf, seq_start, seq_len = self._queries(sequences)
        chosen, lengths, _ = self._maximal(buf, seq_start, seq_len, min_len)
        out: list[list[tuple[int, int]]] = [[] for _ in sequences]
        for b, a, n in zip(*local_positions(seq_start, chosen), lengths.tolist(), strict=True):
            out[b].append((a, a + n))
        return out

    def spans(
        self,
        sequences: Sequence[Sequence[int]],
        ranges: Sequence[Sequence[tuple[int, int]]],
        *,
        max_docs: int = 10,
        alpha: float = 1.0,
    ) -> list[list[Span]]:
        """Describe given token ranges of each sequence (count, BCI, sources), e.g. trimmed spans."""
        buf, seq_start, seq_len = self._queries(sequences)
        offsets = seq_start.tolist()
        flat = [(offsets[b] + a, z - a) for b, rs in enumerate(ranges) for a, z in rs]
        starts = torch.tensor([f[0] for f in flat], dtype=torch.int64, device=self.device)
        lengths = torch.tensor([f[1] for f in flat], dtype=torch.int64, device=self.device)
        return self._describe(sequences, buf, seq_start, seq_len, starts, lengths, max_docs, alpha)

    def _describe(
        self,
        sequences: Sequence[Sequence[int]],
        buf: torch.Tensor,
        seq_start: torch.Tensor,
        seq_len: torch.Tensor,
        starts: torch.Tensor,
        lengths: torch.Tensor,
        max_docs: int,
        alpha: float,
        inserted: Sequence[Insertion] | None = None,
    ) -> list[list[Span]]:
        """Spans at flat buffer positions ``starts`` (K,) with ``lengths`` (K,): counts, BCI, sources.
        ``inserted``: as for :meth:`_ranges`, when each span is its start's longest match."""
        out: list[list[Span]] = [[] for _ in sequences]
        if starts.numel() == 0:
            return out
        lo, hi = self._ranges(buf, starts, lengths, inserted)  # (S, K)
        counts = (hi - lo).sum(0).tolist()
        total = int(seq_len.sum())
        surprise = self.surprisal(alpha)[buf[:total].to(torch.int64)].cpu().numpy()  # (P,)
        cum = np.concatenate([[0.0], np.cumsum(surprise)])
        at, size = starts.cpu().numpy(), lengths.cpu().numpy()
        sums = (cum[at + size] - cum[at]).tolist()
        peaks = range_max(surprise, at, size).tolist()
        with no_gc():
            docs = self._attribute_many(lo, hi, max_docs)
            for k, (b, a, n) in enumerate(zip(*local_positions(seq_start, starts), size.tolist(), strict=True)):
                out[b].append(
                    Span(
                        seq=b,
                        start=a,
                        end=a + n,
                        count=int(counts[k]),
                        bci=sums[k],
                        bci_max=peaks[k],
                        docs=docs[k],
                    )
                )
        return out

    def attribute(self, pattern: Sequence[int], max_docs: int = 10) -> tuple[DocRef, ...]:
        """Up to ``max_docs`` (document, offset) occurrences of ``pattern``."""
        lo, hi = self.find([pattern])
        return self._attribute(lo[:, 0], hi[:, 0], max_docs)

    def _attribute(self, lo: torch.Tensor, hi: torch.Tensor, max_docs: int) -> tuple[DocRef, ...]:
        return self._attribute_many(lo[:, None], hi[:, None], max_docs)[0]

    def _attribute_many(self, lo: torch.Tensor, hi: torch.Tensor, max_docs: int) -> list[tuple[DocRef, ...]]:
        """Up to ``max_docs`` (document, offset) occurrences for each of K suffix-array ranges
        ``(S, K)``, taken shard by shard, with one gather and one search per shard."""
        k = lo.shape[1]
        refs: list[tuple[DocRef, ...]] = [() for _ in range(k)]
        left = torch.full((k,), max_docs, dtype=torch.int64, device=lo.device)
        for s, shard in enumerate(self.shards):
            take = torch.minimum(hi[s] - lo[s], left).clamp(min=0)  # (K,)
            left = left - take
            if int(take.sum()) == 0:
                continue
            owner = torch.repeat_interleave(torch.arange(k, device=lo.device), take)  # (T,)
            first = torch.cumsum(take, 0) - take
            ranks = lo[s][owner] + torch.arange(owner.numel(), device=lo.device) - first[owner]
            pos = shard.sa(ranks)  # (T,)
            doc = torch.searchsorted(shard.docs, pos, right=True) - 1
            offset = pos - shard.docs[doc]
            # Built by map over whole lists, then cut per range: one Python loop step per range,
            # not per occurrence (a batch of drafts has tens of thousands of occurrences).
            local = doc.tolist()
            metas = {d: shard.meta(d) for d in set(local)}
            found = list(
                map(DocRef, (doc + shard.info.doc_base).tolist(), offset.tolist(), map(metas.__getitem__, local))
            )
            for o, (a, n) in enumerate(zip(first.tolist(), take.tolist(), strict=True)):
                if n:
                    refs[o] += tuple(found[a : a + n])
        return refs

    def document(self, doc: int) -> list[int]:
        """The tokens of a document by global id."""
        for shard in self.shards:
            local = doc - shard.info.doc_base
            if 0 <= local < shard.info.n_docs:
                start = int(shard.docs[local])
                end = int(shard.docs[local + 1]) - 1 if local + 1 < shard.info.n_docs else shard.n - fmt.PAD
                return [int(t) for t in shard.tok(torch.arange(start, end, device=self.device)).tolist()]
        raise InputError(f"document {doc} is out of range [0, {self.header.n_docs})")
