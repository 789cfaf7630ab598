"""Server-sent-event streaming from the OpenAI-compatible backend: inside a graph that someone
streams or traces, requests go out with stream=true and stream_mode="messages" yields each reply
piece by piece; outside, requests stay plain."""

from __future__ import annotations

from collections import defaultdict

import pytest
from langchain_core.messages import AIMessageChunk

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.agents.openai_compat import OpenAICompatLLM, ServerError
from redraft.critics import SelfCritic
from tests.agents.openai_stub import StubServer
from tests.graphs.helpers import Roles

DRAFTS = ["The capital of France is Lyon, I think.", "The capital of France is Paris."]
CHECKS = ["VERDICT: INCORRECT\nIt is Paris.", "VERDICT: CORRECT"]


@pytest.fixture
def stub():
    server = StubServer(Roles(list(DRAFTS), list(CHECKS)))
    yield server
    server.stop()


def test_stream_mode_messages_streams_each_reply_over_sse(stub):
    llm = OpenAICompatLLM(stub.url, "stub-model", context_length=4096)
    config = CorrectionConfig(max_rounds=2, mode="feedback", generation=SamplingParams(max_new_tokens=32))
    graph = build_graph(llm=llm, critics=[SelfCritic(llm, verdicts="text")], config=config)
    pieces: dict[str, list[str]] = defaultdict(list)
    final = None
    for mode, chunk in graph.stream({"prompt": "Capital of France?"}, stream_mode=["messages", "values"]):
        if mode == "values":
            final = chunk
        elif isinstance(chunk[0], AIMessageChunk):
            pieces[chunk[0].id].append(chunk[0].content)
    assert final is not None
    drafts = [r["draft"] for r in final["rounds"]]
    joined = ["".join(p) for p in pieces.values()]
    # Word by word, and the words join to exactly what the state recorded.
    assert [j for j in joined if j in drafts] == drafts
    assert all(len(p) >= 5 for p in pieces.values() if "".join(p) in drafts)
    assert all(r.get("stream") is True and r["stream_options"] == {"include_usage": True} for r in stub.requests)


def test_outside_a_stream_requests_are_not_streamed(stub):
    llm = OpenAICompatLLM(stub.url, "stub-model", context_length=4096)
    [c] = llm.generate([[{"role": "user", "content": "Capital?"}]], SamplingParams(max_new_tokens=8))
    assert c.text == "The capital of France is Lyon, I think." and "stream" not in stub.requests[0]


def test_a_malformed_stream_event_is_a_clear_error(stub, monkeypatch):
    def broken(self, answer, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\ndata: {not json\n\n')
        self.close_connection = True

    handler = stub.server.RequestHandlerClass
    monkeypatch.setattr(handler, "_send_events", broken)
    llm = OpenAICompatLLM(stub.url, "stub-model", context_length=4096)
    graph = build_graph(llm=llm, critics=[], config=CorrectionConfig(max_rounds=1))
    with pytest.raises(ServerError, match="malformed stream event"):
        list(graph.stream({"prompt": "q"}, stream_mode="messages"))
    assert [r.get("stream") for r in stub.requests] == [True]  # the one streamed request it refused
