"""Build a suffix index from a corpus: JSONL documents or plain text files → an index directory.

Two suffix-array builders give identical arrays (tested):

* ``divsufsort`` (default on CPU): the libdivsufsort C library through ``pydivsufsort``.
* ``torch``: prefix doubling written in torch, for building on a GPU; the same code runs on the
  CPU, which is how tests compare it with the library.

The format is documented in :mod:`redraft.provenance.format`.

Over 400 lines because a build is one resumable pipeline (tokenize, shard, sort, verify, seal)
whose steps share its staging directory and progress reporting; split, each would re-derive them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redraft._atomic import atomic_dir, remove_stale
from redraft._progress import Progress, Reporter, reporter
from redraft._version import __version__
from redraft.errors import InputError
from redraft.provenance import format as fmt
from redraft.provenance.tokenizers import ByteTokenizer, HFTokenizer, TokenizerInfo

Builder = str
"""A key of :data:`BUILDERS` (checked with :func:`check_builder`)."""
DEFAULT_SHARD_TOKENS = 1 << 30


# -- suffix-array builders -------------------------------------------------------------------------


def torch_suffix_array(tokens: torch.Tensor) -> torch.Tensor:
    """Suffix array of a 1-D integer tensor by prefix doubling, on the tensor's device.

    Each round sorts suffixes by (rank of the first k tokens, rank of the next k tokens) and
    re-ranks; after ⌈log2(longest repeat)⌉ rounds all ranks are distinct and the order is the
    suffix array. A suffix running off the end ranks below every token, so a suffix that is a
    prefix of another sorts first, as in libdivsufsort.

    Example:
        >>> torch_suffix_array(torch.tensor(list(b"banana"))).tolist()
        [5, 3, 1, 0, 4, 2]
    """
    n = tokens.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=tokens.device)
    _, rank = torch.unique(tokens.to(torch.int64), return_inverse=True)  # (n,) dense ranks
    rank = rank + 1  # 0 is reserved for "past the end"
    k = 1
    while True:
        second = torch.zeros_like(rank)  # (n,)
        if k < n:
            second[: n - k] = rank[k:]
        key = rank * (n + 1) + second  # (n,) fits int64 for n < 3e9
        order = torch.argsort(key, stable=True)  # (n,)
        sorted_key = key[order]
        new_group = torch.ones(n, dtype=torch.int64, device=tokens.device)
        new_group[1:] = (sorted_key[1:] != sorted_key[:-1]).to(torch.int64)
        rank = torch.empty_like(rank)
        rank[order] = torch.cumsum(new_group, 0)
        if int(rank.max()) == n or k >= n:
            return order
        k *= 2


def _divsufsort(tokens: np.ndarray, device: str) -> np.ndarray:
    from pydivsufsort import divsufsort

    # pydivsufsort refuses read-only arrays (e.g. np.frombuffer): copy only those.
    data = tokens if tokens.flags.writeable and tokens.flags.c_contiguous else tokens.copy()
    return np.asarray(divsufsort(data))


def _torch(tokens: np.ndarray, device: str) -> np.ndarray:
    return torch_suffix_array(torch.from_numpy(tokens.astype(np.int64)).to(device)).cpu().numpy()


BUILDERS: dict[str, Callable[[np.ndarray, str], np.ndarray]] = {"divsufsort": _divsufsort, "torch": _torch}
"""Suffix-array builders by name: ``divsufsort`` (the CPU library) and ``torch`` (prefix doubling, any device)."""


def check_builder(builder: str) -> None:
    """Raise an error listing the known builders if ``builder`` is not one."""
    if builder not in BUILDERS:
        raise InputError(f"unknown builder {builder!r}; known builders: {', '.join(BUILDERS)}")


def suffix_array(tokens: np.ndarray, builder: Builder = "divsufsort", device: str = "cpu") -> np.ndarray:
    """Suffix array of ``tokens`` as int32 (int64 from 2^31 tokens).

    Example:
        >>> suffix_array(np.array([2, 1, 2, 1], dtype=np.uint16)).tolist()
        [3, 1, 2, 0]
    """
    check_builder(builder)
    return BUILDERS[builder](tokens, device).astype(np.int32 if tokens.size < 2**31 else np.int64, copy=False)


# -- reading a corpus -------------------------------------------------------------------------------


@dataclass
class CorpusStats:
    docs: int = 0
    empty_docs: int = 0
    invalid_utf8_docs: int = 0
    sources: list[str] = field(default_factory=list)


def _decode(raw: bytes, stats: CorpusStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8_docs += 1
        return raw.decode("utf-8", errors="replace")


def _files(sources: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"corpus source {path} does not exist; pass JSONL files, text files or directories")
    if not files:
        raise InputError(f"the corpus is empty: no files under {', '.join(map(str, sources))}")
    return files


def iter_documents(
    files: Sequence[Path], stats: CorpusStats, text_field: str = "text", progress: Reporter | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (text, metadata) per document. JSONL: one object per line with a ``text_field``;
    any other file: the whole file is one document with metadata ``{"path": ...}``.

    Invalid UTF-8 is replaced with U+FFFD and counted in ``stats`` (reported by the build).
    """
    report, total, read = reporter(progress), sum(f.stat().st_size for f in files), 0
    for path in files:
        stats.sources.append(str(path))
        if path.suffix == ".jsonl":
            with path.open("rb") as f:
                for n, raw in enumerate(f, start=1):
                    read += len(raw)
                    if n % 1024 == 0:  # a report per line would cost more than the line
                        report(Progress("reading", read, total, unit="bytes"))
                    if not raw.strip():
                        continue
                    try:
                        row = json.loads(_decode(raw, stats))
                    except (json.JSONDecodeError, RecursionError) as exc:
                        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                        raise InputError(f"{path}:{n} is not valid JSON ({msg})") from exc
                    if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                        raise InputError(
                            f"{path}:{n} has no string field {text_field!r}; every JSONL line needs one "
                            f"(or pass text_field=... / --text-field)"
                        )
                    text = row.pop(text_field)
                    yield text, row
            report(Progress("reading", read, total, unit="bytes"))
        else:
            raw_bytes = path.read_bytes()
            read += len(raw_bytes)
            report(Progress("reading", read, total, unit="bytes"))
            yield _decode(raw_bytes, stats), {"path": str(path)}


