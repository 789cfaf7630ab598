"""Experiment throughput on the embedded model: the batched runner, and ``graph.batch`` over a
:class:`~redraft.agents.batching.BatchingLLM`, against one ``graph.invoke`` per prompt (the
baseline), same prompts, critic, rounds and store, measured in the same run.

    python benchmarks/runner_batching.py [--per-set 8] [--rounds 2] [--batch 8] [--tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from redraft.agents.backends import BackendSpec, load_llm
from redraft.agents.base import SamplingParams
from redraft.agents.batching import BatchingLLM
from redraft.critics import make_critic
from redraft.datasets import load
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.graphs import CorrectionConfig, build_graph
from redraft.graphs.runs import as_input
from redraft.judges import make_judge
from redraft.store.sql import SQLStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-set", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    llm = load_llm(BackendSpec())
    datasets = [{"name": n, "limit": args.per_set, "seed": 0} for n in ("advbench", "benign")]
    rows = [r for d in datasets for r in load(d["name"], limit=args.per_set, seed=0)]
    generation = SamplingParams(max_new_tokens=args.tokens)
    with tempfile.TemporaryDirectory() as d:
        # Baseline: the graph, one invoke per prompt (every model call at batch size 1).
        store = SQLStore(f"sqlite:///{Path(d) / 'invoke.db'}")
        config = CorrectionConfig(max_rounds=args.rounds, mode="cac", generation=generation)
        judges = {name: make_judge(name) for name in {str(r.labels["judge"]) for r in rows}}
        graph = build_graph(llm=llm, critics=[make_critic("self-harm", llm)], config=config, store=store, judges=judges)
        start = time.perf_counter()
        for r in rows:
            graph.invoke({"prompt": r.prompt, "example_id": r.key, "source": r.source, "labels": dict(r.labels)})
        invoke_s = time.perf_counter() - start
        # The batched runner: round r of `batch` examples is one generate call and one critic call.
        spec = ExperimentSpec.parse(
            {
                "name": "batched",
                "datasets": datasets,
                "critics": [["self-harm"]],
                "modes": ["cac"],  # the mode its published figures ran
                "max_rounds": args.rounds,
                "batch_size": args.batch,
                "correction": {"generation": {"max_new_tokens": args.tokens}},
            }
        )
        store = SQLStore(f"sqlite:///{Path(d) / 'batched.db'}")
        start = time.perf_counter()
        ExperimentRunner(spec, store, llm).run()
        batched_s = time.perf_counter() - start
        # graph.batch over a BatchingLLM: the graph itself, its model calls coalesced across threads.
        coalescing = BatchingLLM(llm, max_batch=args.batch)
        store = SQLStore(f"sqlite:///{Path(d) / 'coalesced.db'}")
        graph = build_graph(
            llm=coalescing, critics=[make_critic("self-harm", coalescing)], config=config, store=store, judges=judges
        )
        inputs = [as_input(r) for r in rows]
        start = time.perf_counter()
        graph.batch(inputs, {"max_concurrency": args.batch})
        coalesced_s = time.perf_counter() - start
        sizes = coalescing.batch_sizes
    n = len(rows)
    print(f"{n} prompts, self-harm critic, cac, {args.rounds} rounds, {args.tokens}-token drafts, embedded model")
    print(f"{'path':<34} {'seconds':>8} {'prompts/min':>12} {'ratio':>6}")
    print(f"{'graph.invoke per prompt (baseline)':<34} {invoke_s:>8.1f} {60 * n / invoke_s:>12.1f} {1.0:>5.2f}x")
    print(
        f"{f'batched runner, batch {args.batch}':<34} {batched_s:>8.1f} {60 * n / batched_s:>12.1f} "
        f"{invoke_s / batched_s:>5.2f}x"
    )
    print(
        f"{f'graph.batch + BatchingLLM, {args.batch}':<34} {coalesced_s:>8.1f} {60 * n / coalesced_s:>12.1f} "
        f"{invoke_s / coalesced_s:>5.2f}x   ({len(sizes)} model calls, mean batch {sum(sizes) / len(sizes):.1f})"
    )


if __name__ == "__main__":
    main()
