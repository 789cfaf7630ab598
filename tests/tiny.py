"""A tiny randomly initialised causal LM with the embedded model's tokenizer (no download), for
tests that drive TRL's trainers."""

from __future__ import annotations

from typing import Any


def tiny_llama(tokenizer: Any, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)
