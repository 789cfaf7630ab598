"""The compiled CPU kernels (numba): the search of :meth:`SuffixIndex._bisect
<redraft.provenance.index.SuffixIndex._bisect>` for indexes loaded on the CPU, and the build's
one-pass bit packing and prefix counting (:func:`pack_into`, :func:`key_counts`).

The torch search runs every step as a few dozen whole-batch tensor operations, so a single draft
pays ~2 µs of dispatch per operation however little work each does, and a batch pays for tensors
that shrink as searches finish. Here each pattern's search is a plain loop: a lower bound in the
sampled keys per level, then a Manber & Myers binary search that skips the tokens both bounds
already share. Searches run in groups of :data:`GROUP` in lockstep: the key lookups of a group
take the same halvings, and each binary-search step first computes every running search's
midpoint and prefetches its suffix-array word, then reads the entries and prefetches their
tokens, then compares. A random read costs ~100 ns of latency, and the CPU overlaps the reads of
independent searches only when they are issued together (prefetching took ~30% off the search's
own time; docs/benchmarks.md gives each step's figures on the shared bench corpus).

The torch path stays for CUDA (and ``SuffixIndex.load(..., compiled=False)``); both are tested
against brute force. numba compiles on first use (~1 s) and caches the machine code next to this
module, or in the user's cache directory where that is read-only (:func:`_compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

if TYPE_CHECKING:
    from redraft.provenance.shard import Shard


F = TypeVar("F", bound=Callable[..., Any])


def _compiled(**options: Any) -> Callable[[F], F]:
    """``njit`` with its machine code cached on disk: next to this module, else in the user's cache
    directory. Where neither can be written numba refuses ``cache=True`` at import; then each
    process compiles on its first call (~1 s) instead of failing every search."""

    def wrap(fn: F) -> F:
        try:
            return cast(F, njit(cache=True, **options)(fn))
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return cast(F, njit(**options)(fn))

    return wrap


LevelArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int]
"""A shard's :class:`~redraft.provenance.shard.Levels` as the kernel reads them: every level's keys
concatenated, each level's offset into them (and the end), ``ends``, ``places[:, 0, :]``, bits per
token, ``payload_bits`` and ``sample``."""

GROUP = 64
"""Searches that step in lockstep: enough independent reads in flight to hide their latency,
few enough that a group's state stays in L1."""


