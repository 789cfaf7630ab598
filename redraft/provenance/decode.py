"""Prov-Decode (TraceAlign): decoding that refuses to complete a high-BCI verbatim span.

While a batch is decoded, :class:`ProvDecodeCore` keeps for every sequence the suffix-array range
(per shard) of its current longest match in the belief corpus, and the match's BCI (the sum of
the tokens' −log unigram probabilities). A new token *narrows* that range with one lockstep
binary search inside it, instead of searching the corpus again; only when the match breaks is
the longest matching suffix searched afresh.

At each step the top-k candidate tokens of every sequence are checked: a candidate that would
extend the match into a span occurring in the corpus with BCI above the threshold is vetoed
(−inf) or penalized. Everything else is left exactly as it was, so text that does not follow
the corpus decodes unchanged.

Two adapters share the core: :class:`ProvDecode` is a transformers ``LogitsProcessor`` (pass it
to ``TransformersLLM.generate(..., logits_processors=[...])``), and :meth:`ProvDecode.vllm_class`
gives a vLLM v1 engine class (see :mod:`redraft.agents.vllm_engine`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from transformers import LogitsProcessor

from redraft.errors import InputError
from redraft.provenance.index import SuffixIndex
from redraft.provenance.shard import Shard

if TYPE_CHECKING:
    from redraft.provenance.tokenizers import HFTokenizer

DecodeMode = Literal["veto", "penalty"]


def _narrow(
    shard: Shard, lo: torch.Tensor, hi: torch.Tensor, offset: torch.Tensor, token: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Within each rank range ``[lo, hi)`` of suffixes that share their first ``offset`` tokens,
    the sub-range whose token at ``offset`` equals ``token``. Those tokens are sorted inside the
    range, so two lockstep binary searches (lower and upper bound) find it."""
    bounds = []
    for strict in (False, True):
        a, b = lo.clone(), hi.clone()
        while True:
            active = a < b
            if not bool(active.any()):
                break
            mid = (a + b) // 2
            t = shard.tok(shard.sa(mid.clamp(0, shard.n - 1)) + offset).to(torch.int64)
            right = (t <= token) if strict else (t < token)
            a = torch.where(active & right, mid + 1, a)
            b = torch.where(active & ~right, mid, b)
        bounds.append(a)
    return bounds[0], bounds[1]


