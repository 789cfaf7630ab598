"""The self-critic's verdicts on the embedded model: read from log-probabilities against parsed text.

One experiment per verdict source (AdvBench + benign prompts, the ``self-harm`` critic, ``cac``
mode): how often the critic abstains, and its accuracy against the refusal judge over the
verdicts it gave. The text parser is the baseline, measured in the same run.

    python benchmarks/self_critic_verdicts.py [--per-set 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from redraft.agents.backends import BackendSpec, load_llm
from redraft.analysis.metrics import critic_accuracy, critic_threshold
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-set", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    llm = load_llm(BackendSpec())
    print(f"{'verdicts':>10} {'checks':>7} {'abstained':>10} {'accuracy':>9} {'AUROC':>6} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as d:
        for source in ("text", "logprobs"):
            spec = ExperimentSpec.parse(
                {
                    "name": f"self-critic-{source}",
                    "datasets": [
                        {"name": "advbench", "limit": args.per_set, "seed": 0},
                        {"name": "benign", "limit": args.per_set, "seed": 0},
                    ],
                    "critics": [["self-harm"]],
                    "modes": ["cac"],  # the mode its published figures ran
                    "max_rounds": args.rounds,
                    "critic_options": {"self_verdicts": source},
                    "correction": {"generation": {"max_new_tokens": 64}},
                }
            )
            store = SQLStore(f"sqlite:///{Path(d) / f'{source}.db'}")
            start = time.perf_counter()
            exp = ExperimentRunner(spec, store, llm).run()
            seconds = time.perf_counter() - start
            runs = [r.id for r in store.experiment(exp).runs]
            [whole] = critic_accuracy(store, runs, by_round=False)
            checks = whole.n + whole.abstained
            auroc = critic_threshold(store, runs, "self-harm").auroc if whole.n else float("nan")
            print(
                f"{source:>10} {checks:>7} {whole.abstained / checks:>10.3f} {whole.accuracy:>9.3f} "
                f"{auroc:>6.3f} {seconds:>8.0f}"
            )
            store.close()


if __name__ == "__main__":
    main()
