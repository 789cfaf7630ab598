"""LLM backends and role prompts. Heavy backends load lazily: importing this package is cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes
from redraft.agents.base import LLM, Completion, Conversation, FinishReason, Message, SamplingParams

if TYPE_CHECKING:
    from redraft.agents.embedded import default_llm
    from redraft.agents.testing import ScriptedLLM
    from redraft.agents.transformers_llm import TransformersLLM

__all__ = [
    "LLM",
    "Completion",
    "Conversation",
    "FinishReason",
    "Message",
    "SamplingParams",
    "ScriptedLLM",
    "TransformersLLM",
    "default_llm",
]

# transformers and torch take seconds to import; only pay for them when a backend is used.
__getattr__ = lazy_attributes(
    __name__,
    {
        "default_llm": "redraft.agents.embedded",
        "TransformersLLM": "redraft.agents.transformers_llm",
        "ScriptedLLM": "redraft.agents.testing",
    },
)
