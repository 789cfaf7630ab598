"""Provenance: a suffix-array index over a belief corpus, BCI scoring and TraceShield.

Data flows one way: corpus → :func:`build_index` → index directory → :meth:`SuffixIndex.load`
→ queries (``count``, ``find``, ``longest_match``, ``maximal_spans``) → BCI spans → critics.
"""

from redraft.provenance.build import build_from_token_ids, build_index, suffix_array, torch_suffix_array
from redraft.provenance.index import DocRef, Matches, Span, SuffixIndex, resolve_device
from redraft.provenance.tokenizers import ByteTokenizer, HFTokenizer, load_tokenizer

__all__ = [
    "ByteTokenizer",
    "DocRef",
    "HFTokenizer",
    "Matches",
    "Span",
    "SuffixIndex",
    "build_from_token_ids",
    "build_index",
    "load_tokenizer",
    "resolve_device",
    "suffix_array",
    "torch_suffix_array",
]
