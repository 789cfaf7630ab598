"""SpanVeto: decoding that cannot write given strings verbatim (the ``constrain`` revise option).

Prov-Decode vetoes any continuation of a belief-corpus span above τ. A revision should only be
kept from repeating *the spans the critic flagged in its draft*, and nothing else, so this
processor works on text, per sequence: at each step, for every banned string ``S`` and every
``j`` where the text generated so far ends with ``S[:j]``, it vetoes each token whose text starts
with ``S[j:]``. No token can then complete ``S``, whatever tokenization the model would have
used, while every other continuation keeps its score.

The token texts are each id decoded alone, which is how byte-level BPE tokenizers (GPT-2, Llama
3, Qwen, SmolLM) join them; for SentencePiece tokenizers, whose leading-space marker depends on
context, the veto is exact only for the text the model writes between spaces.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor


class _Vocab:
    """Every token's text, sorted, to find the tokens that start with a string by bisection."""

    def __init__(self, tokenizer: Any) -> None:
        n = len(tokenizer)
        pieces = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
        pairs = sorted((str(p), i) for i, p in enumerate(pieces) if p)
        self.texts = [t for t, _ in pairs]
        self.ids = [i for _, i in pairs]

    def starting_with(self, prefix: str) -> list[int]:
        lo = bisect.bisect_left(self.texts, prefix)
        hi = bisect.bisect_left(self.texts, prefix + "\U0010ffff")
        return self.ids[lo:hi]


@functools.lru_cache(maxsize=4)
def _vocab(tokenizer: Any) -> _Vocab:
    return _Vocab(tokenizer)


class SpanVeto(LogitsProcessor):
    """Veto, per sequence of a batch, every token that would complete one of its banned strings.

    Args:
        banned: for each conversation of the batch, in order, the strings it must not write.

    Example:
        >>> class Letters:  # a tokenizer whose tokens are "a", "b", "c", " " and "bc"
        ...     pieces = ["a", "b", "c", " ", "bc"]
        ...     def __len__(self): return len(self.pieces)
        ...     def batch_decode(self, ids, **kwargs): return [self.pieces[i[0]] for i in ids]
        >>> veto = SpanVeto([["abc"]])
        >>> veto.bind(Letters())
        >>> sorted(veto.vetoed("x a", ["abc"]))  # after "a": "bc" would complete it; "b" alone not yet
        [4]
        >>> sorted(veto.vetoed("x ab", ["abc"]))
        [2]
    """

    def __init__(self, banned: Sequence[Sequence[str]]) -> None:
        self.banned = [sorted({s for s in row if s}) for row in banned]
        self._tokenizer: Any = None
        self._start: int | None = None

    def bind(self, tokenizer: Any) -> None:
        """Called by the backend with the tokenizer whose ids it decodes: a transformers
        tokenizer, or redraft's :class:`~redraft.provenance.tokenizers.HFTokenizer` around one."""
        self._tokenizer = getattr(tokenizer, "tokenizer", tokenizer)

    def vetoed(self, text: str, banned: Sequence[str]) -> set[int]:
        """The token ids that, written after ``text``, would complete a string of ``banned``."""
        vocab = _vocab(self._tokenizer)
        out: set[int] = set()
        for s in banned:
            for j in range(len(s)):
                if j == 0 or text.endswith(s[:j]):
                    out.update(vocab.starting_with(s[j:]))
        return out

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._tokenizer is None:
            raise RuntimeError("SpanVeto was not bound to a tokenizer; pass it to a backend that calls bind()")
        if len(self.banned) != input_ids.shape[0]:
            raise RuntimeError(
                f"SpanVeto holds banned strings for {len(self.banned)} sequences, not {input_ids.shape[0]}"
            )
        if self._start is None:  # the first call sees the prompt only: what follows is generated
            self._start = int(input_ids.shape[1])
        for b, banned in enumerate(self.banned):
            if not banned:
                continue
            text = str(self._tokenizer.decode(input_ids[b, self._start :].tolist(), skip_special_tokens=True))
            ids = sorted(self.vetoed(text, banned))
            if ids:
                scores[b, ids] = float("-inf")
        return scores