class ProvDecodeCore:
    """Per-sequence match state over a suffix index, advanced one token at a time.

    Args:
        index: the belief corpus, built with the generating model's tokenizer.
        threshold: τ in nats; a continuation whose verbatim span would exceed it is vetoed.
        alpha: unigram smoothing for token surprisal (as in the BCI critic).
        max_match: longest match tracked, in tokens (bounds the re-search after a break).
    """

    def __init__(self, index: SuffixIndex, threshold: float, *, alpha: float = 1.0, max_match: int = 256) -> None:
        if threshold <= 0:
            raise InputError(f"the BCI threshold must be positive (nats), got {threshold}")
        self.index, self.threshold, self.max_match = index, threshold, max_match
        self.device = index.device
        self.surprisal = index.surprisal(alpha).to(torch.float64)  # (V,)
        self.vocab = index.vocab_size
        self.reset(0)

    def reset(self, batch: int) -> None:
        """Start ``batch`` new sequences with empty matches."""
        s, dev = len(self.index.shards), self.device
        self.history: list[list[int]] = [[] for _ in range(batch)]
        self.length = torch.zeros(batch, dtype=torch.int64, device=dev)  # (B,) current match length
        self.bci = torch.zeros(batch, dtype=torch.float64, device=dev)  # (B,) BCI of the match
        # The empty match is every suffix: [0, n) in each shard.
        self.lo = torch.zeros((s, batch), dtype=torch.int64, device=dev)
        self.hi = torch.tensor([[sh.n] * batch for sh in self.index.shards], dtype=torch.int64, device=dev).reshape(
            s, batch
        )

    @property
    def batch(self) -> int:
        return len(self.history)

    def _extend(self, rows: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ranges of (match of ``rows``) + ``tokens`` in every shard, and whether it occurs."""
        m = rows.numel()
        in_vocab = (tokens >= 0) & (tokens < self.vocab)
        safe = tokens.clamp(0, self.vocab - 1)
        lo_t = torch.zeros((len(self.index.shards), m), dtype=torch.int64, device=self.device)
        hi_t = torch.zeros_like(lo_t)
        empty = self.length[rows] == 0
        for s, shard in enumerate(self.index.shards):
            todo = torch.arange(m, device=self.device)
            if shard.width == 1:
                # An empty match extended by t is the block of suffixes starting with t: the
                # prefix table answers it without a search (most steps after a break).
                first = torch.nonzero(empty).squeeze(1)
                lo_t[s, first], hi_t[s, first] = shard.prefix[safe[first]], shard.prefix[safe[first] + 1]
                todo = torch.nonzero(~empty).squeeze(1)
            if todo.numel():
                r = rows[todo]
                lo, hi = _narrow(shard, self.lo[s, r], self.hi[s, r], self.length[r], safe[todo])
                lo_t[s, todo], hi_t[s, todo] = lo, hi
        return lo_t, hi_t, ((hi_t > lo_t).any(0) & in_vocab)

    def advance(self, tokens: torch.Tensor) -> None:
        """Append one token per sequence, ``(B,)``, and update each match."""
        tokens = tokens.to(self.device, torch.int64)
        rows = torch.arange(self.batch, device=self.device)
        lo, hi, found = self._extend(rows, tokens)
        for b, t in enumerate(tokens.tolist()):
            self.history[b].append(int(t))
        self.lo[:, found], self.hi[:, found] = lo[:, found], hi[:, found]
        gain = self.surprisal[tokens.clamp(0, self.vocab - 1)]
        self.bci = torch.where(found, self.bci + gain, self.bci)
        self.length = torch.where(found, self.length + 1, self.length)
        broken = torch.nonzero(~found | (self.length > self.max_match)).squeeze(1).tolist()
        if broken:
            self._research(broken)

    def _research(self, rows: list[int]) -> None:
        """The longest suffix of each sequence in ``rows`` that occurs in the corpus (after a
        break), with one batched search for all their candidate suffixes."""
        sep = self.index.header.separator
        owners: list[int] = []
        candidates: list[list[int]] = []
        for b in rows:
            window = self.history[b][-min(len(self.history[b]), self.max_match) :]
            # Suffixes longest first, excluding the 1-token one (the prefix table knows it) and
            # any with ids the index does not have.
            for i in range(len(window) - 1):
                tail = window[i:]
                if all(0 <= t < self.vocab and t != sep for t in tail):
                    owners.append(b)
                    candidates.append(tail)
        hits: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}
        if candidates:
            lo, hi = self.index.find(candidates)  # (S, C)
            found = (hi > lo).any(0).tolist()
            for c, (b, ok) in enumerate(zip(owners, found, strict=True)):
                if ok and b not in hits:  # the first hit of a row is its longest
                    hits[b] = (len(candidates[c]), lo[:, c], hi[:, c])
        for b in rows:
            self.length[b], self.bci[b] = 0, 0.0
            self.lo[:, b] = 0
            self.hi[:, b] = torch.tensor([sh.n for sh in self.index.shards], device=self.device)
            if b in hits:
                n, lo_b, hi_b = hits[b]
                self.lo[:, b], self.hi[:, b], self.length[b] = lo_b, hi_b, n
            else:
                last = self.history[b][-1]
                if 0 <= last < self.vocab and last != sep:  # the last token alone, if it occurs
                    lo1, hi1, ok = self._extend(torch.tensor([b], device=self.device), torch.tensor([last]))
                    if bool(ok[0]):
                        self.lo[:, b], self.hi[:, b], self.length[b] = lo1[:, 0], hi1[:, 0], 1
            tail = self.history[b][len(self.history[b]) - int(self.length[b]) :]
            if tail:
                self.bci[b] = self.surprisal[torch.tensor(tail, device=self.device)].sum()

    def flagged(self, candidates: torch.Tensor) -> torch.Tensor:
        """For ``(B, K)`` candidate tokens: True where the token would extend the current match
        into a corpus span whose BCI exceeds the threshold."""
        b, k = candidates.shape
        rows = torch.arange(b, device=self.device).repeat_interleave(k)
        flat = candidates.reshape(-1).to(self.device, torch.int64)
        bci = self.bci[rows] + self.surprisal[flat.clamp(0, self.vocab - 1)]
        out = torch.zeros(b * k, dtype=torch.bool, device=self.device)
        # Only a candidate that would push the BCI over τ can be flagged: most steps check none.
        check = torch.nonzero(bci > self.threshold).squeeze(1)
        if check.numel():
            _, _, found = self._extend(rows[check], flat[check])
            out[check] = found
        return out.reshape(b, k)


class ProvDecode(LogitsProcessor):
    """Prov-Decode as a transformers logits processor (and a vLLM one, via :meth:`vllm_class`).

    Args:
        index: a suffix index built with the generating model's tokenizer
            (``redraft index build --tokenizer <model>``).
        threshold: τ in nats: continuations completing a verbatim corpus span with BCI > τ are
            vetoed. Calibrate it with ``redraft index calibrate``.
        mode: ``veto`` (−inf) or ``penalty`` (subtract ``penalty`` from the logit).
        penalty: logit penalty in ``penalty`` mode.
        top_k: candidates checked per step; tokens outside the top k are never chosen greedily
            and rarely sampled, so they are left alone.
        index_path: where ``index`` lives, needed only for vLLM (its engine loads the index in its
            own process); defaults to ``index.root``.

    Example:
        >>> pd = ProvDecode(SuffixIndex.load("belief-index"), threshold=20.0)  # needs: an index  # doctest: +SKIP
        >>> llm.generate(convs, params, logits_processors=[pd])  # needs: the index above  # doctest: +SKIP
    """

    def __init__(
        self,
        index: SuffixIndex,
        threshold: float = 20.0,
        *,
        mode: DecodeMode = "veto",
        penalty: float = 5.0,
        top_k: int = 16,
        alpha: float = 1.0,
        index_path: str | Path | None = None,
    ) -> None:
        if mode not in ("veto", "penalty"):
            raise InputError(f"unknown Prov-Decode mode {mode!r}; use veto or penalty")
        if top_k < 1:
            raise InputError(f"top_k must be >= 1, got {top_k}")
        if index.header.tokenizer.kind != "hf":
            raise InputError(
                f"Prov-Decode needs an index built with the generating model's tokenizer, but {index.root} is a "
                f"{index.header.tokenizer.kind}-level index. Rebuild it: redraft index build --tokenizer <model path>"
            )
        self.core = ProvDecodeCore(index, threshold, alpha=alpha)
        self.mode, self.penalty, self.top_k, self.alpha = mode, penalty, top_k, alpha
        self.index_path = Path(index_path) if index_path is not None else index.root
        self._seen = -1  # input length at the last call; another length means a new generate()
        self.vetoed = 0
        """Candidates vetoed or penalized since construction (for logs and tests)."""

    def bind(self, tokenizer: HFTokenizer) -> None:
        """Check that the generating model tokenizes like the index; called by the backends."""
        self.core.index.check_tokenizer(tokenizer.info, "the model's")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        b, t = input_ids.shape
        if t != self._seen + 1 or b != self.core.batch:
            self.core.reset(b)  # a new generate(): the prompt is context, not part of any span
        else:
            self.core.advance(input_ids[:, -1])
        self._seen = t
        return self.apply(scores)  # type: ignore[return-value]  # a FloatTensor in, a FloatTensor out

    def apply(self, scores: torch.Tensor) -> torch.Tensor:
        """Veto or penalize the flagged top-k candidates of every row of ``scores`` ``(B, V)``."""
        k = min(self.top_k, scores.shape[-1])
        candidates = scores.topk(k, dim=-1).indices  # (B, K)
        flagged = self.core.flagged(candidates).to(scores.device)
        if not bool(flagged.any()):
            return scores
        self.vetoed += int(flagged.sum())
        out = scores.clone()
        rows = torch.arange(scores.shape[0], device=scores.device)[:, None].expand_as(candidates)
        if self.mode == "veto":
            out[rows[flagged], candidates[flagged]] = float("-inf")
        else:
            out[rows[flagged], candidates[flagged]] -= self.penalty
        return out

    # -- vLLM ----------------------------------------------------------------------------------------

    def vllm_extra_args(self) -> dict[str, Any]:
        return {
            "redraft_prov_decode": {
                "index": str(self.index_path),
                "threshold": self.core.threshold,
                "mode": self.mode,
                "penalty": self.penalty,
                "top_k": self.top_k,
                "alpha": self.alpha,
            }
        }

    def vllm_class(self) -> type[Any]:
        return vllm_processor_class()


@functools.lru_cache(maxsize=8)
def _load_index(path: str) -> SuffixIndex:
    return SuffixIndex.load(path, device="cuda" if torch.cuda.is_available() else "cpu", verify=False)


@functools.cache
def vllm_processor_class() -> type[Any]:
    """A vLLM v1 ``AdapterLogitsProcessor`` running Prov-Decode per request.

    The engine may run in another process, so each request carries the index *path* and settings
    in ``SamplingParams.extra_args["redraft_prov_decode"]``; the index loads once per process.
    The class is pickled by reference to the engine's process (vLLM spawns it), so it is named as
    this module's ``ProvDecodeVLLM``, which the module's ``__getattr__`` builds on first access
    (here without importing vLLM unless it is used).
    """
    from redraft._extras import require

    require("vllm", "vllm")
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class ProvDecodeVLLM(AdapterLogitsProcessor):  # type: ignore[misc]
        def is_argmax_invariant(self) -> bool:
            return False  # vetoes change the greedy choice

        def new_req_logits_processor(self, params: Any) -> Any:
            args = (getattr(params, "extra_args", None) or {}).get("redraft_prov_decode")
            if not args:
                return None
            pd = ProvDecode(
                _load_index(args["index"]),
                args["threshold"],
                mode=args["mode"],
                penalty=args["penalty"],
                top_k=args["top_k"],
                alpha=args["alpha"],
            )
            pd.core.reset(1)

            def process(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
                # vLLM hands over the request's whole output so far; feed the tokens not yet seen.
                seen = len(pd.core.history[0])
                for tok in output_ids[seen:]:
                    pd.core.advance(torch.tensor([tok]))
                return pd.apply(logits[None, :])[0]

            return process

    ProvDecodeVLLM.__module__, ProvDecodeVLLM.__qualname__ = __name__, "ProvDecodeVLLM"
    return ProvDecodeVLLM


def __getattr__(name: str) -> Any:
    # Unpickling the engine class in vLLM's engine process looks it up by this name.
    if name == "ProvDecodeVLLM":
        return vllm_processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
