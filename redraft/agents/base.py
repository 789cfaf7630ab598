"""The LLM contract: batched chat generation.

A backend takes a list of conversations and returns one :class:`Completion` per conversation.
Everything crossing this boundary is typed and immutable so that backends (transformers, vLLM,
an OpenAI-compatible server, the scripted test double) are interchangeable.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    """One chat turn, in the OpenAI/Hugging Face ``{"role", "content"}`` shape."""

    role: Role
    content: str


Conversation = Sequence[Message]


def chat_messages(conversation: Conversation) -> list[dict[str, str]]:
    """Plain ``{"role", "content"}`` dicts, the shape chat templates and chat APIs take."""
    return [{"role": m["role"], "content": m["content"]} for m in conversation]


def template_token_count(tokenizer: Any, conversation: Conversation) -> int:
    """Prompt tokens of ``conversation`` through a Hugging Face tokenizer's chat template
    (``apply_chat_template`` returns ids, or a dict of them, depending on the version)."""
    ids = tokenizer.apply_chat_template(chat_messages(conversation), add_generation_prompt=True, tokenize=True)
    # A BatchEncoding is a Mapping but not a dict: len() of it counts its keys (2), not tokens.
    return len(ids["input_ids"] if isinstance(ids, Mapping) else ids)


def label_mass(tokens: Iterable[tuple[str, float]], labels: Sequence[str]) -> dict[str, float]:
    """Probability of each label as the reply's first token, from ``(token text, logprob)`` pairs
    (an OpenAI ``top_logprobs`` list, vLLM's ``Logprob`` entries). A token counts for a label when
    it spells the whole label, ignoring case and surrounding white space ("Yes", " yes").

    Example:
        >>> m = label_mass([("Yes", math.log(0.5)), (" yes", math.log(0.2)), ("No", math.log(0.1)), ("N", -1.0)],
        ...                ["Yes", "No"])
        >>> {k: round(v, 3) for k, v in m.items()}
        {'Yes': 0.7, 'No': 0.1}
    """
    wanted = {label.lower(): label for label in labels}
    mass = dict.fromkeys(labels, 0.0)
    for token, logprob in tokens:
        label = wanted.get(token.strip().lower())
        if label is not None:
            mass[label] += math.exp(logprob)
    return mass


class SamplingParams(BaseModel):
    """How to decode. Greedy by default, because experiments must be reproducible."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_new_tokens: int = Field(default=256, ge=1)
    """Upper bound on generated tokens per completion."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 means greedy decoding; above 0, multinomial sampling at this temperature."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass (only used when ``temperature > 0``)."""
    seed: int | None = None
    """Seed for sampling; ``None`` leaves the backend's random state alone."""
    stop: tuple[str, ...] = ()
    """Strings that end a completion; the stop string itself is not included in ``text``."""


FinishReason = Literal["stop", "length"]


class Completion(BaseModel):
    """One generated reply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """The decoded reply, without special tokens and cut before any stop string."""
    token_ids: tuple[int, ...]
    """The generated token ids (no prompt, no padding)."""
    finish_reason: FinishReason
    """``"stop"``: end-of-sequence or a stop string; ``"length"``: ``max_new_tokens`` reached."""
    prompt_tokens: int = 0
    """Number of prompt tokens after the chat template was applied."""
    completion_tokens: int | None = None
    """Generated tokens as the backend counted them, when ``token_ids`` cannot say (a server's
    ``usage`` without a local tokenizer); see :attr:`n_tokens`."""

    @property
    def n_tokens(self) -> int:
        """Generated tokens: the ids' count, else the backend's own count, else 0."""
        return len(self.token_ids) if self.token_ids else (self.completion_tokens or 0)


class LLM(abc.ABC):
    """A chat model that generates for a batch of conversations at once.

    Implementations must be safe to call repeatedly and must not mutate their inputs.
    """

    model_id: str
    """A stable identifier recorded with every run (a path, a hub id, or a served model name)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every backend's calls report to LangChain callbacks inside a graph (redraft.agents.tracing),
        # so tracers and stream_mode="messages" see them without each backend doing it.
        super().__init_subclass__(**kwargs)
        from redraft.agents.tracing import traced

        for name in ("generate", "label_probs"):
            if name in cls.__dict__:
                setattr(cls, name, traced(cls.__dict__[name], name))

    @property
    @abc.abstractmethod
    def context_length(self) -> int:
        """Maximum number of tokens (prompt + completion) the model accepts."""

    @abc.abstractmethod
    def count_tokens(self, conversation: Conversation) -> int:
        """Number of prompt tokens ``conversation`` takes once the chat template is applied."""

    @abc.abstractmethod
    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        """Generate one completion per conversation, in order.

        Args:
            conversations: chat histories, each ending with a user turn.
            params: decoding parameters shared by the batch.
            logits_processors: backend-specific hooks that rewrite next-token scores
                (transformers ``LogitsProcessor`` objects for :class:`TransformersLLM`).
        """

    def label_probs(
        self, conversations: Sequence[Conversation], labels: Sequence[str]
    ) -> list[dict[str, float]] | None:
        """For each conversation, the probability that the reply starts with each label (one
        word each, e.g. ``Yes``/``No``), read from the first token's log-probabilities; not
        renormalised, so the labels' total says how much the model meant to answer with one.

        Critics read verdicts this way instead of parsing free text. A backend that exposes no
        log-probabilities returns ``None`` (the default), and callers fall back to text.
        """
        return None

    def close(self) -> None:
        """Release what the backend holds beyond memory (an engine's worker processes); safe to
        call twice. Whoever loads a model closes it in a ``finally``, or uses it as a context
        manager. The default holds nothing.

        Example:
            >>> from redraft.agents.testing import ScriptedLLM
            >>> with ScriptedLLM(["hi"]) as llm:
            ...     llm.model_id
            'scripted'
        """
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
