"""A real OpenTelemetry tracer (the SDK, OpenInference's LangChain instrumentation, an in-memory
exporter, no network) sees a two-round correction: one LLM span per model call, under the node
that made it, with prompt, reply, token counts and the round; no orphan spans.

The setup a user writes is the three lines in ``tracer()``; docs/tracing.md shows them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("openinference.instrumentation.langchain")

from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from redraft import CorrectionConfig, build_graph
from redraft.agents.testing import FunctionLLM
from redraft.critics import SelfCritic


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


def reply(conv: list[dict[str, str]]) -> str:
    return "Paris." if len(conv) > 1 else "Lyon."  # a revise turn follows the first draft


def labels(conv: list[dict[str, str]]) -> dict[str, float]:
    """Log-probability verdicts: the check of "Lyon." says no, the check of "Paris." yes."""
    wrong = any("Lyon." in m["content"] for m in conv[-1:])
    return {"Yes": 0.1, "No": 0.9} if wrong else {"Yes": 0.9, "No": 0.1}


def test_every_model_call_is_an_llm_span_under_its_node_with_round_and_tokens(spans):
    llm = FunctionLLM(reply, labels=labels)
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)], config=CorrectionConfig(max_rounds=3, mode="feedback"))
    out = graph.invoke({"prompt": "Capital of France?"})
    assert [r["draft"] for r in out["rounds"]] == ["Lyon.", "Paris."] and out["status"] == "accepted"

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    # No orphans: every span but the graph's root has its parent in the trace.
    roots = [s for s in finished if s.parent is None]
    assert [s.name for s in roots] == ["redraft-correction"]
    assert all(s.parent.span_id in by_id for s in finished if s.parent is not None)

    def attrs(s: Any) -> dict[str, Any]:
        return dict(s.attributes or {})

    llm_spans = [s for s in finished if attrs(s).get("openinference.span.kind") == "LLM"]
    llm_spans.sort(key=lambda s: s.start_time)
    rows = []
    for s in llm_spans:
        a, meta = attrs(s), json.loads(attrs(s)["metadata"])
        parent = by_id[s.parent.span_id]
        rows.append((s.name, parent.name, meta["redraft_round"], a["llm.output_messages.0.message.content"]))
        assert a["llm.model_name"] == "function" and a["llm.input_messages.0.message.content"]
        assert a["llm.token_count.prompt"] > 0  # label scoring reports its input tokens too
    # One LLM span per model call: the draft, its check (scored from log-probabilities), the
    # revision, its check; each under its node, each labelled with its round.
    assert rows == [
        ("redraft.generate", "generate", 0, "Lyon."),
        ("redraft.label_probs", "critique", 0, "No"),
        ("redraft.generate", "revise", 1, "Paris."),
        ("redraft.label_probs", "critique", 1, "Yes"),
    ]
    assert len(llm.calls) == len(rows)
