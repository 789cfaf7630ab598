"""Experiment throughput: 2 Ray actors against the local executor, same machine, same experiment.

Both run the same experiment (AdvBench + benign prompts, the oracle critic, the embedded model,
greedy) into fresh SQLite files. The local executor runs one process with 2 torch threads; the
Ray executor runs 2 actors with 1 thread each on a local Ray instance. On a 2-core CPU the gain is
bounded by the cores; the point is that distribution is correct and costs little.

    python benchmarks/ray_throughput.py [--examples 16] [--rounds 2] [--tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from redraft.experiments import ExperimentSpec
from redraft.experiments.executors import LocalExecutor, RayExecutor
from redraft.store.sql import SQLStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    half = args.examples // 2
    spec = ExperimentSpec.parse(
        {
            "name": "throughput",
            "datasets": [{"name": "advbench", "limit": half}, {"name": "benign", "limit": half}],
            "critics": ["oracle"],
            "modes": ["cac"],  # the mode its published figures ran
            "max_rounds": args.rounds,
            "batch_size": 8,
            "correction": {"generation": {"max_new_tokens": args.tokens}},
        }
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("local", "ray"):
            store = SQLStore(f"sqlite:///{Path(tmp) / name}.db")
            exp = store.start_experiment(spec.name, spec.model_dump(mode="json"))
            if name == "local":
                torch.set_num_threads(2)
                executor: LocalExecutor | RayExecutor = LocalExecutor()
            else:
                executor = RayExecutor(2, threads=1, ray_init={"num_cpus": 2})
            start = time.perf_counter()
            executor.run(spec, store, exp)
            elapsed = time.perf_counter() - start
            done, rounds = store.progress([r.id for r in store.experiment(exp).runs])
            results[name] = (elapsed, done, rounds)
            rate = 60 * done / elapsed
            print(f"{name:>5}: {done} examples, {rounds} rounds in {elapsed:.1f} s ({rate:.1f} examples/min)")
    local, ray_ = results["local"], results["ray"]
    print(f"throughput ratio ray / local (baseline): {(ray_[1] / ray_[0]) / (local[1] / local[0]):.2f}x")
    print("(both times include loading the model: once locally, once per actor in parallel)")


if __name__ == "__main__":
    main()