def _prefetch_hint(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover  (runs inside numba)
    """A read hint for ``array[index]`` (LLVM's ``llvm.prefetch``): no load, no fault, no result."""
    sig = types.void(array, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        struct = context.make_array(array_type)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, array_type, struct, [args[1]], wraparound=False
        )
        byte_ptr, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")  # type: ignore[no-untyped-call]
        # read (0), keep in every cache level (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch: Any = intrinsic(_prefetch_hint)


@njit(inline="always")
def _sa(words: np.ndarray, bits: int, rank: int) -> np.int64:  # pragma: no cover
    """The suffix-array entry at ``rank`` of the bit-packed little-endian ``words`` (uint32)."""
    bit = rank * bits
    w = bit >> 5
    pair = np.int64(words[w]) | (np.int64(words[w + 1]) << 32)
    return (pair >> (bit & 31)) & ((np.int64(1) << bits) - 1)


@njit(inline="always")
def _compare(
    tokens: np.ndarray, n: int, buf: np.ndarray, at: int, length: int, pos: int, j: int
) -> tuple[int, bool]:  # pragma: no cover
    """The LCP of the suffix at ``pos`` and the pattern ``buf[at:at+length]`` (capped at
    ``length``), knowing the first ``j`` tokens match, and whether the suffix is smaller at the
    first mismatch. Reads past the shard's end see its last token: the trailing pad's separator."""
    while j < length:
        q = min(pos + j, n - 1)
        t, c = np.int64(tokens[q]), np.int64(buf[at + j])
        if t != c:
            return j, bool(t < c)
        j += 1
    return length, False


@njit
def _pack(
    places: np.ndarray,
    token_bits: int,
    buf: np.ndarray,
    at: int,
    length: int,
    upper: bool,
    level: int,
    first: int,
    end: int,
) -> np.int64:  # pragma: no cover
    """Level ``level``'s tokens ``[first, end)`` of a pattern packed as :meth:`Levels.pack
    <redraft.provenance.shard.Levels.pack>` does, padded past its length with the smallest token
    (searching for the first suffix >= it) or the largest (for the first suffix > it)."""
    packed = np.int64(0)
    for k in range(first, end):
        tok = np.int64(buf[at + k]) if k < length else (np.int64((1 << token_bits) - 1) if upper else np.int64(0))
        if k == 0:
            tok -= np.int64(1) << (token_bits - 1)  # unsigned order as int64 order
        packed += tok * places[level, k]
    return packed


@njit
def _narrow(
    levels: LevelArrays,
    n: int,
    buf: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    upper: np.ndarray,
    group: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:  # pragma: no cover
    """:meth:`Levels.narrow <redraft.provenance.shard.Levels.narrow>` for the patterns ``group``,
    intersected with the bounds ``lo``/``hi`` (one per member, updated in place). The levels'
    keys are concatenated: level ``l`` is ``keys[key_off[l]:key_off[l + 1]]``.

    Every level has as many keys as there are samples, so the members' lower-bound searches take
    the same number of halvings and run in lockstep: each halving reads one key per member, reads
    the CPU overlaps because no member waits on another (a binary search per pattern waited ~20
    cache misses in a row)."""
    keys, key_off, ends, places, token_bits, payload_bits, sample = levels
    size, samples = group.size, key_off[1] - key_off[0]
    key, left = np.empty(size, np.int64), np.empty(size, np.int64)
    member = np.empty(size, np.int64)
    live = 0
    for i in range(size):
        q = group[i]
        if hi[i] - lo[i] > 1:
            key[live] = _pack(places, token_bits, buf, start[q], length[q], upper[q], 0, 0, ends[0])
            member[live] = i
            live += 1
    for level in range(ends.size):
        at = key_off[level]
        for r in range(live):
            left[r] = 0
        width = samples
        while width > 1:  # branchless lower bound (the first key >= key), all members at once
            half = width >> 1
            for r in range(live):
                if keys[at + left[r] + half] < key[r]:
                    left[r] += half
            width -= half
        still = 0
        for r in range(live):
            i = member[r]
            q = group[i]
            a = left[r] + (1 if keys[at + left[r]] < key[r] else 0) if samples > 0 else 0
            b = a
            if b < samples and keys[at + b] == key[r]:  # a group of equal keys: its end, one by one at first
                b += 1
                while b < samples and keys[at + b] == key[r] and b - a < 8:
                    b += 1
                if b < samples and keys[at + b] == key[r]:
                    b = a + np.searchsorted(keys[at + a : at + samples], key[r], side="right")
            short = length[q] < ends[level]
            k_lo = (b if (upper[q] and short) else a) - 1
            k_hi = a if ((not upper[q]) and short) else b
            k_lo = np.int64(-1) if k_lo < 0 else k_lo * sample
            k_hi = np.int64(n) if k_hi >= samples else k_hi * sample
            lo[i], hi[i] = max(lo[i], k_lo), min(hi[i], k_hi)
            # Samples in [a, b) equal the pattern on every level so far: when the pattern is
            # longer than that, the next level decides between them.
            if level + 1 < ends.size and not short and b > a and hi[i] - lo[i] > 1:
                key[still] = (a << payload_bits) + _pack(
                    places, token_bits, buf, start[q], length[q], upper[q], level + 1, ends[level], ends[level + 1]
                )
                member[still] = i
                still += 1
        live = still


@_compiled(nogil=True, boundscheck=False)
def bisect(
    tokens: np.ndarray,
    words: np.ndarray,
    bits: int,
    n: int,
    levels: LevelArrays,
    buf: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    upper: np.ndarray,
    lo_in: np.ndarray,
    hi_in: np.ndarray,
    within: bool,
    out_rank: np.ndarray,
    out_lcp_lo: np.ndarray,
    out_lcp_hi: np.ndarray,
) -> None:  # pragma: no cover
    """``SuffixIndex._bisect`` on one shard, writing ``out_*``; see it for the contract.

    ``within``: ``lo_in``/``hi_in`` bound each answer already (else they are ignored); then only
    the searches they leave open are narrowed and measured, and the others' LCPs are 0.

    Unlike the torch search, patterns are not sorted first: with the lockstep key lookups,
    sorting a batch of 100 drafts by first key made it slower (0.29 against 0.24 ms per draft).
    """
    count = start.size
    lo, hi = np.empty(GROUP, np.int64), np.empty(GROUP, np.int64)
    lcp_lo, lcp_hi = np.empty(GROUP, np.int64), np.empty(GROUP, np.int64)
    mid, pos, running = np.empty(GROUP, np.int64), np.empty(GROUP, np.int64), np.empty(GROUP, np.int64)
    measure = np.empty(GROUP, np.bool_)
    for g in range(0, count, GROUP):
        size = min(GROUP, count - g)
        group = np.arange(g, g + size)
        for i in range(size):
            q = group[i]
            lo[i], hi[i], lcp_lo[i], lcp_hi[i] = (lo_in[q], hi_in[q], 0, 0) if within else (-1, n, 0, 0)
            measure[i] = not within
        _narrow(levels, n, buf, start, length, upper, group, lo, hi)
        # The exact LCPs of both bounds (a virtual bound, -1 or n, shares nothing), in three passes
        # as each binary-search step below runs.
        for i in range(size):
            measure[i] = measure[i] or hi[i] - lo[i] > 1
            if measure[i]:
                if lo[i] >= 0:
                    _prefetch(words, (lo[i] * bits) >> 5)
                if hi[i] < n:
                    _prefetch(words, (hi[i] * bits) >> 5)
        for i in range(size):
            if measure[i]:
                pos[i] = _sa(words, bits, lo[i]) if lo[i] >= 0 else -1
                mid[i] = _sa(words, bits, hi[i]) if hi[i] < n else -1
                _prefetch(tokens, max(pos[i], 0))
                _prefetch(tokens, max(mid[i], 0))
        live = 0
        for i in range(size):
            q = group[i]
            if measure[i]:
                if pos[i] >= 0:
                    lcp_lo[i] = _compare(tokens, n, buf, start[q], length[q], pos[i], 0)[0]
                if mid[i] >= 0:
                    lcp_hi[i] = _compare(tokens, n, buf, start[q], length[q], mid[i], 0)[0]
            if hi[i] - lo[i] > 1:
                running[live] = i
                live += 1
        while live:
            for r in range(live):  # midpoints; their suffix-array words start loading
                i = running[r]
                mid[i] = (lo[i] + hi[i]) >> 1
                _prefetch(words, (mid[i] * bits) >> 5)
            for r in range(live):  # entries; their first unshared tokens start loading
                i = running[r]
                pos[i] = _sa(words, bits, mid[i])
                _prefetch(tokens, min(pos[i] + min(lcp_lo[i], lcp_hi[i]), n - 1))
            still = 0
            for r in range(live):
                i = running[r]
                q = group[i]
                lcp, less = _compare(tokens, n, buf, start[q], length[q], pos[i], min(lcp_lo[i], lcp_hi[i]))
                matched = lcp >= length[q]
                below = (matched or less) if upper[q] else ((not matched) and less)
                if below:
                    lo[i], lcp_lo[i] = mid[i], lcp
                else:
                    hi[i], lcp_hi[i] = mid[i], lcp
                if hi[i] - lo[i] > 1:
                    running[still] = i
                    still += 1
            live = still
        for i in range(size):
            q = group[i]
            out_rank[q], out_lcp_lo[q], out_lcp_hi[q] = hi[i], lcp_lo[i], lcp_hi[i]


def search(
    shard: Shard,
    buf: torch.Tensor,
    start: torch.Tensor,
    length: torch.Tensor,
    upper: torch.Tensor,
    within: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:meth:`SuffixIndex._bisect <redraft.provenance.index.SuffixIndex._bisect>` on one shard,
    through :func:`bisect`."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.numpy())

    levels = shard.levels
    b = start.numel()
    rank, lcp_lo, lcp_hi = (torch.empty(b, dtype=torch.int64) for _ in range(3))
    bounds = (arr(within[0]), arr(within[1])) if within is not None else (rank.numpy(), rank.numpy())
    keys = levels.flat.numpy()
    arrays = (
        keys,
        np.arange(len(levels.ends) + 1, dtype=np.int64) * (keys.size // len(levels.ends)),
        np.asarray(levels.ends, dtype=np.int64),
        arr(levels.places[:, 0, :]),
        levels.bits,
        levels.payload_bits,
        levels.sample,
    )
    bisect(
        shard.tokens.numpy(),
        shard.sa_words.numpy().view(np.uint32),
        shard.bits,
        shard.n,
        arrays,
        arr(buf),
        arr(start),
        arr(length),
        arr(upper),
        *bounds,
        within is not None,
        rank.numpy(),
        lcp_lo.numpy(),
        lcp_hi.numpy(),
    )
    return rank, lcp_lo, lcp_hi


# -- the build -------------------------------------------------------------------------------------


@_compiled(nogil=True)
def pack_into(values: np.ndarray, bits: int, out: np.ndarray) -> None:  # pragma: no cover
    """Append each value's low ``bits`` bits to a little-endian uint32 bit stream written into
    ``out`` (zeroed, at least ``ceil(len(values) * bits / 32)`` words): the layout of
    :func:`redraft.provenance.format.pack_bits`, in one pass (numpy took ~30 passes: 0.70 against
    0.19 s for the bench corpus's suffix array)."""
    acc, filled, w = np.uint64(0), 0, 0
    for i in range(values.size):
        acc |= np.uint64(values[i]) << np.uint64(filled)
        filled += bits
        if filled >= 32:
            out[w] = np.uint32(acc & np.uint64(0xFFFFFFFF))
            w += 1
            acc >>= np.uint64(32)
            filled -= 32
    if filled > 0:
        out[w] = np.uint32(acc)


@_compiled(nogil=True)
def key_counts(tokens: np.ndarray, base: int, pairs: bool) -> np.ndarray:  # pragma: no cover
    """Positions per prefix key (:func:`redraft.provenance.format.key_counts`): the pair of a
    token and the next one (-1 past the end) when ``pairs``, else the token alone. One pass
    (numpy's keys and bincount: 1.5 s for the bench corpus, here 0.09 s)."""
    if not pairs:
        counts = np.zeros(base, np.int64)
        for i in range(tokens.size):
            counts[tokens[i]] += 1
        return counts
    counts = np.zeros(base * (base + 1), np.int64)
    for i in range(tokens.size - 1):
        counts[np.int64(tokens[i]) * (base + 1) + np.int64(tokens[i + 1]) + 1] += 1
    if tokens.size:
        counts[np.int64(tokens[tokens.size - 1]) * (base + 1)] += 1
    return counts
