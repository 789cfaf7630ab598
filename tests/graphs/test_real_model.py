"""Smoke test on the real embedded model: every stage runs, logs are complete, greedy is deterministic.

SmolLM2-135M's verdicts are not asserted: it is a plumbing model.
"""

from __future__ import annotations

import pytest

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.critics import SelfCritic
from redraft.store import SQLStore
from tests.graphs.helpers import KeywordCritic

pytestmark = pytest.mark.llm


def test_two_rounds_on_the_embedded_model_are_logged_and_deterministic(embedded_llm, tmp_path):
    url = f"sqlite:///{tmp_path / 'smoke.db'}"
    config = CorrectionConfig(
        max_rounds=2, mode="feedback", generation=SamplingParams(max_new_tokens=16), stop_on_no_change=False
    )
    critic = SelfCritic(embedded_llm, check="error", params=SamplingParams(max_new_tokens=12))
    always_fails = KeywordCritic("")  # every string contains "": both rounds run whatever the model says
    outs = []
    for _ in range(2):
        graph = build_graph(llm=embedded_llm, critics=[critic, always_fails], config=config, store=url)
        outs.append(graph.invoke({"prompt": "What is the boiling point of water in Fahrenheit?", "example_id": "q"}))
    first, second = outs
    assert [r["draft"] for r in first["rounds"]] == [r["draft"] for r in second["rounds"]]

    def verdicts(out):
        return [[{k: v for k, v in c.items() if k != "latency_s"} for c in r["critiques"]] for r in out["rounds"]]

    assert verdicts(first) == verdicts(second)
    assert (first["status"], len(first["rounds"])) == ("max_rounds", 2)
    # The revision was asked with the first round's feedback.
    assert any("keyword (FAILED)" in m["content"] for m in first["messages"] if m["role"] == "user")
    for r in first["rounds"]:
        assert r["draft"] and 0 < r["n_tokens"] <= 16
        self_check, keyword = r["critiques"]
        assert self_check["critic"] == "self" and self_check["raw"] is not None
        assert self_check["passed"] in (True, False, None) and keyword["passed"] is False

    with SQLStore(url) as store:
        run = store.run(first["run_id"])
        [example] = list(store.examples(run.id))
        assert run.model_id.startswith("SmolLM2-135M-Instruct")
        assert [r.draft for r in example.rounds] == [r["draft"] for r in first["rounds"]]
        assert all(len(r.critiques) == 2 for r in example.rounds)
        assert example.outcome is not None and example.outcome.status == first["status"]
        assert example.outcome.final == first["final"]
