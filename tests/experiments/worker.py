"""A runner process for crash tests: ``python -m tests.experiments.worker DB [EXPERIMENT_ID] [i/n]``.

It uses a deterministic model (the reply depends only on the conversation), so a run that is
killed and resumed must end with exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import sys

from redraft.agents.testing import FunctionLLM, hashed_reply
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore

SPEC = {
    "name": "crash",
    "datasets": [{"name": "advbench", "limit": 9, "seed": 3}, {"name": "benign", "limit": 9, "seed": 3}],
    "critics": [["self-harm"], ["oracle"]],
    "modes": ["cac"],
    "max_rounds": 3,
    "batch_size": 4,
}


reply = hashed_reply  # refuses or complies, and judges, by a hash of the conversation


def make_llm(spec: ExperimentSpec) -> FunctionLLM:
    """The deterministic model, built inside a Ray actor."""
    return FunctionLLM(reply)


def make_slow_llm(spec: ExperimentSpec) -> FunctionLLM:
    """The same model with a delay per call, so a test can kill an actor mid-run."""
    return FunctionLLM(reply, delay_s=0.05)


def main() -> None:
    """``worker.py DB [EXPERIMENT_ID|-] [i/n] [DELAY] [RAY_ADDRESS]``; with a Ray address the
    experiment runs on 2 Ray actors of that cluster instead of in this process."""
    url = sys.argv[1]
    experiment_id = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    i, n = (int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0/1").split("/"))
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    ray_address = sys.argv[5] if len(sys.argv) > 5 else None
    spec = ExperimentSpec.parse(SPEC)
    store = SQLStore(url)
    if experiment_id is None:
        experiment_id = store.start_experiment(spec.name, spec.model_dump(mode="json"))
        print(experiment_id, flush=True)
    if ray_address is not None:
        from pathlib import Path

        from redraft.experiments.executors import RayExecutor

        root = str(Path(__file__).resolve().parents[2])
        executor = RayExecutor(
            2,
            address=ray_address,
            llm_factory=make_slow_llm,
            ray_init={"runtime_env": {"env_vars": {"PYTHONPATH": root}}},
        )
        executor.run(spec, store, experiment_id)
        return
    runner = ExperimentRunner(spec, store, FunctionLLM(reply, delay_s=delay), shard=(i, n))
    runner.run(experiment_id)


if __name__ == "__main__":
    main()
