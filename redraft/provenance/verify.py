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

import numpy as np
import torch

from redraft.provenance import format as fmt
from redraft.provenance.format import InvalidIndexError
from redraft.provenance.index import SuffixIndex
from redraft.provenance.order import _misordered, sampled_problems
from redraft.provenance.shard import Shard

__all__ = ["sampled_problems", "verify_index"]


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
    if not np.array_equal(stored, fmt.prefix_table(fmt.key_counts(tokens, header.token_dtype, header.separator))):
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
        >>> _ = build_index([d / "c.jsonl"], d / "idx")
        >>> verify_index(d / "idx")
        []
    """
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
