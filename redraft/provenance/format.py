"""The on-disk format of a redraft suffix index (version 2). No pickle anywhere.

::

    INDEX/
      header.json            format, version, tokenizer identity, dtypes, shard list, sizes + sha256
                             of every file, and ``checksum``: the sha256 of the header itself
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
                             with key k (Prov-Decode's one-token steps; the order checks)
        meta.jsonl           one JSON object per document: its metadata fields (everything but text)
        meta.idx             uint64 byte offset of each meta.jsonl line, for lazy lookup
      shard-00001/ ...

A build writes everything into a temporary sibling directory and renames it into place last,
so an interrupted build leaves nothing that loads. ``header.json`` carries the size and sha256 of
every file; ``SuffixIndex.load`` refuses a truncated or tampered index.

An index is an untrusted file. Loading checks, before any tensor is read:

* the header's own ``checksum``, so a hand-edited field (a lowered ``n_tokens`` or ``sa_bits``)
  is refused even when the files are intact;
* :func:`check_consistency`: every size the header states follows from the others (tokens, bits,
  documents, vocabulary), so the reader never indexes past a file;
* every file's size and (by default) sha256;
* a sampled suffix-order check (:mod:`redraft.provenance.verify`), because hashes recomputed over
  a garbage suffix array are consistent but the answers would be wrong.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from redraft.errors import InputError
from redraft.provenance.tokenizers import TokenizerInfo


class InvalidIndexError(InputError):
    """An index directory that cannot be loaded: not an index, another format version, corrupt or tampered."""


FORMAT = "redraft-suffix-index"
VERSION = 2
"""2: the header carries its own checksum (v1 headers are refused with a rebuild hint)."""
HEADER = "header.json"
MAX_HEADER_BYTES = 64 << 20
"""The largest header read: kilobytes per shard, so this is a damaged or hostile file."""
UNIGRAM = "unigram.u64"
TOKENS, SA, DOCS, META, META_IDX, PREFIX = "tokens.bin", "sa.bin", "docs.u64", "meta.jsonl", "meta.idx", "prefix.u64"
PAD = 32
"""Separators appended to each shard; must be at least the query chunk size."""

CorpusKind = Literal["false-claims", "unsafe", "copyrighted", "private", "other"]
"""What a belief corpus's documents are. The BCI critic's feedback follows it: a match with a
known false claim is fixed by saying what is true, unsafe text by declining, copyrighted text by
paraphrase or attributed quotation (the only kind where rephrasing is the fix), private text by
removing it."""
CORPUS_KINDS: tuple[CorpusKind, ...] = ("false-claims", "unsafe", "copyrighted", "private", "other")

TokenDtype = Literal["u8", "u16", "u32"]
NUMPY_DTYPES: dict[str, Any] = {
    "u8": np.uint8,
    "u16": np.dtype("<u2"),
    "u32": np.dtype("<u4"),
    "i32": np.dtype("<i4"),
    "i64": np.dtype("<i8"),
}


# Headers are read from untrusted directories: unknown fields are refused, counts are bounded.
_STRICT = ConfigDict(frozen=True, extra="forbid")
SHARD_FILES = (TOKENS, SA, DOCS, PREFIX, META, META_IDX)


class FileInfo(BaseModel):
    model_config = _STRICT

    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ShardInfo(BaseModel):
    model_config = _STRICT

    dir: str = Field(pattern=r"^shard-[0-9]{5}$")
    """A plain child name: a header cannot point the reader outside the index directory."""
    n_tokens: int = Field(ge=1, lt=2**32)
    """Tokens in tokens.bin, separators included."""
    n_docs: int = Field(ge=1)
    doc_base: int = Field(ge=0)
    """Global id of the shard's first document."""
    sa_bits: int = Field(ge=1, le=32)
    """Bits per packed suffix-array entry."""
    files: dict[str, FileInfo]


