"""Token streaming from the transformers backend: inside a graph, stream_mode="messages" yields
each reply as it is decoded, and the pieces join to the recorded draft."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch
from langchain_core.messages import AIMessageChunk

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import SamplingParams
from redraft.agents.transformers_llm import TextPieces
from redraft.critics import SelfCritic


def pieces_of(llm, text: str, stop: tuple[str, ...] = ()) -> list[str]:
    """Feed ``text``'s tokens one step at a time, as generate() does, and collect what is sent."""
    sent: list[str] = []
    streamer = TextPieces(llm.tokenizer, llm._eos, stop, lambda row, piece: sent.append(piece))
    ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt
    for tok in ids:
        streamer.put(torch.tensor([tok]))
    streamer.end()
    return sent


@pytest.mark.llm
def test_pieces_join_to_the_text_and_never_include_a_stop_string(embedded_llm):
    text = "  Marie Curie was born in Warsaw in 1867. ###END### She moved to Paris."
    assert "".join(pieces_of(embedded_llm, text)) == text.strip()
    sent = pieces_of(embedded_llm, text, stop=("###END###",))
    assert "".join(sent).strip() == "Marie Curie was born in Warsaw in 1867." and len(sent) > 3
    # Nothing of the stop string leaks, even partly, before it is complete.
    assert "#" not in "".join(sent)


@pytest.mark.llm
def test_stream_mode_messages_streams_tokens_from_the_embedded_model(embedded_llm):
    config = CorrectionConfig(max_rounds=2, mode="feedback", generation=SamplingParams(max_new_tokens=24))
    graph = build_graph(llm=embedded_llm, critics=[SelfCritic(embedded_llm)], config=config)
    by_run: dict[str, list[str]] = defaultdict(list)
    nodes: dict[str, str] = {}
    final = None
    for mode, chunk in graph.stream({"prompt": "Name a planet."}, stream_mode=["messages", "values"]):
        if mode == "values":
            final = chunk
            continue
        message, meta = chunk
        if isinstance(message, AIMessageChunk):
            by_run[message.id].append(message.content)
            nodes[message.id] = meta["langgraph_node"]
    drafts = [pieces for run, pieces in by_run.items() if nodes[run] in ("generate", "revise")]
    assert final is not None and len(drafts) == len(final["rounds"])
    # Token by token: many pieces per draft, which join to exactly the draft the state recorded.
    assert all(len(pieces) > 3 for pieces in drafts)
    assert ["".join(p).strip() for p in drafts] == [r["draft"] for r in final["rounds"]]