# -- writing shards ---------------------------------------------------------------------------------


class _ShardWriter:
    def __init__(
        self, root: Path, info: TokenizerInfo, separator: int, token_dtype: str, builder: Builder, device: str
    ) -> None:
        self.root, self.info, self.separator, self.builder, self.device = root, info, separator, builder, device
        self.token_dtype = token_dtype
        self.np_dtype = fmt.NUMPY_DTYPES[token_dtype]
        self.shards: list[fmt.ShardInfo] = []
        self.unigram = np.zeros(info.vocab_size, dtype=np.uint64)
        self.n_tokens = 0
        self.n_docs = 0
        self._reset()

    def _reset(self) -> None:
        self.pieces: list[np.ndarray] = []
        self.metas: list[dict[str, Any]] = []
        self.size = 0

    def add(self, ids: np.ndarray, meta: dict[str, Any]) -> None:
        self.pieces.append(ids.astype(self.np_dtype, copy=False))
        self.metas.append(meta)
        self.size += ids.size + 1

    def flush(self) -> None:
        if not self.pieces:
            return
        lengths = np.array([p.size for p in self.pieces], dtype=np.int64)
        n = int(lengths.sum()) + len(self.pieces) + fmt.PAD
        if n >= 2**32:
            raise InputError(f"a shard of {n} tokens is too large; pass a smaller shard_tokens (< 2^32)")
        tokens = np.full(n, self.separator, dtype=self.np_dtype)  # separators everywhere, then fill
        # Document i starts right after its separator.
        starts = np.cumsum(lengths + 1) - lengths
        for p, a in zip(self.pieces, starts.tolist(), strict=True):
            tokens[a : a + p.size] = p
        bits = fmt.sa_bits(n)
        name = f"shard-{len(self.shards):05d}"
        d = self.root / name
        d.mkdir()
        files: dict[str, fmt.FileInfo] = {}
        # The suffix sort runs in C without the GIL: everything else is done while it runs.
        with ThreadPoolExecutor(max_workers=1) as pool:
            sa = pool.submit(suffix_array, tokens, self.builder, self.device)
            keys = fmt.key_counts(tokens, self.token_dtype, self.separator)
            counts = fmt.token_counts(keys, self.token_dtype, self.separator).copy()
            counts[self.separator] -= len(self.pieces) + fmt.PAD  # separators are not counted
            self.unigram += counts[: self.info.vocab_size].astype(np.uint64)
            files[fmt.TOKENS] = fmt.write_array(tokens, d / fmt.TOKENS)
            files[fmt.DOCS] = fmt.write_array(starts.astype("<u8"), d / fmt.DOCS)
            files[fmt.PREFIX] = fmt.write_array(fmt.prefix_table(keys), d / fmt.PREFIX)
            offsets, lines = [], []
            size = 0
            for i, meta in enumerate(self.metas):
                line = json.dumps({"id": self.n_docs + i, **meta}, ensure_ascii=False).encode() + b"\n"
                offsets.append(size)
                lines.append(line)
                size += len(line)
            (d / fmt.META).write_bytes(b"".join(lines))
            files[fmt.META] = fmt.file_info(d / fmt.META)
            files[fmt.META_IDX] = fmt.write_array(np.array(offsets, dtype="<u8"), d / fmt.META_IDX)
            files[fmt.SA] = fmt.write_packed(sa.result(), bits, d / fmt.SA)
        self.shards.append(
            fmt.ShardInfo(
                dir=name,
                n_tokens=int(tokens.size),
                n_docs=len(self.pieces),
                doc_base=self.n_docs,
                sa_bits=bits,
                files=files,
            )
        )
        self.n_docs += len(self.pieces)
        self.n_tokens += int(lengths.sum())
        self._reset()


