"""The on-disk format of a redraft suffix index (version 1). No pickle anywhere.

::

    INDEX/
      header.json            format, version, tokenizer identity, dtypes, shard list, sizes + sha256
      unigram.u64            uint64 count of every token id over the whole corpus (separators excluded)
      shard-00000/
        tokens.bin           token ids, little-endian u8 / u16 / u32; each document is preceded by
                             one separator token, so no match can cross a document boundary, and
                             the shard ends with PAD separators, so a query may read a fixed-size
                             chunk past any mismatch without bounds checks
        sa.bin               suffix array over tokens.bin, bit-packed: entry i is the little-endian
                             bit field [i·w, (i+1)·w) of a stream of uint32 words, w = bits needed
                             for the largest position (27 for 100 M tokens), plus one spare word;
                             suffixes sort by numeric token value, and a suffix that is a prefix
                             of another sorts first
        docs.u64             uint64 position in tokens.bin of each document's first token
        prefix.u64           uint64 suffix-array boundaries of every first-PREFIX-token key (two
                             tokens for u8, one otherwise): ranks [prefix[k], prefix[k+1]) start
                             with key k, so a query skips the first ~16 binary-search steps
        meta.jsonl           one JSON object per document: its metadata fields (everything but text)
        meta.idx             uint64 byte offset of each meta.jsonl line, for lazy lookup
      shard-00001/ ...

A build writes everything into a temporary sibling directory and renames it into place last,
so an interrupted build leaves nothing that loads. ``header.json`` carries the size and sha256 of
every file; ``SuffixIndex.load`` refuses a truncated or tampered index.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from redraft.provenance.tokenizers import TokenizerInfo

FORMAT = "redraft-suffix-index"
VERSION = 1
HEADER = "header.json"
UNIGRAM = "unigram.u64"
TOKENS, SA, DOCS, META, META_IDX, PREFIX = "tokens.bin", "sa.bin", "docs.u64", "meta.jsonl", "meta.idx", "prefix.u64"
PAD = 32
"""Separators appended to each shard; must be at least the query chunk size."""

TokenDtype = Literal["u8", "u16", "u32"]
SADtype = Literal["i32", "i64"]
NUMPY_DTYPES: dict[str, Any] = {
    "u8": np.uint8,
    "u16": np.dtype("<u2"),
    "u32": np.dtype("<u4"),
    "i32": np.dtype("<i4"),
    "i64": np.dtype("<i8"),
}


class FileInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    bytes: int
    sha256: str


class ShardInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    dir: str
    n_tokens: int
    """Tokens in tokens.bin, separators included."""
    n_docs: int
    doc_base: int
    """Global id of the shard's first document."""
    sa_bits: int
    """Bits per packed suffix-array entry."""
    files: dict[str, FileInfo]


class Header(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: str = FORMAT
    version: int = VERSION
    tokenizer: TokenizerInfo
    token_dtype: TokenDtype
    separator: int
    n_tokens: int
    """Corpus tokens, separators excluded."""
    n_docs: int
    shards: list[ShardInfo]
    unigram: FileInfo
    build: dict[str, Any]


def prefix_width(token_dtype: str) -> int:
    """Tokens in the prefix-table key: two bytes for u8 (65,536 keys), one token otherwise."""
    return 2 if token_dtype == "u8" else 1


def prefix_keys(first: np.ndarray, second: np.ndarray | None, base: int) -> np.ndarray:
    """Key of a (first, second) token pair; ``second`` is -1 past the end, so keys sort like suffixes."""
    # int32 whenever the keys fit (two byte tokens: < 66,000): half the memory traffic of int64.
    dtype = np.int32 if (base + 1) ** 2 < 2**31 else np.int64
    keys: np.ndarray = first.astype(dtype)
    if second is not None:
        keys = keys * (base + 1) + (second.astype(dtype) + 1)
    return keys


def sa_bits(n: int) -> int:
    """Bits per suffix-array entry for a shard of ``n`` tokens (at least 1, at most 32 here: shards
    above 2^32 tokens are not supported; use more shards)."""
    return max(1, (n - 1).bit_length())


def pack_bits(values: np.ndarray, bits: int, chunk: int = 1 << 22) -> np.ndarray:
    """Pack non-negative integers below 2^bits into a little-endian uint32 bit stream (+1 spare word).

    32 entries of ``bits`` bits fill exactly ``bits`` words, so the stream is built block-wise with
    one vectorized pass per slot of a block, ``chunk`` entries at a time to bound memory.

    Example:
        >>> unpack_bits(pack_bits(np.arange(70), 7), 7, 70).tolist() == list(range(70))
        True
    """
    starts = range(0, values.size, chunk)
    # numpy releases the GIL in these loops, so chunks pack in parallel on the available cores.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda i: _pack_chunk(values[i : i + chunk], bits), starts))
    return np.concatenate([*parts, np.zeros(1, dtype="<u4")])


def _pack_chunk(values: np.ndarray, bits: int) -> np.ndarray:
    blocks = -(-values.size // 32)
    flat = np.zeros(blocks * 32, dtype=np.uint32)
    flat[: values.size] = values
    slots = np.ascontiguousarray(flat.reshape(blocks, 32).T)  # (32, blocks): one contiguous row per slot
    out = np.zeros((bits, blocks), dtype=np.uint32)
    # uint32 arithmetic: a left shift drops the bits that belong to the next word, which the
    # right shift then supplies. 32·bits bits end exactly on a word boundary, so nothing spills
    # past the block.
    for slot in range(32):
        word, shift = divmod(slot * bits, 32)
        out[word] |= slots[slot] << np.uint32(shift)
        if shift + bits > 32:
            out[word + 1] |= slots[slot] >> np.uint32(32 - shift)
    return np.ascontiguousarray(out.T).reshape(-1).astype("<u4", copy=False)


def unpack_bits(words: np.ndarray, bits: int, n: int) -> np.ndarray:
    """Inverse of :func:`pack_bits` (numpy; the index reads entries with the same formula in torch)."""
    pos = np.arange(n, dtype=np.uint64) * np.uint64(bits)
    w = (pos >> np.uint64(5)).astype(np.int64)
    pair = words[w].astype(np.uint64) | (words[w + 1].astype(np.uint64) << np.uint64(32))
    out: np.ndarray = ((pair >> (pos & np.uint64(31))) & np.uint64((1 << bits) - 1)).astype(np.int64)
    return out


def token_dtype_for(max_id: int) -> TokenDtype:
    """The narrowest dtype holding every id up to ``max_id`` (the separator included)."""
    if max_id < 2**8:
        return "u8"
    if max_id < 2**16:
        return "u16"
    return "u32"


def write_array(array: np.ndarray, path: Path) -> FileInfo:
    """Write an array's raw bytes and describe them, hashing from memory instead of re-reading."""
    array = np.ascontiguousarray(array)
    array.tofile(path)
    return FileInfo(bytes=array.nbytes, sha256=hashlib.sha256(array.view(np.uint8).data).hexdigest())


def file_info(path: Path) -> FileInfo:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return FileInfo(bytes=path.stat().st_size, sha256=digest.hexdigest())
