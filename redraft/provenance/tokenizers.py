"""Tokenizers an index can be built with: raw UTF-8 bytes, or a Hugging Face tokenizer.

An index records its tokenizer's *identity* (a name and a hash of the vocabulary), so a critic
whose LLM tokenizes differently is refused with an error naming both, instead of silently
matching the wrong ids.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from redraft._hf import from_pretrained
from redraft.errors import InputError


class TokenizerInfo(BaseModel):
    """What an index header stores about its tokenizer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    """``bytes``, ``hf`` or ``pretokenized``."""
    name: str
    """``bytes`` or the tokenizer's ``name_or_path``."""
    vocab_size: int = Field(ge=1, lt=2**32)
    """Token ids are in ``[0, vocab_size)``; the document separator is ``vocab_size - 1`` for bytes
    (0xFF never occurs in UTF-8) and ``vocab_size`` for HF tokenizers."""
    vocab_hash: str
    """sha256 of the vocabulary; equal hashes mean equal token ids."""


class Encoded(BaseModel):
    """Token ids of a text with the character span of each token (for word/sentence boundaries)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    ids: list[int]
    starts: list[int]
    ends: list[int]


class Tokenizer(Protocol):
    info: TokenizerInfo
    separator: int

    def encode(self, text: str) -> list[int]: ...

    def encode_with_offsets(self, text: str) -> Encoded: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256). Needs no model and matches infini-gram's u8 indexes.

    Example:
        >>> ByteTokenizer().encode("hé")
        [104, 195, 169]
    """

    info = TokenizerInfo(kind="bytes", name="bytes", vocab_size=256, vocab_hash="utf-8")
    separator = 0xFF

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_with_offsets(self, text: str) -> Encoded:
        """The bytes, and for each the character it belongs to (``[start, end)`` in ``text``).

        Example:
            >>> e = ByteTokenizer().encode_with_offsets("hé!")
            >>> e.ids, e.starts, e.ends
            ([104, 195, 169, 33], [0, 1, 1, 2], [1, 2, 2, 3])
        """
        data = self.encode_array(text)
        # A byte starts a character unless it is a UTF-8 continuation byte (0b10xxxxxx): vectorized,
        # a draft's offsets cost ~20 µs instead of a Python step per character (~0.5 ms).
        char = np.cumsum((data & 0xC0) != 0x80) - 1
        return Encoded(ids=data.tolist(), starts=char.tolist(), ends=(char + 1).tolist())

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def vocab_hash(vocab: dict[str, int]) -> str:
    return hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()).hexdigest()


class HFTokenizer:
    """A Hugging Face tokenizer (any ``PreTrainedTokenizerBase``); special tokens are not added."""

    def __init__(self, tokenizer: Any, name: str | None = None) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        size = max(vocab.values()) + 1
        self.info = TokenizerInfo(
            kind="hf", name=name or str(tokenizer.name_or_path), vocab_size=size, vocab_hash=vocab_hash(vocab)
        )
        self.separator = size

    @classmethod
    def load(cls, name_or_path: str) -> HFTokenizer:
        """Load offline from a directory or the local Hugging Face cache."""
        from transformers import AutoTokenizer

        try:
            return cls(from_pretrained(AutoTokenizer, name_or_path), name=name_or_path)
        except OSError as exc:
            raise InputError(
                f"cannot load tokenizer {name_or_path!r} offline ({exc}). Pass a local directory, a hub id in "
                "the local cache, 'embedded' (the default model's tokenizer) or 'bytes'."
            ) from exc

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_with_offsets(self, text: str) -> Encoded:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        return Encoded(ids=list(enc["input_ids"]), starts=[s for s, _ in offsets], ends=[e for _, e in offsets])

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids))


def load_tokenizer(spec: str) -> ByteTokenizer | HFTokenizer:
    """``bytes`` or a local path / cached hub id. (The index layer knows no model names: the CLI
    resolves ``embedded`` to the embedded model's directory before calling this.)"""
    if spec == "bytes":
        return ByteTokenizer()
    return HFTokenizer.load(spec)


def tokenizer_of(llm: Any) -> HFTokenizer | None:
    """The tokenizer of an LLM backend, when it exposes one (``TransformersLLM`` does)."""
    cached = getattr(llm, "hf_tokenizer", None)
    if isinstance(cached, HFTokenizer):
        return cached
    tok = getattr(llm, "tokenizer", None)
    return HFTokenizer(tok, name=str(getattr(llm, "model_id", tok.name_or_path))) if tok is not None else None