def build_index(
    sources: Sequence[str | Path],
    out: str | Path,
    tokenizer: ByteTokenizer | HFTokenizer | None = None,
    *,
    text_field: str = "text",
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    builder: Builder = "divsufsort",
    device: str = "cpu",
    force: bool = False,
    progress: Reporter | None = None,
    kind: fmt.CorpusKind = "other",
) -> fmt.Header:
    """Build an index directory from JSONL / text files.

    Args:
        sources: JSONL files (``text_field`` + any metadata), text files, or directories of them.
        out: the index directory to create.
        tokenizer: ``ByteTokenizer()`` (default) or an ``HFTokenizer`` (the critic's LLM's).
        shard_tokens: start a new shard past this many tokens, so corpora larger than memory
            build shard by shard; queries merge over shards.
        builder: ``divsufsort`` (CPU library) or ``torch`` (prefix doubling, for GPUs).
        force: replace an existing index at ``out``. Only a redraft index is ever replaced, and
            never one that holds a corpus input; the new index is renamed in before the old one
            is deleted.
        kind: what the documents are (``false-claims``, ``unsafe``, ``copyrighted``,
            ``private`` or ``other``), stored in the header; the BCI critic's feedback follows it.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "the cat sat", "title": "cats"}\\n')
        >>> build_index([d / "c.jsonl"], d / "idx").n_docs
        1
    """
    tok = tokenizer or ByteTokenizer()
    files = _files(sources)
    stats = CorpusStats()

    def documents() -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        for text, meta in iter_documents(files, stats, text_field, progress):
            if isinstance(tok, ByteTokenizer):
                yield tok.encode_array(text), meta
            else:
                yield np.asarray(tok.encode(text), dtype=np.int64), meta

    return _write_index(
        documents(), out, files, tok.info, tok.separator, stats, shard_tokens, builder, device, force, kind
    )


def build_from_token_ids(
    documents: Iterable[tuple[Sequence[int] | np.ndarray, dict[str, Any]]],
    out: str | Path,
    *,
    vocab_size: int,
    name: str = "pretokenized",
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    builder: Builder = "divsufsort",
    device: str = "cpu",
    force: bool = False,
    kind: fmt.CorpusKind = "other",
) -> fmt.Header:
    """Build an index from documents already tokenized elsewhere (ids in ``[0, vocab_size)``).

    The separator is ``vocab_size``; queries must use the same tokenization.
    """
    info = TokenizerInfo(kind="pretokenized", name=name, vocab_size=vocab_size, vocab_hash=name)

    def checked() -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
        for n, (ids, meta) in enumerate(documents):
            arr = np.asarray(ids)  # keep the caller's integer dtype: no copy for large corpora
            if arr.size == 0:
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iu":
                raise InputError(f"document {n} has {arr.dtype} token ids; token ids must be integers")
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= vocab_size):
                raise InputError(f"document {n} has token ids outside [0, {vocab_size})")
            yield arr, meta

    return _write_index(checked(), out, (), info, vocab_size, CorpusStats(), shard_tokens, builder, device, force, kind)


