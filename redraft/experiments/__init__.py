"""Correction experiments: a YAML grid over datasets, run batched and resumable into the store."""

from redraft.experiments.runner import ExperimentRunner, load_rows
from redraft.experiments.spec import Cell, DatasetSpec, ExperimentSpec

__all__ = ["Cell", "DatasetSpec", "ExperimentRunner", "ExperimentSpec", "load_rows"]
