"""Correction experiments: a YAML grid over datasets, run batched and resumable into the store.

The face is lazy: reading and validating a spec (:mod:`redraft.experiments.spec`) loads neither
the graph nor the database; the runner loads them on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft.experiments.runner import ExperimentRunner, load_rows
    from redraft.experiments.spec import Cell, DatasetSpec, ExperimentSpec

__all__ = ["Cell", "DatasetSpec", "ExperimentRunner", "ExperimentSpec", "load_rows"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "ExperimentRunner": "redraft.experiments.runner",
        "load_rows": "redraft.experiments.runner",
        **dict.fromkeys(("Cell", "DatasetSpec", "ExperimentSpec"), "redraft.experiments.spec"),
    },
)
