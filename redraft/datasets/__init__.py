"""Datasets for correction experiments, offline: packaged benchmarks and any JSONL file.

``DATASETS`` maps the names an experiment file uses to loaders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from redraft.datasets.base import Row, sample
from redraft.datasets.jsonl import from_jsonl
from redraft.datasets.packaged import (
    advbench,
    bbq,
    benign,
    donotanswer,
    falseclaims,
    halueval_qa,
    toxictexts,
    truthfulqa,
)
from redraft.errors import InputError

DATASETS: dict[str, Callable[[], list[Row]]] = {
    "advbench": advbench,
    "benign": benign,
    "donotanswer": donotanswer,
    "truthfulqa": truthfulqa,
    "halueval_qa": halueval_qa,
    "bbq": bbq,
    "falseclaims": falseclaims,
    "toxictexts": toxictexts,
}


def load(name: str, *, limit: int | None = None, seed: int = 0, path: Path | None = None, skip: int = 0) -> list[Row]:
    """Rows of a packaged dataset (by name) or of a JSONL file (``name="jsonl"`` with ``path``);
    ``limit``, ``seed`` and ``skip`` are :func:`sample`'s.

    Example:
        >>> rows = load("advbench", limit=3, seed=0)
        >>> len(rows), rows[0].labels["should_refuse"]
        (3, True)
    """
    check_dataset(name, path)
    rows = from_jsonl(path) if name == "jsonl" and path is not None else list(_packaged(name))
    return sample(rows, limit, seed, skip)


@functools.cache
def _packaged(name: str) -> tuple[Row, ...]:
    """A packaged dataset, parsed once per process (AdvBench's YAML alone takes about a second);
    rows are frozen, so every caller may share them."""
    return tuple(DATASETS[name]())


def check_dataset(name: str, path: Path | None = None) -> None:
    """Raise :class:`InputError` unless ``name`` (with ``path`` for ``jsonl``) names a dataset;
    loads nothing, so experiment files are checked before any model or data loads."""
    if name == "jsonl":
        if path is None:
            raise InputError("the jsonl dataset needs a path: {name: jsonl, path: prompts.jsonl}")
    elif name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join([*DATASETS, 'jsonl'])}")


__all__ = ["DATASETS", "Row", "check_dataset", "from_jsonl", "load", "sample"]
