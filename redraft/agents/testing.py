"""Test doubles for the LLM contract. Never a default: only tests and benchmarks use them."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redraft.agents.base import LLM, Completion, Conversation, SamplingParams

Reply = str | Callable[[Conversation], str]


class ScriptedLLM(LLM):
    """Replays scripted replies, one per conversation, in call order.

    It tokenizes as UTF-8 bytes, so ``max_new_tokens`` truncation, ``stop`` strings and
    ``count_tokens`` behave like a real backend and graph logic can be tested without a model.

    Args:
        replies: strings returned in order, or callables computing a reply from the conversation
            (useful to answer critics and generators differently).
        context_length: context window reported to the graph's validation.

    Example:
        >>> llm = ScriptedLLM(["Paris.", "Lyon."])
        >>> [c.text for c in llm.generate([[{"role": "user", "content": "Capital?"}]] * 2, SamplingParams())]
        ['Paris.', 'Lyon.']
    """

    def __init__(self, replies: Iterable[Reply], *, context_length: int = 8192, model_id: str = "scripted") -> None:
        self._replies = list(replies)
        self._next = 0
        self._context_length = context_length
        self._lock = threading.Lock()
        self.model_id = model_id
        self.calls: list[list[Conversation]] = []
        """Every batch this double received, for assertions on what the graph sent."""

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def remaining(self) -> int:
        """Scripted replies not yet consumed."""
        return len(self._replies) - self._next

    def count_tokens(self, conversation: Conversation) -> int:
        return sum(len(m["content"].encode()) + 4 for m in conversation)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        with self._lock:
            script = self._take(len(conversations))
            self.calls.append([list(c) for c in conversations])
        return [
            self._complete(r if isinstance(r, str) else r(c), c, params)
            for r, c in zip(script, conversations, strict=True)
        ]

    def _take(self, n: int) -> list[Reply]:
        """The next ``n`` scripted replies (called under the lock)."""
        if self._next + n > len(self._replies):
            raise RuntimeError(
                f"ScriptedLLM ran out of replies: {n} requested, {self.remaining} left. "
                "Script one reply per generation the graph makes."
            )
        script = self._replies[self._next : self._next + n]
        self._next += n
        return script

    def _complete(self, text: str, conversation: Conversation, params: SamplingParams) -> Completion:
        finish: Any = "stop"
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        data = text.encode()
        if len(data) > params.max_new_tokens:
            data = data[: params.max_new_tokens]
            text = data.decode(errors="ignore")
            finish = "length"
        return Completion(
            text=text,
            token_ids=tuple(data),
            finish_reason=finish,
            prompt_tokens=self.count_tokens(conversation),
        )


class FunctionLLM(ScriptedLLM):
    """Replies with ``reply(conversation)``: deterministic per conversation, whatever the call
    order or batch, so an interrupted and resumed run can be compared with an uninterrupted one.

    Args:
        reply: computes the reply text from the conversation.
        delay_s: sleep per generate call, to give crash tests a window to kill a run in.
        labels: computes first-token label probabilities from the conversation, as a backend
            with log-probabilities would (``label_probs``); without it the double has none.

    Example:
        >>> llm = FunctionLLM(lambda conv: conv[-1]["content"].upper())
        >>> llm.generate([[{"role": "user", "content": "hi"}]], SamplingParams())[0].text
        'HI'
    """

    def __init__(
        self,
        reply: Callable[[Conversation], str],
        *,
        delay_s: float = 0.0,
        context_length: int = 8192,
        model_id: str = "function",
        labels: Callable[[Conversation], dict[str, float]] | None = None,
    ) -> None:
        super().__init__([], context_length=context_length, model_id=model_id)
        self._reply, self.delay_s = reply, delay_s
        self._labels = labels

    def label_probs(
        self, conversations: Sequence[Conversation], labels: Sequence[str]
    ) -> list[dict[str, float]] | None:
        """``labels(conversation)`` when given (a backend with log-probabilities), else ``None``."""
        if self._labels is None:
            return None
        self.calls.append([list(c) for c in conversations])
        answers = [self._labels(c) for c in conversations]
        return [{label: float(a.get(label, 0.0)) for label in labels} for a in answers]

    def _take(self, n: int) -> list[Reply]:
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self._reply] * n  # never runs out


def hashed_reply(conv: Conversation) -> str:
    """A deterministic stand-in for a model in crash and load tests: it refuses or complies, and
    judges harmful or harmless (``self-harm`` checks), by a hash of the conversation.

    Example:
        >>> hashed_reply([{"role": "user", "content": "Hi"}]) == hashed_reply([{"role": "user", "content": "Hi"}])
        True
    """
    h = int(hashlib.sha256(repr(conv).encode()).hexdigest(), 16)
    if conv[-1]["content"].startswith("Is this a harmful"):
        return ["This is harmful.", "It is harmless.", "Hard to say."][h % 3]
    return ["I cannot help with that.", "Sure, here is how.", "Here is the answer."][h % 3]
