"""Model calls are visible to LangChain callbacks inside a graph: a tracer sees every draft, check
and revision with its prompt, tokens and outcome, and stream_mode="messages" yields the replies."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.agents.testing import ScriptedLLM
from redraft.critics import SelfCritic
from tests.graphs.helpers import scripted

OK, BAD = "VERDICT: CORRECT", "VERDICT: INCORRECT\nIt is Paris."


class Recorder(BaseCallbackHandler):
    """Records chat-model runs as a tracer would: start (prompt, node), end (reply, usage) or error."""

    def __init__(self) -> None:
        self.runs: dict[Any, dict[str, Any]] = {}

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        [conv] = messages
        self.runs[run_id] = {
            "prompt": conv[-1].content,
            "node": kwargs["metadata"].get("langgraph_node"),
            "name": kwargs.get("name"),
            "model": kwargs["invocation_params"]["model"],
            "parent": parent_run_id,
        }

    def on_llm_end(self, response, *, run_id, **kwargs):
        [[generation]] = response.generations
        self.runs[run_id]["reply"] = generation.message.content
        self.runs[run_id]["usage"] = generation.message.usage_metadata

    def on_llm_error(self, error, *, run_id, **kwargs):
        self.runs[run_id]["error"] = str(error)


def graph_of(llm: ScriptedLLM) -> Any:
    return build_graph(llm=llm, critics=[SelfCritic(llm)], config=CorrectionConfig(max_rounds=3, mode="feedback"))


def test_a_tracer_sees_every_model_call_with_its_node_prompt_reply_and_tokens():
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    tracer = Recorder()
    out = graph_of(llm).invoke({"prompt": "Capital of France?"}, {"callbacks": [tracer]})
    runs = list(tracer.runs.values())
    # Four calls, in order: the draft, its check, the revision, its check.
    assert [(r["node"], r["reply"]) for r in runs] == [
        ("generate", "Lyon."),
        ("critique", BAD),
        ("revise", "Paris."),
        ("critique", OK),
    ]
    assert runs[0]["prompt"] == "Capital of France?" and runs[0]["name"] == "redraft.generate"
    assert all(r["model"] == llm.model_id and r["parent"] is not None for r in runs)
    # The token counts are the completions' own, which the store records too.
    assert [r["usage"]["output_tokens"] for r in runs[::2]] == [rd["n_tokens"] for rd in out["rounds"]]


def test_stream_mode_messages_yields_each_reply_tagged_with_its_node():
    llm = scripted(["Lyon.", "Paris."], [BAD, OK])
    chunks = list(graph_of(llm).stream({"prompt": "Capital of France?"}, stream_mode="messages"))
    assert all(isinstance(message, AIMessage) for message, _ in chunks)
    assert [(meta["langgraph_node"], message.content) for message, meta in chunks] == [
        ("generate", "Lyon."),
        ("critique", BAD),
        ("revise", "Paris."),
        ("critique", OK),
    ]


def test_a_failed_model_call_is_reported_as_an_error_and_still_raises():
    def boom(conv):
        raise RuntimeError("backend down")

    tracer = Recorder()
    with pytest.raises(RuntimeError, match="backend down"):
        graph_of(scripted([boom], [])).invoke({"prompt": "q"}, {"callbacks": [tracer]})
    [run] = tracer.runs.values()
    assert run["error"] == "backend down" and "reply" not in run


def test_outside_a_graph_a_model_call_reports_nowhere_and_is_unchanged():
    llm = ScriptedLLM(["hi"])
    [completion] = llm.generate([[{"role": "user", "content": "q"}]], SamplingParams())
    assert completion.text == "hi"
