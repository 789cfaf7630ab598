"""An in-process vLLM engine behind the :class:`LLM` contract (GPU; ``pip install "redraft[vllm]"``).

vLLM batches internally (continuous batching, paged attention), so a whole round of an experiment
goes to ``vllm.LLM.chat`` as one call. Custom logits processors are vLLM v1 engine classes loaded
when the engine starts and switched on per request through ``SamplingParams.extra_args``;
redraft's processors that support vLLM (``ProvDecode``) provide both halves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from redraft._extras import require
from redraft.agents.base import (
    LLM,
    Completion,
    Conversation,
    FinishReason,
    SamplingParams,
    chat_messages,
    label_mass,
    template_token_count,
)
from redraft.errors import InputError


@runtime_checkable
class VLLMProcessor(Protocol):
    """A logits processor usable with vLLM: an engine class plus per-request arguments."""

    def vllm_class(self) -> type[Any]:
        """The ``vllm.v1.sample.logits_processor.LogitsProcessor`` subclass the engine loads."""

    def vllm_extra_args(self) -> dict[str, Any]:
        """``SamplingParams.extra_args`` that switch the processor on for a request."""


def sampling_params(params: SamplingParams, extra_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """redraft's sampling parameters as ``vllm.SamplingParams`` keyword arguments.

    Example:
        >>> sampling_params(SamplingParams(max_new_tokens=8, stop=("\\n",)))
        {'max_tokens': 8, 'temperature': 0.0, 'top_p': 1.0, 'seed': None, 'stop': ['\\n'], 'skip_special_tokens': True}
    """
    kwargs: dict[str, Any] = {
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "seed": params.seed,
        "stop": list(params.stop),
        "skip_special_tokens": True,
    }
    if extra_args:
        kwargs["extra_args"] = extra_args
    return kwargs


class VLLMEngineLLM(LLM):
    """Batched chat generation on an in-process ``vllm.LLM``.

    Args:
        model: a local model directory or a hub id in the local cache.
        logits_processors: processors (e.g. ``ProvDecode``) whose engine classes must be loaded
            at start-up; ``generate`` can then switch each on per call.
        engine_kwargs: passed to ``vllm.LLM`` (``tensor_parallel_size``, ``gpu_memory_utilization``,
            ``max_model_len``, ``dtype``...).

    Example:
        >>> llm = VLLMEngineLLM("/models/Qwen2.5-7B-Instruct")  # needs: a GPU and vLLM  # doctest: +SKIP
    """

    def __init__(self, model: str, *, logits_processors: Sequence[VLLMProcessor] = (), **engine_kwargs: Any) -> None:
        vllm = require("vllm", "vllm")
        self.model_id = model
        self._classes = {p.vllm_class() for p in logits_processors}
        kwargs = dict(engine_kwargs)
        if self._classes:
            kwargs["logits_processors"] = sorted(self._classes, key=lambda c: c.__qualname__)
        self._vllm = vllm
        self.engine = vllm.LLM(model=model, **kwargs)
        self.tokenizer = self.engine.get_tokenizer()

    @property
    def context_length(self) -> int:
        return int(self.engine.llm_engine.model_config.max_model_len)

    def close(self) -> None:
        """Stop the engine's core process. Without it the interpreter waits on that child at
        exit, so ``redraft run --backend vllm`` printed its results and never exited."""
        core = getattr(getattr(self.engine, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()

    def count_tokens(self, conversation: Conversation) -> int:
        return template_token_count(self.tokenizer, conversation)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        extra: dict[str, Any] = {}
        for p in logits_processors:
            if not isinstance(p, VLLMProcessor) or p.vllm_class() not in self._classes:
                raise InputError(
                    f"{type(p).__name__} is not loaded in this vLLM engine; pass it when building the engine: "
                    "VLLMEngineLLM(model, logits_processors=[processor])"
                )
            extra.update(p.vllm_extra_args())
        sp = self._vllm.SamplingParams(**sampling_params(params, extra or None))
        messages = [chat_messages(c) for c in conversations]
        outputs = self.engine.chat(messages, sp, use_tqdm=False)
        completions = []
        for out in outputs:
            best = out.outputs[0]
            finish: FinishReason = "length" if best.finish_reason == "length" else "stop"
            completions.append(
                Completion(
                    text=best.text,
                    token_ids=tuple(best.token_ids),
                    finish_reason=finish,
                    prompt_tokens=len(out.prompt_token_ids or ()),
                )
            )
        return completions

    def label_probs(self, conversations: Sequence[Conversation], labels: Sequence[str]) -> list[dict[str, float]]:
        """One ``LLM.chat`` call for the batch: one greedy token with its top 20 log-probabilities."""
        sp = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
        outputs = self.engine.chat([chat_messages(c) for c in conversations], sp, use_tqdm=False)
        return [vllm_label_mass(out, labels) for out in outputs]


def vllm_label_mass(output: Any, labels: Sequence[str]) -> dict[str, float]:
    """:func:`~redraft.agents.base.label_mass` of a ``vllm.RequestOutput``'s first generated token
    (``outputs[0].logprobs[0]``: token id → ``Logprob(logprob, rank, decoded_token)``).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> first = {9: NS(logprob=-0.2, decoded_token="Yes"), 4: NS(logprob=-1.9, decoded_token=" no")}
        >>> out = NS(outputs=[NS(logprobs=[first])])
        >>> {k: round(v, 3) for k, v in vllm_label_mass(out, ["Yes", "No"]).items()}
        {'Yes': 0.819, 'No': 0.15}
    """
    steps = output.outputs[0].logprobs or []
    first = steps[0] if steps else {}
    return label_mass(((lp.decoded_token or "", lp.logprob) for lp in first.values()), labels)