class Header(BaseModel):
    model_config = _STRICT

    format: str = FORMAT
    version: int = VERSION
    tokenizer: TokenizerInfo
    token_dtype: TokenDtype
    separator: int = Field(ge=0)
    n_tokens: int = Field(ge=0)
    """Corpus tokens, separators excluded."""
    n_docs: int = Field(ge=0)
    shards: list[ShardInfo]
    unigram: FileInfo
    build: dict[str, Any]
    kind: CorpusKind = "other"
    """What the corpus's documents are (``redraft index build --kind``). Headers written before
    the field existed read as ``other``, and their checksum is checked without it."""
    checksum: str = ""
    """sha256 of this header with ``checksum`` empty (:func:`header_checksum`)."""

    def sealed(self) -> Header:
        """This header with its checksum filled in (what a build writes)."""
        return self.model_copy(update={"checksum": header_checksum(self)})


def header_checksum(header: Header) -> str:
    """sha256 of the header's canonical JSON with ``checksum`` left out (and ``kind`` when it is
    the default, so headers sealed before ``kind`` existed still verify)."""
    exclude = {"checksum"} if "kind" in header.model_fields_set else {"checksum", "kind"}
    return hashlib.sha256(header.model_dump_json(exclude=exclude).encode()).hexdigest()


