"""Coalesce concurrent model calls into batches, so ``graph.batch`` batches the model.

``graph.batch(inputs)`` runs each input's nodes in its own thread; each node calls the model for
one conversation. :class:`BatchingLLM` holds the first call of a kind (``generate`` with the same
sampling parameters, or ``label_probs`` with the same labels) for a short window, lets the calls
that arrive meanwhile join it, and makes one batched call to the wrapped model for all of them.
Each caller gets back its own rows, its own exception if the batch failed, and, inside a stream
or trace, its own tokens (:mod:`redraft.agents.tracing`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redraft.agents.base import LLM, Completion, Conversation, SamplingParams
from redraft.agents.tracing import streaming_to, token_sink
from redraft.errors import InputError


@dataclass
class _Call:
    conversations: list[Conversation]
    sink: Callable[[int, str], None] | None
    run: Callable[[list[Any]], Any]
    """The wrapped model's method for this call's kind, with its parameters bound."""
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class BatchingLLM(LLM):
    """Wraps ``llm``; concurrent calls of the same kind within ``window_s`` become one batch of
    at most ``max_batch`` conversations.

    Example:
        >>> from redraft.agents.testing import ScriptedLLM
        >>> from redraft import build_graph
        >>> llm = BatchingLLM(ScriptedLLM(["Paris."] * 4))
        >>> graph = build_graph(llm=llm, critics=[])
        >>> [out["final"] for out in graph.batch([{"prompt": f"q{i}"} for i in range(4)])]
        ['Paris.', 'Paris.', 'Paris.', 'Paris.']
        >>> sum(llm.batch_sizes)  # four drafts, in as few calls as arrived within the window
        4

    Args:
        llm: the model to call.
        max_batch: most conversations in one call; a full batch goes at once.
        window_s: how long the first call of a kind waits for others to join it; while the
            wrapped model is busy with an earlier batch it keeps gathering until the model is
            free. A lone call pays the window once per model call: keep it well below one
            call's duration.
    """

    def __init__(self, llm: LLM, *, max_batch: int = 32, window_s: float = 0.02) -> None:
        if max_batch < 1 or window_s < 0:
            raise InputError(f"max_batch must be ≥ 1 and window_s ≥ 0, got {max_batch} and {window_s}")
        self.llm, self.max_batch, self.window_s = llm, max_batch, window_s
        self.model_id = llm.model_id
        self.batch_sizes: list[int] = []
        """Conversations per call made to the wrapped model, in order (for measuring coalescing)."""
        self._lock = threading.Condition()
        self._open: dict[Hashable, list[_Call]] = {}
        self._running = 0
        """Batches in the wrapped model right now."""

    @property
    def context_length(self) -> int:
        return self.llm.context_length

    def count_tokens(self, conversation: Conversation) -> int:
        return self.llm.count_tokens(conversation)

    def __getattr__(self, name: str) -> Any:
        # The wrapped model's other attributes (its tokenizer, for the BCI critic's check).
        if name == "llm":
            raise AttributeError(name)
        return getattr(self.llm, name)

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: SamplingParams,
        *,
        logits_processors: Sequence[Any] = (),
    ) -> list[Completion]:
        if logits_processors:  # stateful per batch (Prov-Decode): never mixed with other calls
            return self.llm.generate(conversations, params, logits_processors=logits_processors)
        return list(self._coalesce(("generate", params), conversations, lambda convs: self.llm.generate(convs, params)))

    def label_probs(
        self, conversations: Sequence[Conversation], labels: Sequence[str]
    ) -> list[dict[str, float]] | None:
        out = self._coalesce(("label_probs", tuple(labels)), conversations, lambda c: self.llm.label_probs(c, labels))
        return None if out is None else list(out)

    def _coalesce(self, key: Hashable, conversations: Sequence[Conversation], run: Callable[[list[Any]], Any]) -> Any:
        if not conversations:
            return run([])
        call = _Call(list(conversations), token_sink(), run)
        with self._lock:
            calls = self._open.setdefault(key, [])
            calls.append(call)
            leader = len(calls) == 1
            self._lock.notify_all()
        if leader:
            deadline = time.monotonic() + self.window_s
            with self._lock:
                # Gather for the window, and for as long as the model is busy with an earlier batch:
                # calls that arrive meanwhile would only queue behind it, so they join this one.
                while self._size(key) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0 and not self._running:
                        break
                    self._lock.wait(left if left > 0 else None)
                batch = self._take(key)
            self._execute(batch)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _size(self, key: Hashable) -> int:
        return sum(len(c.conversations) for c in self._open.get(key, []))

    def _take(self, key: Hashable) -> list[_Call]:
        """The open calls of ``key`` up to ``max_batch`` conversations (the first always); the
        rest go out as the next batch, from a thread of their own (their callers all wait)."""
        calls = self._open.pop(key)
        size = 0
        for i, c in enumerate(calls):
            size += len(c.conversations)
            if i and size > self.max_batch:
                self._open[key] = calls[i:]
                threading.Thread(target=self._execute_rest, args=(key,), daemon=True).start()
                return calls[:i]
        return calls

    def _execute_rest(self, key: Hashable) -> None:
        with self._lock:
            batch = self._take(key) if key in self._open else []
        if batch:
            self._execute(batch)

    def _execute(self, batch: list[_Call]) -> None:
        """One call to the wrapped model for the whole batch; each member gets its rows, or the error."""
        flat = [c for member in batch for c in member.conversations]
        with self._lock:
            self._running += 1
            self.batch_sizes.append(len(flat))
        try:
            with streaming_to(_fan_out(batch)):
                out = batch[0].run(flat)
        except BaseException as exc:  # every caller re-raises it in its own thread
            for member in batch:
                member.error = exc
                member.done.set()
            return
        finally:
            with self._lock:
                self._running -= 1
                self._lock.notify_all()
        start = 0
        for member in batch:
            n = len(member.conversations)
            member.result = None if out is None else out[start : start + n]
            start += n
            member.done.set()


def _fan_out(batch: Sequence[_Call]) -> Callable[[int, str], None] | None:
    """One token sink for a batch: row ``i`` of the batch goes to its caller's own sink and row."""
    owners: list[tuple[Callable[[int, str], None] | None, int]] = [
        (member.sink, row) for member in batch for row in range(len(member.conversations))
    ]
    if not any(sink for sink, _ in owners):
        return None

    def send(i: int, piece: str) -> None:
        sink, row = owners[i]
        if sink is not None:
            sink(row, piece)

    return send
