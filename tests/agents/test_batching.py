"""BatchingLLM: concurrent calls become one batched call; each caller gets its own rows, error and
tokens; graph.batch through it gives the same answers as one invoke per prompt."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from redraft import CorrectionConfig, build_graph
from redraft.agents.base import Completion, Conversation, SamplingParams
from redraft.agents.batching import BatchingLLM
from redraft.agents.testing import FunctionLLM
from redraft.agents.tracing import streaming_to, token_sink
from redraft.critics import SelfCritic


class Recording(FunctionLLM):
    """Echoes each prompt upper-cased, records every batch, and streams each reply word by word."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(lambda conv: conv[-1]["content"].upper(), **kwargs)
        self.batches: list[list[str]] = []

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams, **kwargs: Any
    ) -> list[Completion]:
        self.batches.append([c[-1]["content"] for c in conversations])
        out = super().generate(conversations, params, **kwargs)
        if (sink := token_sink()) is not None:
            for row, completion in enumerate(out):
                for word in completion.text.split():
                    sink(row, word)
        return out


def concurrently(n: int, call) -> list[Any]:
    """Run ``call(i)`` in ``n`` threads released together; results (or exceptions) by ``i``."""
    start, out = threading.Barrier(n), [None] * n

    def worker(i: int) -> None:
        start.wait()
        try:
            out[i] = call(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def ask(llm, text: str, params: SamplingParams | None = None) -> str:
    return llm.generate([[{"role": "user", "content": text}]], params or SamplingParams())[0].text


def test_concurrent_calls_become_one_batch_and_each_caller_gets_its_own_rows():
    inner = Recording()
    llm = BatchingLLM(inner, max_batch=8, window_s=5.0)  # a full batch goes at once, long before 5 s
    out = concurrently(8, lambda i: ask(llm, f"q{i}"))
    assert out == [f"Q{i}" for i in range(8)]
    assert [len(b) for b in inner.batches] == [8] and llm.batch_sizes == [8]


def test_calls_of_different_kinds_are_never_mixed():
    inner = Recording()
    llm = BatchingLLM(inner, max_batch=4, window_s=5.0)
    short, long_ = SamplingParams(max_new_tokens=8), SamplingParams(max_new_tokens=64)
    out = concurrently(8, lambda i: ask(llm, f"q{i}", short if i % 2 else long_))
    assert out == [f"Q{i}" for i in range(8)]
    assert sorted(sorted(b) for b in inner.batches) == [["q0", "q2", "q4", "q6"], ["q1", "q3", "q5", "q7"]]


def test_a_batch_never_exceeds_max_batch():
    inner = Recording()
    llm = BatchingLLM(inner, max_batch=3, window_s=0.5)
    out = concurrently(10, lambda i: ask(llm, f"q{i}"))
    assert out == [f"Q{i}" for i in range(10)]
    assert all(len(b) <= 3 for b in inner.batches) and sum(map(len, inner.batches)) == 10


def test_a_failed_batch_raises_in_every_caller():
    def reply(conv):
        raise RuntimeError("backend down")

    llm = BatchingLLM(FunctionLLM(reply), max_batch=4, window_s=5.0)
    out = concurrently(4, lambda i: ask(llm, f"q{i}"))
    assert all(isinstance(e, RuntimeError) and str(e) == "backend down" for e in out)


def test_each_caller_receives_only_its_own_tokens():
    llm = BatchingLLM(Recording(), max_batch=3, window_s=5.0)
    got: list[list[tuple[int, str]]] = [[] for _ in range(3)]

    def call(i: int) -> str:
        with streaming_to(lambda row, piece: got[i].append((row, piece))):
            return ask(llm, f"words of caller {i}")

    concurrently(3, call)
    assert got == [[(0, w) for w in f"WORDS OF CALLER {i}".split()] for i in range(3)]


def test_graph_batch_through_it_matches_one_invoke_per_prompt():
    def reply(conv):
        last = conv[-1]["content"]
        return "VERDICT: CORRECT" if "VERDICT" in last else f"answer to {last}"

    config = CorrectionConfig(max_rounds=2, mode="feedback")
    prompts = [{"prompt": f"question {i}?"} for i in range(6)]
    plain = FunctionLLM(reply)
    expected = [build_graph(llm=plain, critics=[SelfCritic(plain)], config=config).invoke(p)["final"] for p in prompts]
    llm = BatchingLLM(FunctionLLM(reply), window_s=0.2)
    graph = build_graph(llm=llm, critics=[SelfCritic(llm)], config=config)
    outs = graph.batch(prompts, {"max_concurrency": 6})
    assert [o["final"] for o in outs] == expected
    # 6 drafts, 6 log-probability verdict attempts (this double has none), 6 text checks: coalesced.
    assert max(llm.batch_sizes) > 1 and sum(llm.batch_sizes) == 18


def test_bad_settings_are_refused():
    from redraft.errors import InputError

    with pytest.raises(InputError, match="max_batch"):
        BatchingLLM(FunctionLLM(str), max_batch=0)
