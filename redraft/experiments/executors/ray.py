"""The Ray executor: shards of an experiment on Ray actors, one shared database.

Each actor loads its LLM and critics once (the index, the knowledge base, the verifier) and runs
the same batched round loop as the local executor on its shard, writing every round to the
shared database through the same store code. Rounds are idempotent on (run, example, round
index), so when an actor dies Ray restarts it and retries its shard, which resumes after the last
recorded round: no round is lost or written twice. The driver only waits, and its progress bar
reads the database.

Needs ``pip install "redraft[ray]"``; a cluster is ``ray start --head`` (or ``RAY_ADDRESS``), and
every node needs redraft installed, the database reachable and the index directory at the same
path (a shared filesystem, or a copy per node; actors memory-map it, or load it onto their GPU).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from redraft._db import DB_ENV
from redraft._extras import require
from redraft._progress import Progress, Reporter, reporter
from redraft.errors import InputError, RedraftError
from redraft.experiments.executors.base import Executor, LLMFactory, load_llm
from redraft.experiments.runner import ExperimentRunner, load_rows
from redraft.experiments.spec import ExperimentSpec
from redraft.store.sql import SQLStore

CLOSE_TIMEOUT_S = 60.0
"""How long actors get to release their engines before they are killed."""


class ShardWorker:
    """The actor body: one LLM, one critic set and one store connection, reused for every shard
    the actor is given. The database URL comes from the actor's environment (``REDRAFT_DB``), not
    an argument: Ray's dashboard and state API show actor arguments, and the URL may hold a password."""

    def __init__(self, spec: dict[str, Any], llm_factory: LLMFactory | None, threads: int) -> None:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)  # actors sharing a machine should not oversubscribe its cores
        self.spec = ExperimentSpec.parse(spec, "experiment spec")
        store_url = os.environ.get(DB_ENV)
        if not store_url:
            raise InputError(f"a Ray shard worker needs the database URL in {DB_ENV}; the driver sets it")
        self.store = SQLStore(store_url)
        self.llm = (llm_factory or load_llm)(self.spec)
        self.runner = ExperimentRunner(self.spec, self.store, self.llm)

    def run(self, experiment_id: str, shard: tuple[int, int]) -> tuple[int, int]:
        self.runner.shard = shard
        self.runner.run(experiment_id)
        return shard

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        """Release the model's engine before the actor is killed (a kill skips every ``finally``)."""
        self.llm.close()


class RayExecutor(Executor):
    """Run an experiment's shards on Ray actors.

    Args:
        workers: number of actors (and shards).
        address: a Ray cluster address; None uses ``RAY_ADDRESS`` or starts a local instance.
        llm_factory: builds each actor's LLM from the spec (default: :func:`load_llm`).
        num_gpus: GPUs per actor (1 on a GPU cluster, with a vLLM model).
        num_cpus: CPUs reserved per actor.
        threads: torch threads per actor (0 leaves torch's default).
        max_restarts: how often a dead actor is restarted; its shard is retried each time.
        ray_init: extra ``ray.init`` arguments (e.g. ``runtime_env``) when this executor starts Ray.

    Example:
        >>> store = SQLStore("postgresql+psycopg://...")  # needs: a PostgreSQL server  # doctest: +SKIP
        >>> RayExecutor(workers=8, num_gpus=1).run(spec, store, exp_id)  # needs: GPUs and Ray  # doctest: +SKIP
    """

    name = "ray"

    def __init__(
        self,
        workers: int = 2,
        *,
        address: str | None = None,
        llm_factory: LLMFactory | None = None,
        num_gpus: float = 0,
        num_cpus: float = 1,
        threads: int = 1,
        max_restarts: int = 3,
        ray_init: dict[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        self.ray = require("ray", "ray")
        self.workers, self.address, self.llm_factory = workers, address, llm_factory
        self.num_gpus, self.num_cpus, self.threads, self.max_restarts = num_gpus, num_cpus, threads, max_restarts
        self.ray_init = ray_init or {}
        self.actors: list[Any] = []
        """The live actor handles while ``run`` is running (for monitoring, and for tests that kill one)."""

    def _connect(self) -> None:
        if not self.ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **self.ray_init}
            self.ray.init(address=self.address or os.environ.get("RAY_ADDRESS"), **kwargs)

    def run(
        self, spec: ExperimentSpec, store: SQLStore, experiment_id: str, *, progress: Reporter | None = None
    ) -> None:
        if store.engine.dialect.name == "sqlite" and store.engine.url.database in (None, "", ":memory:"):
            raise InputError("Ray actors cannot share an in-memory SQLite database; use a file or PostgreSQL URL")
        self._connect()
        ray = self.ray
        worker_cls = ray.remote(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            max_restarts=self.max_restarts,
            max_task_retries=self.max_restarts,
        )(ShardWorker)
        url = store.engine.url.render_as_string(hide_password=False)
        spec_json = spec.model_dump(mode="json")
        # Actors on other nodes do not see this process's environment: pass the database URL and
        # the backend's API key through theirs (merged by Ray with the job's runtime_env), never as
        # arguments, which Ray's dashboard shows, nor in the spec or the database.
        env = {**spec.worker_env(), DB_ENV: url}
        worker_cls = worker_cls.options(runtime_env={"env_vars": env})
        self.actors = [worker_cls.remote(spec_json, self.llm_factory, self.threads) for _ in range(self.workers)]
        try:
            pending = {a.run.remote(experiment_id, (i, self.workers)): i for i, a in enumerate(self.actors)}
            self._wait(pending, spec, store, experiment_id, progress)
        finally:
            closing = [a.close.remote() for a in self.actors]
            with contextlib.suppress(Exception):  # an actor already dead has nothing to close
                ray.get(closing, timeout=CLOSE_TIMEOUT_S)
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            self.actors = []

    def _wait(
        self,
        pending: dict[Any, int],
        spec: ExperimentSpec,
        store: SQLStore,
        experiment_id: str,
        progress: Reporter | None,
    ) -> None:
        ray = self.ray
        total = len(load_rows(spec)) * len(spec.cells())
        failures: list[str] = []
        report, task = reporter(progress), f"{self.workers} Ray actors"
        report(Progress(task, 0, total))
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1.0)
            for ref in done:
                shard = pending.pop(ref)
                try:
                    ray.get(ref)
                except Exception as exc:  # a shard that failed after every retry
                    failures.append(f"shard {shard}/{self.workers}: {type(exc).__name__}: {str(exc)[:300]}")
            finished, rounds = store.progress(_run_ids(store, experiment_id))
            report(Progress(task, finished, total, f"{rounds} rounds written"))
        if failures:
            raise RedraftError(
                "some shards failed after all retries (completed rounds are kept; rerun with "
                f"`redraft experiment run --resume {experiment_id[:8]} --executor ray`): " + "; ".join(failures)
            )


def _run_ids(store: SQLStore, experiment_id: str) -> list[str]:
    return [r.id for r in store.experiment(experiment_id).runs]