def is_index_dir(path: Path) -> bool:
    """True for a real directory whose header names the redraft index format (any version)."""
    head = path / fmt.HEADER
    if path.is_symlink() or not path.is_dir() or not head.is_file():
        return False
    try:
        return bool(json.loads(head.read_bytes()).get("format") == fmt.FORMAT)
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def _check_output(out: Path, inputs: Sequence[Path], force: bool) -> None:
    """Refuse an output that would destroy something that is not a redraft index."""
    target = out.resolve()
    for f in inputs:
        src = f.resolve()
        if src == target or target in src.parents:
            raise InputError(f"the output {out} is or holds the corpus input {f}; write the index to a new directory")
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise InputError(f"{out} already exists; pass force=True (--force) to replace it")
    if not is_index_dir(out):
        raise InputError(
            f"{out} exists and is not a redraft index, so --force will not replace it (it replaces only an "
            "index directory). Choose another output path, or move it away yourself."
        )


def _remove_stale(out: Path) -> list[Path]:
    """Delete temporary directories that a killed build of ``out`` left behind, with a warning
    (a concurrent build's directory is left alone)."""
    removed = remove_stale(out)
    if removed:
        warnings.warn(
            f"removed {len(removed)} temporary director{'y' if len(removed) == 1 else 'ies'} left by an interrupted "
            f"build of {out}",
            stacklevel=4,
        )
    return removed


def _write_index(
    documents: Iterator[tuple[np.ndarray, dict[str, Any]]],
    out: str | Path,
    inputs: Sequence[Path],
    info: TokenizerInfo,
    separator: int,
    stats: CorpusStats,
    shard_tokens: int,
    builder: Builder,
    device: str,
    force: bool,
    kind: fmt.CorpusKind,
) -> fmt.Header:
    out = Path(out)
    if kind not in fmt.CORPUS_KINDS:
        raise InputError(f"unknown corpus kind {kind!r}; known kinds: {', '.join(fmt.CORPUS_KINDS)}")
    if shard_tokens < 1:
        raise InputError(f"shard_tokens must be at least 1, got {shard_tokens}")
    check_builder(builder)
    _check_output(out, inputs, force)
    token_dtype = fmt.token_dtype_for(separator)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    start = time.perf_counter()
    with atomic_dir(out, existing="replace" if force else "error") as tmp:
        writer = _ShardWriter(tmp, info, separator, token_dtype, builder, device)
        for ids, meta in documents:
            if ids.size == 0:
                stats.empty_docs += 1
                continue
            stats.docs += 1
            if writer.size and writer.size + ids.size + 1 > shard_tokens:
                writer.flush()
            writer.add(ids, meta)
        writer.flush()
        if writer.n_docs == 0:
            raise InputError(f"the corpus is empty: no document with text ({stats.empty_docs} empty documents skipped)")
        if stats.invalid_utf8_docs:
            warnings.warn(
                f"{stats.invalid_utf8_docs} document(s) were not valid UTF-8; their bad bytes were replaced "
                "with U+FFFD (the count is in the index header under build.invalid_utf8_docs_replaced)",
                stacklevel=3,
            )
        writer.unigram.astype("<u8").tofile(tmp / fmt.UNIGRAM)
        header = fmt.Header(
            tokenizer=info,
            token_dtype=token_dtype,
            separator=separator,
            n_tokens=writer.n_tokens,
            n_docs=writer.n_docs,
            shards=writer.shards,
            unigram=fmt.file_info(tmp / fmt.UNIGRAM),
            kind=kind,
            build={
                "builder": builder,
                "device": device,
                "seconds": round(time.perf_counter() - start, 3),
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
                "redraft_version": __version__,
                "sources": stats.sources,
                "empty_docs_skipped": stats.empty_docs,
                "invalid_utf8_docs_replaced": stats.invalid_utf8_docs,
            },
        ).sealed()
        # The header is written last: a directory without it never loads.
        (tmp / fmt.HEADER).write_text(header.model_dump_json(indent=2))
        if out.exists():
            # Checked again here: the output may have changed during a long build.
            _check_output(out, inputs, force)
    return header
