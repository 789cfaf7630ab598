"""The local executor: the batched round loop in this process, and optionally worker processes
on this machine (no Ray import, no Ray install)."""

from __future__ import annotations

import os
import subprocess
import sys

from redraft._db import DB_ENV
from redraft._progress import Reporter
from redraft.agents.base import LLM
from redraft.errors import InputError, RedraftError
from redraft.experiments.executors.base import Executor, LLMFactory, load_llm
from redraft.experiments.runner import ExperimentRunner
from redraft.experiments.spec import ExperimentSpec
from redraft.store.sql import SQLStore


class LocalExecutor(Executor):
    """Run the whole experiment (or one shard of it) here.

    Args:
        llm: a loaded model; otherwise ``llm_factory(spec)`` (default: :func:`load_llm`).
        shard: ``(i, n)`` to run only every n-th example from the i-th.
        workers: with ``workers > 1``, this process runs shard 0 of ``workers`` and starts one
            ``python -m redraft experiment run --resume`` process per other shard, each loading
            its own model and writing to the same database (use PostgreSQL for many).
    """

    name = "local"

    def __init__(
        self,
        llm: LLM | None = None,
        *,
        llm_factory: LLMFactory | None = None,
        shard: tuple[int, int] = (0, 1),
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if workers > 1 and shard != (0, 1):
            raise InputError("pass either --workers N or --shard i/n, not both")
        self.llm, self.llm_factory = llm, llm_factory or load_llm
        self.workers = workers
        self.shard = (0, workers) if workers > 1 else shard

    def run(
        self, spec: ExperimentSpec, store: SQLStore, experiment_id: str, *, progress: Reporter | None = None
    ) -> None:
        others = self._spawn(store, experiment_id)
        llm = self.llm if self.llm is not None else self.llm_factory(spec)
        try:
            runner = ExperimentRunner(spec, store, llm, shard=self.shard, progress=progress)
            runner.run(experiment_id)
        finally:
            if self.llm is None:  # loaded here, so closed here; a model handed in is the caller's
                llm.close()
        failed = [k for k, p in enumerate(others, start=1) if p.wait() != 0]
        if failed:
            raise RedraftError(
                f"workers for shards {failed} of {self.workers} failed; rerun with --resume {experiment_id[:8]} "
                "to finish their examples"
            )

    def _spawn(self, store: SQLStore, experiment_id: str) -> list[subprocess.Popen[bytes]]:
        if self.workers == 1:
            return []
        base = [sys.executable, "-m", "redraft", "experiment", "run", "--resume", experiment_id, "--quiet"]
        env = {**os.environ, DB_ENV: store.url}  # not argv: a command line is visible to `ps`
        return [subprocess.Popen([*base, "--shard", f"{k}/{self.workers}"], env=env) for k in range(1, self.workers)]
