"""Model calls as LangChain callback events, so LangGraph's tracing and streaming see them.

Inside a graph (or any LangChain runnable), every :meth:`LLM.generate` and :meth:`LLM.label_probs`
call of every backend reports to the callbacks of the node that made it, the way a LangChain chat
model does: ``on_chat_model_start`` with the prompt, then ``on_llm_end`` with the reply, its
token counts and finish reason, or ``on_llm_error``. A LangSmith or OpenTelemetry tracer attached
to the graph therefore shows each draft, check and revision with its prompt, tokens and latency,
and ``graph.stream(..., stream_mode="messages")`` yields each reply as an ``AIMessage``.

Outside a runnable, or with no callback attached, a call costs one context-variable lookup.
:class:`~redraft.agents.base.LLM` applies :func:`traced` to every subclass's ``generate`` and
``label_probs``; a backend never calls this module itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

F = TypeVar("F", bound=Callable[..., Any])

_SINK: contextvars.ContextVar[Callable[[int, str], None] | None] = contextvars.ContextVar(
    "redraft_token_sink", default=None
)

_INSIDE = contextvars.ContextVar("redraft_traced_call", default=False)
"""Set while a traced call runs: a backend that delegates to another (a wrapper, ``super()``)
is traced once, at the outermost call."""

_ROUND: contextvars.ContextVar[int | None] = contextvars.ContextVar("redraft_round", default=None)

ROUND_KEY = "redraft_round"
"""Metadata key of the correction round a model call belongs to (two rounds' ``critique`` spans
are otherwise told apart only by their order)."""


@contextlib.contextmanager
def in_round(index: int) -> Iterator[None]:
    """Label every model call made inside with correction round ``index`` in its trace metadata.

    Example:
        >>> with in_round(1):
        ...     _ROUND.get()
        1
    """
    token = _ROUND.set(index)
    try:
        yield
    finally:
        _ROUND.reset(token)


NOSTREAM = "nostream"
"""LangGraph's tag for runs whose output ``stream_mode="messages"`` skips: label scoring is traced
but is not a message anyone reads."""


def _runs(
    llm: Any, conversations: Sequence[Any], invocation: Callable[[], dict[str, Any]], name: str
) -> list[CallbackManagerForLLMRun]:
    """One callback run per conversation, children of the current node's run; none when nothing
    listens (then neither the messages nor ``invocation()``, the call's parameters, are built)."""
    from langchain_core.runnables.config import var_child_runnable_config

    config = var_child_runnable_config.get()
    if not config or not (callbacks := config.get("callbacks")):
        return []
    from langchain_core.callbacks import BaseCallbackManager, CallbackManager

    # LangGraph hands every node a manager, mostly with no handler in it: configuring a child
    # manager per model call then costs more than the node's own work, for nothing.
    if isinstance(callbacks, BaseCallbackManager) and not callbacks.handlers and not callbacks.inheritable_handlers:
        return []
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    tags = [NOSTREAM] if name == "label_probs" else []
    local = {"ls_provider": "redraft", "ls_model_name": llm.model_id, "ls_model_type": "chat"}
    if (round_index := _ROUND.get()) is not None:
        local[ROUND_KEY] = round_index
    manager = CallbackManager.configure(
        inheritable_callbacks=callbacks,
        inheritable_tags=config.get("tags"),
        local_tags=tags,
        inheritable_metadata=config.get("metadata"),
        local_metadata=local,
    )
    if not manager.handlers:
        return []
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    messages = [[kinds[m["role"]](content=m["content"]) for m in conv] for conv in conversations]
    serialized = {"lc": 1, "type": "not_implemented", "id": ["redraft", "agents", type(llm).__name__], "name": name}
    return manager.on_chat_model_start(
        serialized, messages, invocation_params={"model": llm.model_id, **invocation()}, name=f"redraft.{name}"
    )


@contextlib.contextmanager
def streaming_to(sink: Callable[[int, str], None] | None) -> Iterator[None]:
    """Run a model call on behalf of calls that are already traced (a batch of them): it reports
    no run of its own, and its tokens go to ``sink(row, piece)``."""
    inside, target = _INSIDE.set(True), _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(target)
        _INSIDE.reset(inside)


def token_sink() -> Callable[[int, str], None] | None:
    """Where a backend that can stream sends each new piece of text, as ``sink(row, piece)`` for
    the ``row``-th conversation of the batch; None when nothing listens (then it need not stream).
    The pieces of a row join to its completion's text, up to surrounding whitespace."""
    return _SINK.get()


def _sink(runs: Sequence[CallbackManagerForLLMRun]) -> Callable[[int, str], None]:
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    def send(row: int, piece: str) -> None:
        run = runs[row]
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece, id=f"run-{run.run_id}"))
        run.on_llm_new_token(piece, chunk=chunk)

    return send


def _generation(
    run_id: Any, text: str, model_id: str, info: dict[str, Any], usage: dict[str, int] | None = None
) -> Any:
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    # The id its streamed chunks carried: a messages stream that yielded them skips this whole copy.
    message = AIMessage(
        content=text, id=f"run-{run_id}", response_metadata={"model_name": model_id, **info}, usage_metadata=usage
    )
    return LLMResult(generations=[[ChatGeneration(message=message, generation_info=info)]])


def traced(method: F, name: str) -> F:
    """``method`` (an LLM's ``generate`` or ``label_probs``) reporting to the caller's callbacks."""

    @functools.wraps(method)
    def call(self: Any, conversations: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        if _INSIDE.get():
            return method(self, conversations, *args, **kwargs)
        token = _INSIDE.set(True)
        try:
            # The sampling parameters (generate) or the labels (label_probs), for the trace.
            arg = args[0] if args else kwargs["params" if name == "generate" else "labels"]

            def invocation() -> dict[str, Any]:
                return arg.model_dump(mode="json") if name == "generate" else {"labels": list(arg)}

            runs = _runs(self, conversations, invocation, name)
            sink = _SINK.set(_sink(runs) if runs and name == "generate" else None)
            try:
                out = method(self, conversations, *args, **kwargs)
            except BaseException as exc:
                for run in runs:
                    run.on_llm_error(exc)
                raise
            finally:
                _SINK.reset(sink)
            for i, run in enumerate(runs):
                run.on_llm_end(_result(self, conversations[i], run.run_id, name, out, i))
            return out
        finally:
            _INSIDE.reset(token)

    return call  # type: ignore[return-value]


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


def _result(llm: Any, conversation: Any, run_id: Any, name: str, out: Any, i: int) -> Any:
    if name == "generate":
        c = out[i]
        info = {"finish_reason": c.finish_reason}
        return _generation(run_id, c.text, llm.model_id, info, _usage(c.prompt_tokens, c.n_tokens))
    probs = out[i] if out is not None else None
    best = max(probs, key=probs.get) if probs else ""
    # Scoring reads the prompt and one position: its cost is the prompt, counted the backend's way.
    usage = _usage(llm.count_tokens(conversation), 1)
    return _generation(run_id, best, llm.model_id, {"label_probs": probs}, usage)
