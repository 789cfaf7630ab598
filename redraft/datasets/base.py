"""The dataset contract: rows with a prompt and the ground truth its judge needs."""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Row(BaseModel):
    """One example: a prompt, a stable key, and its ground-truth labels.

    ``labels["judge"]`` names the judge that labels responses to it (``refusal``, ``answer``,
    ``bbq``); the other labels are that judge's ground truth. Every dataset's rows name one
    (:func:`redraft.datasets.load` checks); only prompts read for ``redraft run`` may lack it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    source: str
    labels: dict[str, JsonValue]


def sample(rows: Sequence[Row], limit: int | None, seed: int, skip: int = 0) -> list[Row]:
    """A reproducible sample of ``limit`` rows (all of them when ``limit`` is None), in the
    dataset's own order.

    ``skip`` first removes the ``skip`` rows that ``sample(rows, skip, seed)`` takes, so a held-out
    set is disjoint from a training set by construction: train on ``limit=N`` and evaluate on
    ``skip=N`` with the same seed.

    Example:
        >>> rows = [Row(key=str(i), prompt=f"p{i}", source="s", labels={"judge": "refusal"}) for i in range(10)]
        >>> train, held_out = sample(rows, 4, seed=0), sample(rows, 4, seed=0, skip=4)
        >>> len(held_out), {r.key for r in train} & {r.key for r in held_out}
        (4, set())
    """
    if skip:
        taken = set(_indices(len(rows), skip, seed))
        rows = [r for i, r in enumerate(rows) if i not in taken]
    return [rows[i] for i in _indices(len(rows), limit, seed)]


def _indices(n: int, limit: int | None, seed: int) -> list[int]:
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))
