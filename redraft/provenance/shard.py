"""The on-disk parts of a suffix index, memory-mapped for queries: the header and files checked
against their checksums (:func:`read_header`, :func:`check_files`), each shard's token and
suffix-array files, and the sampled keys (:class:`Levels`) that narrow a search before its first
binary-search step. :mod:`redraft.provenance.index` queries them.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraft.provenance import format as fmt
from redraft.provenance.format import InvalidIndexError

CHUNK = 16
"""Tokens compared per gather in a binary-search step."""
LONG = fmt.PAD
"""Tokens per gather once a comparison runs past its first chunk (a long match): fewer rounds of
the extension loop, which dominate a single draft with long verbatim runs. At most the trailing
pad, so a window clamped at the end still reads only separators."""
BLOCKS = 4
"""LONG-token windows gathered side by side per row once a comparison passes its first chunk: a
verbatim run of hundreds of tokens takes a few rounds of the extension loop, not one per LONG
tokens. Each window is clamped on its own, so one that starts in the trailing pad reads
separators, as the suffix does."""

SAMPLE = 64
"""Suffix-array ranks per sampled key (:class:`Levels`): a search narrowed by the keys starts on
about this many ranks. Halving it saves one step and doubles the keys' memory."""
LEVELS = 2
"""Sampled key levels; the second adds ~5 byte tokens (u8) to the 8 the first resolves. Measured on
the shared bench corpus (single drafts and batches): three or four levels narrow further but the
multi-probe rounds of the search absorb it, and each level costs 8 / SAMPLE bytes per token."""

_TORCH_DTYPES = {"u8": torch.uint8, "u16": torch.uint16, "u32": torch.int32}


def _open(path: Path, dtype: torch.dtype, count: int, device: torch.device) -> torch.Tensor:
    # torch.from_file(shared=False) maps the file copy-on-write: pages load lazily, nothing is copied.
    t = torch.from_file(str(path), shared=False, size=count, dtype=dtype)
    return t if device.type == "cpu" else t.to(device)


