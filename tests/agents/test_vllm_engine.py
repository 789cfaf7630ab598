"""The vLLM engine backend: what runs without CUDA (parameter mapping, the missing-extra error);
the engine itself is tested only where vLLM and a GPU exist."""

from __future__ import annotations

import importlib.util

import pytest

from redraft.agents.base import SamplingParams
from redraft.agents.vllm_engine import VLLMEngineLLM, sampling_params, vllm_label_mass

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_sampling_params_mapping():
    greedy = sampling_params(SamplingParams(max_new_tokens=7, top_p=0.5, stop=("END",)))
    assert greedy == {
        "max_tokens": 7,
        "temperature": 0.0,
        "top_p": 1.0,  # nucleus has no meaning for greedy decoding
        "seed": None,
        "stop": ["END"],
        "skip_special_tokens": True,
    }
    sampled = sampling_params(SamplingParams(temperature=0.7, top_p=0.9, seed=1), {"redraft_prov_decode": "k"})
    assert (sampled["temperature"], sampled["top_p"], sampled["seed"]) == (0.7, 0.9, 1)
    assert sampled["extra_args"] == {"redraft_prov_decode": "k"}


def test_label_mass_from_a_vllm_shaped_output():
    """``RequestOutput.outputs[0].logprobs[0]`` maps token ids to ``Logprob(logprob, rank,
    decoded_token)``; every spelling of a label adds up, other tokens do not count."""
    import math
    from types import SimpleNamespace as Logprob

    first = {
        9906: Logprob(logprob=math.log(0.5), rank=1, decoded_token="Yes"),
        7566: Logprob(logprob=math.log(0.2), rank=2, decoded_token=" yes"),
        2360: Logprob(logprob=math.log(0.25), rank=3, decoded_token="No"),
        45: Logprob(logprob=math.log(0.05), rank=4, decoded_token="N"),
    }
    output = Logprob(outputs=[Logprob(logprobs=[first, {}])])
    mass = vllm_label_mass(output, ["Yes", "No"])
    assert mass["Yes"] == pytest.approx(0.7) and mass["No"] == pytest.approx(0.25)
    assert vllm_label_mass(Logprob(outputs=[Logprob(logprobs=None)]), ["Yes"]) == {"Yes": 0.0}


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_missing_vllm_names_the_extra():
    with pytest.raises(ImportError, match=r'pip install "redraft\[vllm\]"'):
        VLLMEngineLLM("/models/any")


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_VLLM, reason="needs vllm and a CUDA GPU")
def test_engine_generates_a_batch():  # pragma: no cover - runs on GPU machines only
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from redraft.agents.embedded import embedded_model_dir

    llm = VLLMEngineLLM(str(embedded_model_dir()), gpu_memory_utilization=0.3)
    out = llm.generate([[{"role": "user", "content": "Say hi."}]] * 3, SamplingParams(max_new_tokens=8))
    assert len(out) == 3 and all(c.token_ids for c in out)
    [probs] = llm.label_probs([[{"role": "user", "content": "Is Paris in France? Answer Yes or No."}]], ["Yes", "No"])
    assert 0.0 < probs["Yes"] + probs["No"] <= 1.0
