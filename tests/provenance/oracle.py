"""Brute-force oracles: the naive definitions the index must agree with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def naive_sa(tokens: Sequence[int]) -> list[int]:
    t = list(tokens)
    return sorted(range(len(t)), key=lambda i: t[i:])


def naive_count(docs: Sequence[Sequence[int]], pattern: Sequence[int]) -> int:
    p = list(pattern)
    m = len(p)
    return sum(1 for d in docs for i in range(len(d) - m + 1) if list(d[i : i + m]) == p)


def naive_longest(docs: Sequence[Sequence[int]], seq: Sequence[int], i: int) -> int:
    best = 0
    while i + best < len(seq) and naive_count(docs, seq[i : i + best + 1]) > 0:
        best += 1
    return best


def corpora(seed: int = 0) -> dict[str, tuple[list[list[int]], int]]:
    """Small corpora (docs, vocab size): uniform, Zipfian, and with long repeated segments."""
    rng = np.random.default_rng(seed)
    uniform = [rng.integers(0, 4, rng.integers(1, 40)).tolist() for _ in range(25)]
    zipf = [(np.minimum(rng.zipf(1.3, rng.integers(1, 60)), 299)).tolist() for _ in range(25)]
    segment = rng.integers(0, 50, 45).tolist()
    repeated = []
    for _ in range(20):
        doc = rng.integers(0, 50, rng.integers(0, 15)).tolist() + segment + rng.integers(0, 50, 5).tolist()
        if rng.random() < 0.5:
            doc[rng.integers(0, len(doc))] = int(rng.integers(0, 50))
        repeated.append(doc)
    return {"uniform": (uniform, 4), "zipf": (zipf, 300), "repeated": (repeated, 50)}