def read_header(root: Path) -> fmt.Header:
    """The header of an index directory, checked against its own checksum and for consistency.

    Raises :class:`InvalidIndexError` naming the problem; nothing else is read.
    """
    head = root / fmt.HEADER
    if not head.is_file():
        raise InvalidIndexError(
            f"{root} is not a redraft index (no {fmt.HEADER}); build one with `redraft index build` "
            "(an interrupted build leaves no header, so it never loads)"
        )
    if head.stat().st_size > fmt.MAX_HEADER_BYTES:
        raise InvalidIndexError(f"{head} is over {fmt.MAX_HEADER_BYTES:,} bytes; the index is corrupt. Rebuild it.")
    try:
        raw = json.loads(head.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidIndexError(f"{head} is not valid JSON; the index is corrupt. Rebuild it.") from exc
    if not isinstance(raw, dict):
        raise InvalidIndexError(f"{head} is not a JSON object; the index is corrupt. Rebuild it.")
    if raw.get("format") != fmt.FORMAT or raw.get("version") != fmt.VERSION:
        raise InvalidIndexError(
            f"{root} has format {raw.get('format')!r} v{raw.get('version')}; this redraft reads {fmt.FORMAT!r} "
            f"v{fmt.VERSION}. Rebuild the index with this version."
        )
    try:
        header = fmt.Header.model_validate(raw)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {}
        where = ".".join(str(x) for x in first.get("loc", ())) or "?"
        raise InvalidIndexError(
            f"{head} is corrupt: field {where}: {first.get('msg', exc)}. Rebuild the index."
        ) from exc
    if header.checksum != fmt.header_checksum(header):
        raise InvalidIndexError(
            f"{head} does not match its own checksum: the header was edited or damaged. Rebuild the index "
            "(a header cannot be edited by hand; every field is derived from the build)."
        )
    problems = fmt.check_consistency(header)
    if problems:
        raise InvalidIndexError(f"{head} contradicts itself: {'; '.join(problems)}. Rebuild the index.")
    return header


def check_files(root: Path, header: fmt.Header, *, hashes: bool) -> None:
    """Every file the header lists exists with its stated size (and sha256 when ``hashes``)."""
    expected = [(root / fmt.UNIGRAM, header.unigram)] + [
        (root / s.dir / name, info) for s in header.shards for name, info in s.files.items()
    ]
    for file, info in expected:
        size = file.stat().st_size if file.is_file() and not file.is_symlink() else -1
        if size != info.bytes:
            raise InvalidIndexError(
                f"{file} has {max(size, 0)} bytes but the header expects {info.bytes}: the index is truncated "
                "or was modified. Rebuild it."
            )
        if hashes and fmt.file_info(file).sha256 != info.sha256:
            raise InvalidIndexError(
                f"{file} does not match its sha256 in the header: the index is corrupt or tampered."
            )


SORTED_SEARCH = 8192
"""Queries from which a key lookup sorts them first: consecutive searches then share the cache
lines of the keys they pass (50,000 queries: 11 ms unsorted, 5 ms sorted with the sort)."""


def _search(keys: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``searchsorted`` ranks of ``key`` in ``keys`` from the left and from the right."""
    if key.numel() < SORTED_SEARCH:
        return torch.searchsorted(keys, key), torch.searchsorted(keys, key, right=True)
    ordered, order = torch.sort(key)
    left, right = torch.empty_like(key), torch.empty_like(key)
    left[order] = torch.searchsorted(keys, ordered)
    right[order] = torch.searchsorted(keys, ordered, right=True)
    return left, right


@dataclass(frozen=True)
class Levels:
    """Sorted int64 keys of every ``SAMPLE``-th suffix of a shard, in ``LEVELS`` levels, so that
    one ``searchsorted`` per level narrows a binary search to ~``SAMPLE`` ranks.

    Level 0 packs a suffix's first 64 bits of tokens big-endian (8 bytes, 4 u16 or 2 u32), its
    first token offset by half its range so that unsigned order is int64 order. Level ``l > 0``
    continues *within* a group of samples equal on every earlier level: its key is the group's
    first sample index in the high bits and the next tokens in the low ``payload_bits``, so the
    keys stay globally sorted and a query looks its group up with the index the previous level
    returned. Samples that start with the separator (the end of the suffix array: document starts
    and the trailing pad) all get the largest key: no query contains a separator, so all that
    matters is that they sort above every query, and a constant key keeps them sorted although
    their true order reads past the shard's end.

    Built from the suffix array on first use (~0.3 s per 100 M tokens on a 2-core CPU), held in
    memory on the index's device: ``8 * LEVELS / SAMPLE`` = 0.25 bytes per token.
    """

    keys: tuple[torch.Tensor, ...]
    """One ``(ceil(n / SAMPLE),)`` int64 tensor per level, each sorted: views of ``flat``."""
    flat: torch.Tensor
    """Every level's keys, one level after the other (what the compiled CPU search reads)."""
    ends: tuple[int, ...]
    """Per level: how many of a suffix's first tokens it and the levels before it resolve."""
    places: torch.Tensor
    """``(LEVELS, 1, ends[-1])`` int64: a token's place value in each level's key (0 outside it), so
    one multiply-and-sum packs every level; no product or sum overflows."""
    bits: int
    """Bits per token: 8, 16 or 32."""
    payload_bits: int
    """Low bits of a level-``l > 0`` key that hold tokens; the group index sits above them."""
    sample: int
    """Ranks per key: ``SAMPLE`` when the keys were built."""

    @classmethod
    def build(cls, shard: Shard, chunk: int = 1 << 16) -> Levels:
        dev = shard.tokens.device
        sample = SAMPLE
        ranks = torch.arange(0, shard.n, sample, device=dev)
        payload_bits = 63 - max(1, int(ranks.numel()).bit_length())
        bits = shard.token_bits
        counts = [64 // bits] + [payload_bits // bits] * (LEVELS - 1)
        ends = [sum(counts[: level + 1]) for level in range(LEVELS)]
        places = torch.zeros(LEVELS, 1, ends[-1], dtype=torch.int64)
        for level, (end, count) in enumerate(zip(ends, counts, strict=True)):
            for k in range(count):
                places[level, 0, end - count + k] = 1 << (bits * (count - 1 - k))
        empty = tuple(torch.empty(0, dtype=torch.int64, device=dev) for _ in ends)
        layout = cls(empty, empty[0], tuple(ends), places.to(dev), bits, payload_bits, sample)
        packed = torch.empty(LEVELS, ranks.numel(), dtype=torch.int64, device=dev)
        for a in range(0, ranks.numel(), chunk):
            window = shard.window(shard.sa(ranks[a : a + chunk]), LONG)[:, : ends[-1]].to(torch.int64)
            window = torch.where(window[:, :1] == shard.separator, shard.separator, window)
            packed[:, a : a + chunk] = layout.pack(window)
        for level in range(1, LEVELS):  # in place: packed becomes the keys, one row per level
            prev = packed[level - 1]
            starts = torch.ones_like(prev, dtype=torch.bool)
            starts[1:] = prev[1:] != prev[:-1]
            index = torch.arange(prev.numel(), device=dev)
            group = torch.cummax(torch.where(starts, index, 0), 0).values  # first sample of each group
            packed[level] += group << payload_bits
        return cls(tuple(packed.unbind(0)), packed.view(-1), layout.ends, layout.places, bits, payload_bits, sample)

    def pack(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(LEVELS, B)`` int64: each level's tokens of ``(B, ends[-1])`` int64 ``tokens``, packed
        (the group index of levels > 0 is added by the caller)."""
        tokens = tokens.clone()
        tokens[:, 0] -= 1 << (self.bits - 1)  # unsigned order as int64 order, and no overflow
        return (tokens * self.places).sum(2)

    def narrow(
        self, windows: torch.Tensor, start: torch.Tensor, length: torch.Tensor, n: int, upper: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds ``(lo, hi)`` on the rank :meth:`SuffixIndex._bisect` searches for, one per pattern:
        the suffix at ``lo`` is below the pattern (``-1``: none) and the one at ``hi`` is at or above
        it (``n``: none), ``>`` where ``upper`` is True, comparing ``length`` tokens.

        Args:
            windows: ``(N, L)`` token windows; row ``start[b]`` holds pattern ``b``'s first ``L``
                tokens (anything past its length), ``L`` at least ``ends[-1]``.
            start: ``(B,)`` each pattern's row in ``windows``.
            length: ``(B,)`` each pattern's length.
            upper: ``(B,)`` bool, which patterns search for their upper end.
        """
        dev = windows.device
        tokens = windows.index_select(0, start)[:, : self.ends[-1]].to(torch.int64)
        # A pattern that ends inside a level is padded with the smallest token (searching for the
        # first suffix >= it) or the largest (for the first suffix > it on its length).
        inside = torch.arange(self.ends[-1], device=dev) < length[:, None]
        pad = torch.where(upper, (1 << self.bits) - 1, 0)[:, None]
        packed = self.pack(torch.where(inside, tokens, pad))  # (LEVELS, B)
        lo, hi = torch.empty_like(length), torch.empty_like(length)
        rows = torch.arange(length.numel(), device=dev)  # patterns still equal to a group of samples
        key, level_length, level_upper = packed[0], length, upper
        for level, keys in enumerate(self.keys):
            level_short = level_length < self.ends[level]
            left, right = _search(keys, key)
            lo[rows] = torch.where(level_upper & level_short, right, left) - 1
            hi[rows] = torch.where(~level_upper & level_short, left, right)
            # Samples in [left, right) equal the pattern on every level so far: when the pattern is
            # longer than that, the next level decides between them (and only it needs searching).
            keep = torch.nonzero(~level_short & (right > left)).squeeze(1)
            if keep.numel() == 0 or level + 1 == len(self.keys):
                break
            rows = rows[keep]
            key = (left[keep] << self.payload_bits) + packed[level + 1, rows]
            level_length, level_upper = length[rows], upper[rows]
        samples = self.keys[0].numel()
        return torch.where(lo < 0, -1, lo * self.sample), torch.where(hi >= samples, n, hi * self.sample)


def local_positions(seq_start: torch.Tensor, flat: torch.Tensor) -> tuple[list[int], list[int]]:
    """For flat buffer positions, which sequence each lies in and its position inside it."""
    seq = torch.searchsorted(seq_start, flat, right=True) - 1
    return seq.tolist(), (flat - seq_start[seq]).tolist()


def range_max(values: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """``values[start[i] : start[i] + length[i]].max()`` for every i (lengths >= 1), from a sparse
    table of maxima over power-of-two windows: two lookups per range instead of a slice each.

    Example:
        >>> range_max(np.array([1.0, 5.0, 2.0, 4.0]), np.array([0, 2, 3]), np.array([2, 2, 1])).tolist()
        [5.0, 4.0, 4.0]
    """
    table = [values]
    while (2 << (len(table) - 1)) <= int(length.max(initial=1)):
        prev, half = table[-1], 1 << (len(table) - 1)
        table.append(np.maximum(prev[:-half], prev[half:]))
    level = np.log2(np.maximum(length, 1)).astype(np.int64)
    out = np.empty(start.size, dtype=values.dtype)
    for k in np.unique(level):  # at most log2 of the longest range
        pick = level == k
        row = table[k]
        out[pick] = np.maximum(row[start[pick]], row[start[pick] + length[pick] - (1 << k)])
    return out


class Shard:
    def __init__(self, root: Path, info: fmt.ShardInfo, header: fmt.Header, device: torch.device) -> None:
        d = root / info.dir
        self.info = info
        self.n = info.n_tokens  # separators and the trailing pad included
        self.tokens = _open(d / fmt.TOKENS, _TORCH_DTYPES[header.token_dtype], self.n, device)  # (n,)
        self.bits = info.sa_bits
        self.sa_words = _open(d / fmt.SA, torch.int32, info.files[fmt.SA].bytes // 4, device)  # packed (W,)
        self.sa_pairs = self.sa_words.unfold(0, 2, 1)  # (W - 1, 2): an entry spans at most two words
        self.docs = _open(d / fmt.DOCS, torch.int64, info.n_docs, device)  # (D,)
        self.width = fmt.prefix_width(header.token_dtype)
        self.separator = header.separator
        self.token_bits = self.tokens.element_size() * 8  # 8, 16 or 32
        self.base = header.separator + 1
        n_keys = self.base * (self.base + 1) if self.width == 2 else self.base
        self.prefix = _open(d / fmt.PREFIX, torch.int64, n_keys + 1, device)  # (K+1,)
        # Overlapping windows of CHUNK tokens: a row gather (index_select) reads a whole chunk per
        # query, ~8x faster than gathering CHUNK separate elements.
        self.windows = self.tokens.unfold(0, CHUNK, 1)  # (n - C + 1, C) view, no copy
        self.long_windows = self.tokens.unfold(0, LONG, 1)  # (n - L + 1, L) view, no copy
        self.meta_path = d / fmt.META
        self.meta_idx = np.fromfile(d / fmt.META_IDX, dtype="<u8")

    @functools.cached_property
    def levels(self) -> Levels:
        """The sampled keys that narrow every search (built on first use)."""
        return Levels.build(self)

    def sa(self, rank: torch.Tensor) -> torch.Tensor:
        """Suffix-array entries at ``rank`` (int64), unpacked from the bit stream."""
        bit = rank * self.bits
        # The two little-endian words, read as one int64, are the 64 bits from the entry's first
        # word on; a shift of at most 31 and the mask drop the sign the high word may carry.
        pair = self.sa_pairs.index_select(0, bit >> 5).view(torch.int64).squeeze(1)  # (B,)
        return (pair >> (bit & 31)) & ((1 << self.bits) - 1)

    def window(self, pos: torch.Tensor, width: int = CHUNK) -> torch.Tensor:
        """The ``width`` (CHUNK or LONG) tokens from each position, as int32 ``(B, width)``.
        Positions in the trailing pad read the last window, which is all separators too
        (PAD >= LONG >= CHUNK)."""
        windows = self.windows if width == CHUNK else self.long_windows
        return windows.index_select(0, pos.clamp(max=self.n - width)).to(torch.int32)

    def tok(self, pos: torch.Tensor) -> torch.Tensor:
        """Tokens at ``pos`` as int32. Reads past the end see the trailing pad (separators)."""
        return self.tokens[pos.clamp(max=self.n - 1)].to(torch.int32)

    @functools.cached_property
    def _meta_bytes(self) -> mmap.mmap:
        with self.meta_path.open("rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    @functools.lru_cache(maxsize=65536)  # noqa: B019  # shards live as long as their index
    def meta(self, doc: int) -> dict[str, Any]:
        start = int(self.meta_idx[doc])
        end = int(self.meta_idx[doc + 1]) if doc + 1 < self.meta_idx.size else len(self._meta_bytes)
        return dict(json.loads(self._meta_bytes[start:end]))


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small result objects: the objects
    hold no cycles, and collections triggered by their sheer number cost more than building them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
