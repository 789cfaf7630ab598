"""Query a suffix index with batched, vectorized torch: one code path for every device.

``SuffixIndex.load(path, device="cpu")`` memory-maps the shards; ``device="cuda"`` copies them
onto the GPU. Every query is a batched binary search over the suffix array written once in torch:
each step compares, for all queries at once, a chunk of tokens starting at the longest common
prefix already known for the current bounds (Manber & Myers' LCP trick), so a step costs a few
gathers instead of a full pattern comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from redraft.errors import InputError
from redraft.provenance import format as fmt

CHUNK = 16
"""Tokens compared per gather in a binary-search step."""

_TORCH_DTYPES = {"u8": torch.uint8, "u16": torch.int16, "u32": torch.int32, "i32": torch.int32, "i64": torch.int64}


class IndexError_(InputError):
    """An index directory that cannot be loaded or a query it cannot answer."""


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


def _open(path: Path, dtype: torch.dtype, count: int, device: torch.device) -> torch.Tensor:
    # torch.from_file(shared=False) maps the file copy-on-write: pages load lazily, nothing is copied.
    t = torch.from_file(str(path), shared=False, size=count, dtype=dtype)
    return t if device.type == "cpu" else t.to(device)


class DocRef(BaseModel):
    """Where a span occurs: a document and the token offset inside it."""

    model_config = ConfigDict(frozen=True)

    doc: int
    offset: int
    meta: dict[str, Any]


class Span(BaseModel):
    """A verbatim match between a query sequence and the corpus."""

    model_config = ConfigDict(frozen=True)

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


class _Shard:
    def __init__(self, root: Path, info: fmt.ShardInfo, header: fmt.Header, device: torch.device) -> None:
        d = root / info.dir
        self.info = info
        self.n = info.n_tokens
        self.tokens = _open(d / fmt.TOKENS, _TORCH_DTYPES[header.token_dtype], self.n, device)  # (n,)
        self.sa = _open(d / fmt.SA, _TORCH_DTYPES[info.sa_dtype], self.n, device)  # (n,)
        self.docs = _open(d / fmt.DOCS, torch.int64, info.n_docs, device)  # (D,)
        self.u16 = header.token_dtype == "u16"
        self.meta_path = d / fmt.META
        self.meta_idx = np.fromfile(d / fmt.META_IDX, dtype="<u8")

    def tok(self, pos: torch.Tensor) -> torch.Tensor:
        """Tokens at ``pos`` as int32; -1 past the end (below every token, as in the suffix order)."""
        vals = self.tokens[pos.clamp(max=self.n - 1)].to(torch.int32)
        if self.u16:
            vals = vals & 0xFFFF  # stored as int16: undo the sign
        return torch.where(pos < self.n, vals, -1)

    def meta(self, doc: int) -> dict[str, Any]:
        with self.meta_path.open("rb") as f:
            f.seek(int(self.meta_idx[doc]))
            return dict(json.loads(f.readline()))


class SuffixIndex:
    """A loaded suffix index. Build one with :func:`redraft.provenance.build_index`.

    Example:
        >>> import tempfile, pathlib
        >>> from redraft.provenance import build_index
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "c.jsonl").write_text('{"text": "the cat sat on the mat"}\\n')
        >>> _ = build_index([d / "c.jsonl"], d / "idx", progress=False)
        >>> index = SuffixIndex.load(d / "idx")
        >>> index.count([list(b"the "), list(b"cat"), list(b"dog")])
        [2, 1, 0]
    """

    def __init__(self, root: Path, header: fmt.Header, device: torch.device) -> None:
        self.root, self.header, self.device = root, header, device
        self.shards = [_Shard(root, s, header, device) for s in header.shards]
        counts = np.fromfile(root / fmt.UNIGRAM, dtype="<u8").astype(np.float64)
        self.unigram = torch.from_numpy(counts).to(device)  # (V,)

    @property
    def vocab_size(self) -> int:
        return self.header.tokenizer.vocab_size

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", *, verify: bool = True) -> SuffixIndex:
        """Open an index directory: memory-mapped on CPU, resident on CUDA.

        Args:
            path: the directory ``build_index`` wrote.
            device: ``cpu``, ``cuda[:n]`` or ``auto``.
            verify: check every file's sha256 against the header (sizes are always checked).
        """
        root = Path(path)
        dev = resolve_device(device)
        head = root / fmt.HEADER
        if not head.is_file():
            raise IndexError_(
                f"{root} is not a redraft index (no {fmt.HEADER}); build one with `redraft index build` "
                "(an interrupted build leaves no header, so it never loads)"
            )
        try:
            header = fmt.Header.model_validate_json(head.read_text())
        except ValueError as exc:
            raise IndexError_(f"{head} is corrupt ({exc.__class__.__name__}); rebuild the index") from exc
        if header.format != fmt.FORMAT or header.version != fmt.VERSION:
            raise IndexError_(
                f"{root} has format {header.format!r} v{header.version}; this redraft reads {fmt.FORMAT!r} "
                f"v{fmt.VERSION}. Rebuild the index with this version."
            )
        expected = [(root / fmt.UNIGRAM, header.unigram)] + [
            (root / s.dir / name, info) for s in header.shards for name, info in s.files.items()
        ]
        for file, info in expected:
            size = file.stat().st_size if file.is_file() else -1
            if size != info.bytes:
                raise IndexError_(
                    f"{file} has {max(size, 0)} bytes but the header expects {info.bytes}: the index is truncated "
                    "or was modified. Rebuild it."
                )
            if verify and fmt.file_info(file).sha256 != info.sha256:
                raise IndexError_(f"{file} does not match its sha256 in the header: the index is corrupt or tampered.")
        return cls(root, header, dev)

    # -- the binary search --------------------------------------------------------------------------

    def _queries(self, patterns: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = [t for p in patterns for t in p]
        lens = [len(p) for p in patterns]
        buf = torch.tensor(flat, dtype=torch.int64)
        if buf.numel() and (int(buf.min()) < 0 or int(buf.max()) >= self.vocab_size):
            bad = int(buf.min()) if int(buf.min()) < 0 else int(buf.max())
            raise InputError(
                f"token id {bad} is outside the index vocabulary [0, {self.vocab_size}) of tokenizer "
                f"{self.header.tokenizer.name!r}; tokenize queries with the index's tokenizer"
            )
        lengths = torch.tensor(lens, dtype=torch.int64)
        starts = torch.cumsum(lengths, 0) - lengths
        d = self.device
        return buf.to(torch.int32).to(d), starts.to(d), lengths.to(d)

    def _bisect(
        self, shard: _Shard, buf: torch.Tensor, start: torch.Tensor, length: torch.Tensor, upper: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each pattern ``buf[start:start+length]``: the first suffix-array rank whose suffix is
        ``>=`` the pattern (``upper=False``) or ``>`` it when only ``length`` tokens are compared
        (``upper=True``), with the LCP of the pattern and the suffixes just below and at that rank.
        """
        b = start.numel()
        dev = self.device
        lo = torch.full((b,), -1, dtype=torch.int64, device=dev)  # suffix(lo) < pattern (virtual -1)
        hi = torch.full((b,), shard.n, dtype=torch.int64, device=dev)  # suffix(hi) >= pattern (virtual n)
        lcp_lo = torch.zeros(b, dtype=torch.int64, device=dev)
        lcp_hi = torch.zeros(b, dtype=torch.int64, device=dev)
        steps = torch.arange(CHUNK, device=dev)  # (C,)
        buf_last = max(buf.numel() - 1, 0)
        idx = torch.nonzero(hi - lo > 1).squeeze(1)
        while idx.numel():
            low, high = lo[idx], hi[idx]
            mid = (low + high) // 2  # (A,)
            suffix = shard.sa[mid].to(torch.int64)
            p_start, p_len = start[idx], length[idx]
            j = torch.minimum(lcp_lo[idx], lcp_hi[idx])  # tokens already known to match
            s_tok = torch.zeros_like(j)
            p_tok = torch.zeros_like(j)
            todo = torch.nonzero(j < p_len).squeeze(1)
            while todo.numel():  # find the first mismatch at or after j, CHUNK tokens at a time
                off = j[todo, None] + steps  # (T, C)
                inside = off < p_len[todo, None]
                s = shard.tok(suffix[todo, None] + off)
                p = buf[(p_start[todo, None] + off).clamp(max=buf_last)] if buf.numel() else torch.zeros_like(s)
                stop = (s != p) | ~inside
                found = stop.any(1)
                first = stop.to(torch.int8).argmax(1)  # index of the first True
                rows = torch.arange(todo.numel(), device=dev)
                j[todo] = torch.where(found, j[todo] + first, j[todo] + CHUNK)
                s_tok[todo] = s[rows, first].to(torch.int64)
                p_tok[todo] = p[rows, first].to(torch.int64)
                todo = todo[~found]
            j = torch.minimum(j, p_len)
            matched = j >= p_len
            right = (matched | (s_tok < p_tok)) if upper else (~matched & (s_tok < p_tok))
            lo[idx] = torch.where(right, mid, low)
            hi[idx] = torch.where(right, high, mid)
            lcp_lo[idx] = torch.where(right, j, lcp_lo[idx])
            lcp_hi[idx] = torch.where(right, lcp_hi[idx], j)
            idx = idx[(hi[idx] - lo[idx]) > 1]
        return hi, lcp_lo, lcp_hi

    def _ranges(
        self, buf: torch.Tensor, start: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.stack([self._bisect(s, buf, start, length, upper=False)[0] for s in self.shards])  # (S, B)
        hi = torch.stack([self._bisect(s, buf, start, length, upper=True)[0] for s in self.shards])  # (S, B)
        return lo, hi

    # -- public queries -----------------------------------------------------------------------------

    def find(self, patterns: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Suffix-array ranges ``[lo, hi)`` of each pattern in each shard, as two ``(S, B)`` tensors."""
        return self._ranges(*self._queries(patterns))

    def count(self, patterns: Sequence[Sequence[int]]) -> list[int]:
        """Exact corpus occurrences of each pattern (summed over shards)."""
        lo, hi = self.find(patterns)
        return [int(c) for c in (hi - lo).sum(0).tolist()]

    def longest_match(self, sequences: Sequence[Sequence[int]]) -> Matches:
        """For every position of every sequence, the longest prefix of the rest of the sequence that
        occurs in the corpus, its count and its suffix-array range in each shard.

        This is OLMoTrace's primitive: binary-search the whole remaining suffix to its insertion rank
        r; the match length is the larger LCP with the suffixes at r-1 and r.
        """
        buf, seq_start, seq_len = self._queries(sequences)
        offsets = [0, *torch.cumsum(seq_len, 0).tolist()]
        positions = torch.arange(buf.numel(), device=self.device)  # (P,)
        seq_of = torch.repeat_interleave(torch.arange(len(sequences), device=self.device), seq_len)
        remaining = seq_start[seq_of] + seq_len[seq_of] - positions  # (P,)
        best = torch.zeros_like(positions)
        for shard in self.shards:
            _, lcp_lo, lcp_hi = self._bisect(shard, buf, positions, remaining, upper=False)
            best = torch.maximum(best, torch.maximum(lcp_lo, lcp_hi))
        lo, hi = self._ranges(buf, positions, best)
        counts = torch.where(best > 0, (hi - lo).sum(0), 0)
        return Matches(offsets=[int(o) for o in offsets], lengths=best, counts=counts, lo=lo, hi=hi)

    def surprisal(self, alpha: float = 1.0) -> torch.Tensor:
        """−log P_corpus(t) per token id, in nats, with add-``alpha`` smoothing over seen tokens.

        Tokens the corpus never contains get 0: they carry no evidence of provenance, so an unseen
        token can never push a span over a BCI threshold on its own.
        """
        total = float(self.unigram.sum()) + alpha * self.vocab_size
        s = -torch.log((self.unigram + alpha) / total)
        return torch.where(self.unigram > 0, s, torch.zeros_like(s))  # (V,)

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
        m = self.longest_match(sequences)
        buf = self._queries(sequences)[0].to(torch.int64)
        surprise = self.surprisal(alpha)[buf]  # (P,)
        out: list[list[Span]] = []
        for b in range(len(sequences)):
            a, z = m.offsets[b], m.offsets[b + 1]
            lengths = m.lengths[a:z]
            pos = torch.arange(z - a, device=self.device)
            ends = pos + lengths
            prev_max = torch.cummax(ends, 0).values
            prev_max = torch.cat([torch.zeros(1, dtype=ends.dtype, device=self.device), prev_max[:-1]])
            keep = (lengths >= min_len) & (ends > prev_max)
            cum = torch.cat([torch.zeros(1, dtype=surprise.dtype, device=self.device), torch.cumsum(surprise[a:z], 0)])
            spans = []
            for i in torch.nonzero(keep).squeeze(1).tolist():
                e = i + int(lengths[i])
                spans.append(
                    Span(
                        seq=b,
                        start=i,
                        end=e,
                        count=int(m.counts[a + i]),
                        bci=float(cum[e] - cum[i]),
                        bci_max=float(surprise[a + i : a + e].max()),
                        docs=self._attribute(m.lo[:, a + i], m.hi[:, a + i], max_docs),
                    )
                )
            out.append(spans)
        return out

    def attribute(self, pattern: Sequence[int], max_docs: int = 10) -> tuple[DocRef, ...]:
        """Up to ``max_docs`` (document, offset) occurrences of ``pattern``."""
        lo, hi = self.find([pattern])
        return self._attribute(lo[:, 0], hi[:, 0], max_docs)

    def _attribute(self, lo: torch.Tensor, hi: torch.Tensor, max_docs: int) -> tuple[DocRef, ...]:
        refs: list[DocRef] = []
        for shard, first, end in zip(self.shards, lo.tolist(), hi.tolist(), strict=True):
            take = min(end - first, max_docs - len(refs))
            if take <= 0:
                continue
            pos = shard.sa[first : first + take].to(torch.int64)  # (k,)
            doc = torch.searchsorted(shard.docs, pos, right=True) - 1
            offset = pos - shard.docs[doc]
            for d, o in zip(doc.tolist(), offset.tolist(), strict=True):
                refs.append(DocRef(doc=shard.info.doc_base + d, offset=o, meta=shard.meta(d)))
        return tuple(refs)

    def document(self, doc: int) -> list[int]:
        """The tokens of a document by global id."""
        for shard in self.shards:
            local = doc - shard.info.doc_base
            if 0 <= local < shard.info.n_docs:
                start = int(shard.docs[local])
                end = int(shard.docs[local + 1]) - 1 if local + 1 < shard.info.n_docs else shard.n
                return [int(t) for t in shard.tok(torch.arange(start, end, device=self.device)).tolist()]
        raise InputError(f"document {doc} is out of range [0, {self.header.n_docs})")
