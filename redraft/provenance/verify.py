"""Check that an index's arrays say what its header claims: the suffix array is sorted, the
document table points at documents, and the counts match the tokens.

Hashes prove only that files are the ones the header lists. Someone who rewrites the suffix
array and recomputes its hashes (or a bug in a foreign builder) produces an index that loads and
answers wrongly: a verbatim copy of the corpus scores 0. So :meth:`SuffixIndex.load` runs
:func:`sampled_problems` (a few hundred adjacent suffix pairs, milliseconds), and
``redraft index verify`` runs :func:`verify_index`, which checks everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from redraft.provenance import format as fmt

if TYPE_CHECKING:
    from redraft.provenance.index import Shard, SuffixIndex

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


def _full_shard(shard: Shard, header: fmt.Header, batch: int) -> list[str]:
    name, n = shard.info.dir, shard.n
    problems: list[str] = []
    tokens = shard.tokens.cpu().numpy()
    if int(tokens.max(initial=0)) > header.separator:
        problems.append(f"{name}: tokens.bin holds ids above the separator {header.separator}")
    if not bool((tokens[n - fmt.PAD :] == header.separator).all()):
        problems.append(f"{name}: tokens.bin does not end with {fmt.PAD} separators")
    # The suffix array must be a permutation of the positions...
    sa = torch.cat([shard.sa(torch.arange(a, min(a + batch, n))) for a in range(0, n, batch)])
    if int(sa.max()) >= n or int(sa.min()) < 0:
        problems.append(f"{name}: the suffix array points outside the shard")
        return problems
    if not bool((torch.bincount(sa, minlength=n) == 1).all()):
        problems.append(f"{name}: the suffix array is not a permutation of the shard's positions")
    # ...in strictly increasing suffix order...
    for a in range(0, n - 1, batch):
        ranks = torch.arange(a, min(a + batch, n - 1))
        bad = _misordered(shard, sa[ranks], sa[ranks + 1], max_tokens=None)
        if bool(bad.any()):
            r = int(ranks[bad.nonzero()[0, 0]])
            problems.append(f"{name}: suffixes at ranks {r} and {r + 1} are out of order")
            break
    # ...and the tables derived from the tokens match a recomputation.
    stored = shard.prefix.cpu().numpy().astype(np.uint64)
    if not np.array_equal(stored, fmt.prefix_table(tokens, header.token_dtype, header.separator)):
        problems.append(f"{name}: the prefix table does not match the tokens")
    docs = shard.docs.cpu().numpy()
    if docs.size and (np.any(docs[1:] <= docs[:-1]) or docs[0] < 1 or docs[-1] >= n - fmt.PAD):
        problems.append(f"{name}: the document table is not increasing inside the shard")
    elif docs.size and not bool((tokens[docs - 1] == header.separator).all()):
        problems.append(f"{name}: a document does not start right after a separator")
    elif int((tokens[: n - fmt.PAD] == header.separator).sum()) != shard.info.n_docs:
        problems.append(f"{name}: tokens.bin holds a different number of documents than docs.u64")
    problems += _meta_problems(shard)
    return problems


def _meta_problems(shard: Shard) -> list[str]:
    offsets = shard.meta_idx
    raw = shard.meta_path.read_bytes()
    name = shard.info.dir
    if offsets.size and (np.any(offsets[1:] <= offsets[:-1]) or int(offsets[-1]) >= len(raw) or offsets[0] != 0):
        return [f"{name}: meta.idx offsets are not increasing inside meta.jsonl"]
    for i, start in enumerate(offsets.tolist()):
        end = int(offsets[i + 1]) if i + 1 < offsets.size else len(raw)
        try:
            row = json.loads(raw[start:end])
        except ValueError:
            return [f"{name}: meta.jsonl line {i + 1} is not JSON"]
        if not isinstance(row, dict) or row.get("id") != shard.info.doc_base + i:
            return [f"{name}: meta.jsonl line {i + 1} does not describe document {shard.info.doc_base + i}"]
    return []


def verify_index(path: str | Path, *, batch: int = 1 << 20) -> list[str]:
    """Every problem of an index directory; empty when it is sound.

    Loads the index (header checksum, consistency, sizes, sha256, sampled order) and then checks
    in full that each suffix array is a sorted permutation, that the prefix table, unigram counts,
    document table and metadata match the tokens. Linear in the corpus, plus the cost of
    comparing repeated text.

    Example:
        >>> import tempfile, pathlib
        >>> from redraft.provenance import build_index
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "the cat sat on the mat"}\\n')
        >>> _ = build_index([d / "c.jsonl"], d / "idx", progress=False)
        >>> verify_index(d / "idx")
        []
    """
    from redraft.provenance.index import InvalidIndexError, SuffixIndex

    try:
        index = SuffixIndex.load(path)
    except InvalidIndexError as exc:
        return [str(exc)]
    problems: list[str] = []
    unigram = np.zeros(index.vocab_size, dtype=np.uint64)
    for shard in index.shards:
        problems += _full_shard(shard, index.header, batch)
        tokens = shard.tokens.cpu().numpy()[: shard.n - fmt.PAD]
        counts = np.bincount(tokens, minlength=index.header.separator + 1)
        counts[index.header.separator] -= shard.info.n_docs  # separators are not counted
        unigram += counts[: index.vocab_size].astype(np.uint64)
    if not np.array_equal(unigram, index.unigram.cpu().numpy().astype(np.uint64)):
        problems.append("unigram.u64 does not match the token counts")
    return problems
