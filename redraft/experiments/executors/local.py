"""The local executor: the batched round loop in this process (no Ray import, no Ray install)."""

from __future__ import annotations

from rich.console import Console

from redraft.agents.base import LLM
from redraft.experiments.executors.base import Executor, LLMFactory, load_llm
from redraft.experiments.runner import ExperimentRunner
from redraft.experiments.spec import ExperimentSpec
from redraft.store.sql import SQLStore


class LocalExecutor(Executor):
    """Run the whole experiment (or one shard of it) here.

    Args:
        llm: a loaded model; otherwise ``llm_factory(spec)`` (default: :func:`load_llm`).
        shard: ``(i, n)`` to run only every n-th example from the i-th.
    """

    name = "local"

    def __init__(
        self,
        llm: LLM | None = None,
        *,
        llm_factory: LLMFactory | None = None,
        shard: tuple[int, int] = (0, 1),
        console: Console | None = None,
    ) -> None:
        self.llm, self.llm_factory, self.shard, self.console = llm, llm_factory or load_llm, shard, console

    def run(self, spec: ExperimentSpec, store: SQLStore, experiment_id: str, *, progress: bool = True) -> None:
        llm = self.llm if self.llm is not None else self.llm_factory(spec)
        runner = ExperimentRunner(spec, store, llm, shard=self.shard, progress=progress, console=self.console)
        runner.run(experiment_id)
