"""The suffix-order checks that an index load runs on a sample (:func:`sampled_problems`) and
``redraft index verify`` runs in full (:mod:`redraft.provenance.verify`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from redraft.provenance import format as fmt

if TYPE_CHECKING:
    from redraft.provenance.index import SuffixIndex
    from redraft.provenance.shard import Shard

SAMPLES = 256
"""Adjacent pairs checked per shard on load: a garbage array has ~half its pairs out of order,
so a random sample of 256 misses it with probability ~2^-256."""


def _tokens_at(shard: Shard, pos: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, width)`` int64 tokens from each position; past the shard's end reads -1, which sorts
    below every token, as a suffix that is a prefix of another sorts first."""
    cols = pos[:, None] + torch.arange(width, device=pos.device)
    inside = cols < shard.n
    out = shard.tokens[cols.clamp(max=shard.n - 1)].to(torch.int64)
    return torch.where(inside, out, torch.full_like(out, -1))


def _misordered(shard: Shard, first: torch.Tensor, second: torch.Tensor, max_tokens: int | None) -> torch.Tensor:
    """For suffix pairs ``(first[i], second[i])``, True where the first does not sort strictly
    before the second. Compares up to ``max_tokens`` tokens (all of them when ``None``); a pair
    still equal after that is not flagged."""
    bad = first == second
    undecided = ~bad
    offset = 0
    width = 64
    while bool(undecided.any()) and (max_tokens is None or offset < max_tokens):
        idx = torch.nonzero(undecided).squeeze(1)
        a = _tokens_at(shard, first[idx] + offset, width)
        b = _tokens_at(shard, second[idx] + offset, width)
        differ = a != b
        hit = differ.any(1)
        col = differ.to(torch.int8).argmax(1, keepdim=True)
        wrong = hit & (a.gather(1, col) > b.gather(1, col)).squeeze(1)
        bad[idx[wrong]] = True
        # Both suffixes ran past the end together: equal suffixes of different positions cannot
        # be (their lengths differ), so this only happens when offsets collide; stop there.
        ended = (first[idx] + offset + width >= shard.n) & (second[idx] + offset + width >= shard.n)
        undecided[idx[hit | ended]] = False
        offset += width
    return bad


def _prefix_problems(shard: Shard, ranks: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """True where the suffix at ``ranks`` lies outside its prefix-table block."""
    first = shard.tokens[pos].to(torch.int64)
    key = first
    if shard.width == 2:
        nxt = _tokens_at(shard, pos + 1, 1).squeeze(1)
        key = first * (shard.base + 1) + nxt + 1
    return (ranks < shard.prefix[key]) | (ranks >= shard.prefix[key + 1])


def _shard_sample(shard: Shard, samples: int, seed: int) -> list[str]:
    n = shard.n
    if n < 2:
        return []
    gen = torch.Generator().manual_seed(seed)
    ranks = torch.randint(0, n - 1, (min(samples, n - 1),), generator=gen).to(shard.tokens.device)
    p, q = shard.sa(ranks), shard.sa(ranks + 1)
    out_of_range = (p >= n) | (q >= n)
    if bool(out_of_range.any()):
        r = int(ranks[out_of_range.nonzero()[0, 0]])
        return [f"{shard.info.dir}: suffix-array entry near rank {r} points past the shard's {n} tokens"]
    bad = _misordered(shard, p, q, max_tokens=256)
    if bool(bad.any()):
        r = int(ranks[bad.nonzero()[0, 0]])
        return [f"{shard.info.dir}: suffixes at ranks {r} and {r + 1} are out of order"]
    outside = _prefix_problems(shard, ranks, p)
    if bool(outside.any()):
        r = int(ranks[outside.nonzero()[0, 0]])
        return [f"{shard.info.dir}: the prefix table does not contain rank {r}"]
    docs = shard.docs
    if bool((docs[1:] <= docs[:-1]).any()) or int(docs[0]) < 1 or int(docs[-1]) >= n - fmt.PAD:
        return [f"{shard.info.dir}: the document table is not increasing inside the shard"]
    return []


def sampled_problems(index: SuffixIndex, samples: int = SAMPLES) -> list[str]:
    """A cheap check run on every load: sampled adjacent suffix pairs are in order and inside
    their prefix-table block, and the document table is increasing. Deterministic per index
    (seeded by the header checksum), so a load never passes one time and fails the next."""
    seed = int(index.header.checksum[:12] or "0", 16)
    problems: list[str] = []
    for k, shard in enumerate(index.shards):
        problems += _shard_sample(shard, samples, seed + k)
    return problems
