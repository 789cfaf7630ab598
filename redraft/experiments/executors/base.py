"""The executor contract: where an experiment's shards run (this process, or Ray actors).

Every executor runs the same batched round loop (:class:`~redraft.experiments.runner.ExperimentRunner`)
on shards of the examples and writes each round through the same store code. The database is
the single source of truth: no result travels back through the driver, progress is read from
the database, and resume works the same whatever ran the rounds before.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from redraft._progress import Reporter
from redraft.agents.backends import load_llm
from redraft.agents.base import LLM
from redraft.experiments.spec import ExperimentSpec
from redraft.store.sql import SQLStore

__all__ = ["Executor", "LLMFactory", "load_llm"]

LLMFactory = Callable[[ExperimentSpec], LLM]
"""Builds the experiment's LLM where the shard runs (must be picklable for Ray: a module-level
function)."""


class Executor(abc.ABC):
    """Runs every shard of an experiment to completion (or raises, leaving it resumable)."""

    name: str

    @abc.abstractmethod
    def run(
        self, spec: ExperimentSpec, store: SQLStore, experiment_id: str, *, progress: Reporter | None = None
    ) -> None:
        """Run (or continue) ``experiment_id`` into ``store``; ``progress`` hears how far it is."""