def sa_words(n: int, bits: int) -> int:
    """uint32 words :func:`pack_bits` writes for ``n`` entries of ``bits`` bits (blocks of 32
    entries fill ``bits`` words; one spare word)."""
    return -(-n // 32) * bits + 1


def prefix_entries(token_dtype: str, separator: int) -> int:
    """Entries of the prefix table: one boundary per key, plus the end."""
    base = separator + 1
    return (base * (base + 1) if prefix_width(token_dtype) == 2 else base) + 1


def check_consistency(header: Header) -> list[str]:
    """Every way the header contradicts itself; empty when consistent.

    Each size the reader relies on must follow from the others, so that a lied-about field is
    caught here instead of making a query read past a file or answer from the wrong range.

    Example:
        >>> from redraft.provenance.tokenizers import ByteTokenizer
        >>> h = Header(tokenizer=ByteTokenizer.info, token_dtype="u8", separator=255, n_tokens=0,
        ...            n_docs=0, shards=[], unigram=FileInfo(bytes=0, sha256="0" * 64), build={})
        >>> check_consistency(h)
        ['the index has no shards', 'unigram.u64 has 0 bytes; 256 tokens of vocabulary need 2048']
    """
    problems: list[str] = []
    tok = header.tokenizer
    expected_sep = tok.vocab_size - 1 if tok.kind == "bytes" else tok.vocab_size
    if header.separator != expected_sep:
        problems.append(f"separator {header.separator} should be {expected_sep} for a {tok.kind} tokenizer")
    if header.token_dtype != token_dtype_for(header.separator):
        problems.append(f"token_dtype {header.token_dtype} does not fit separator {header.separator}")
    if not header.shards:
        problems.append("the index has no shards")
    if header.unigram.bytes != 8 * tok.vocab_size:
        problems.append(
            f"unigram.u64 has {header.unigram.bytes} bytes; {tok.vocab_size} tokens of vocabulary need "
            f"{8 * tok.vocab_size}"
        )
    item = np.dtype(NUMPY_DTYPES[header.token_dtype]).itemsize
    docs = tokens = 0
    for i, s in enumerate(header.shards):
        where = f"shard {i} ({s.dir})"
        if s.dir != f"shard-{i:05d}":
            problems.append(f"{where} should be named shard-{i:05d}")
        if s.doc_base != docs:
            problems.append(f"{where} starts at document {s.doc_base}, but the shards before it hold {docs}")
        if s.sa_bits != sa_bits(s.n_tokens):
            problems.append(f"{where} has sa_bits {s.sa_bits}; {s.n_tokens} tokens need {sa_bits(s.n_tokens)}")
        corpus_tokens = s.n_tokens - s.n_docs - PAD
        if corpus_tokens < s.n_docs:
            problems.append(f"{where} has {s.n_tokens} tokens, too few for {s.n_docs} documents")
        if set(s.files) != set(SHARD_FILES):
            problems.append(f"{where} lists files {sorted(s.files)}; expected {sorted(SHARD_FILES)}")
            continue
        sizes = {
            TOKENS: s.n_tokens * item,
            SA: 4 * sa_words(s.n_tokens, s.sa_bits),
            DOCS: 8 * s.n_docs,
            META_IDX: 8 * s.n_docs,
            PREFIX: 8 * prefix_entries(header.token_dtype, header.separator),
        }
        for name, size in sizes.items():
            if s.files[name].bytes != size:
                problems.append(f"{where}: {name} is listed at {s.files[name].bytes} bytes; it must be {size}")
        docs += s.n_docs
        tokens += corpus_tokens
    if header.shards and header.n_docs != docs:
        problems.append(f"n_docs is {header.n_docs}, but the shards hold {docs} documents")
    if header.shards and header.n_tokens != tokens:
        problems.append(f"n_tokens is {header.n_tokens}, but the shards hold {tokens} corpus tokens")
    return problems


def prefix_width(token_dtype: str) -> int:
    """Tokens in the prefix-table key: two bytes for u8 (65,536 keys), one token otherwise."""
    return 2 if token_dtype == "u8" else 1


def key_counts(tokens: np.ndarray, token_dtype: str, separator: int) -> np.ndarray:
    """Positions per prefix key of a shard's tokens, int64, in one pass. A key is a token (u16 and
    u32 tokens) or, for byte tokens, the pair ``first * (separator + 2) + second + 1`` with
    ``second`` = -1 past the end, so keys sort like suffixes.

    Example:
        >>> key_counts(np.array([1, 0, 1], dtype=np.uint8), "u16", 2).tolist()
        [1, 2, 0]
    """
    from redraft.provenance.kernel import key_counts as count  # numba: only builds and checks need it

    counts: np.ndarray = count(np.ascontiguousarray(tokens), separator + 1, prefix_width(token_dtype) == 2)
    return counts


def prefix_table(counts: np.ndarray) -> np.ndarray:
    """Rank boundaries of each prefix key, from :func:`key_counts`. Suffixes sort by key, so the
    first rank of key k is the number of positions whose key is below k: a sequential count, no
    gather through the suffix array."""
    out: np.ndarray = np.concatenate([[0], np.cumsum(counts)]).astype("<u8")
    return out


def token_counts(counts: np.ndarray, token_dtype: str, separator: int) -> np.ndarray:
    """Occurrences of each token id up to the separator, from :func:`key_counts` (a pair key's
    first token is its token)."""
    base = separator + 1
    out: np.ndarray = counts.reshape(base, base + 1).sum(1) if prefix_width(token_dtype) == 2 else counts
    return out


def sa_bits(n: int) -> int:
    """Bits per suffix-array entry for a shard of ``n`` tokens (at least 1, at most 32 here: shards
    above 2^32 tokens are not supported; use more shards)."""
    return max(1, (n - 1).bit_length())


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack non-negative integers below 2^bits into a little-endian uint32 bit stream (+1 spare word).

    Entry i occupies bits ``[i * bits, (i + 1) * bits)`` of the stream; the stream is padded to a
    whole block of 32 entries (which fill exactly ``bits`` words).

    Example:
        >>> unpack_bits(pack_bits(np.arange(70), 7), 7, 70).tolist() == list(range(70))
        True
    """
    from redraft.provenance.kernel import pack_into  # numba: only builds need it

    out = np.zeros(sa_words(values.size, bits), dtype="<u4")
    pack_into(np.ascontiguousarray(values), bits, out)
    return out


def write_packed(values: np.ndarray, bits: int, path: Path, chunk: int = 1 << 22) -> FileInfo:
    """:func:`pack_bits` of ``values`` written to ``path`` and described, chunk by chunk: while a
    worker thread hashes and writes one chunk's words, the next chunk packs (both release the GIL),
    so a build spends about the hash's time after its suffix sort, not pack + hash + write."""
    from redraft.provenance.kernel import pack_into

    step = chunk - chunk % 32  # a whole number of blocks: every chunk starts on a word
    digest, size = hashlib.sha256(), 0

    def emit(words: np.ndarray, f: BinaryIO) -> None:
        digest.update(words.data)
        f.write(words.data)

    with path.open("wb") as f, ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        for a in range(0, values.size, step):
            part = np.ascontiguousarray(values[a : a + step])
            words = np.zeros(sa_words(part.size, bits) - 1, dtype="<u4")
            pack_into(part, bits, words)
            if pending is not None:
                pending.result()
            pending = pool.submit(emit, words, f)
            size += words.nbytes
        if pending is not None:
            pending.result()
        emit(np.zeros(1, dtype="<u4"), f)  # the spare word: an entry's read spans two words
    return FileInfo(bytes=size + 4, sha256=digest.hexdigest())


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
