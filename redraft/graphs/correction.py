"""The correction loop as a LangGraph state machine: generate → critique → (revise → critique)*.

The graph is wiring: each node runs one step of :class:`~redraft.graphs.steps.Corrector` on a
batch of one, announces it on ``stream_mode="custom"``, and the route revises while the status
is ``running``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, Command

from redraft.agents.base import LLM
from redraft.agents.tracing import in_round
from redraft.corrections.config import CorrectionConfig
from redraft.critics.base import Critic
from redraft.critics.human import VERDICT_SHAPE
from redraft.errors import InputError
from redraft.graphs.state import CorrectionInput, CorrectionState
from redraft.graphs.steps import Corrector, check_prompt, new_run, pending
from redraft.judges.base import Judge
from redraft.store.base import Recorder

__all__ = ["CorrectionGraph", "Corrector", "ThreadReusedError", "build_graph", "check_prompt", "new_run", "route"]

CorrectionGraph = CompiledStateGraph[CorrectionState, None, CorrectionInput, CorrectionState]


class _ResumeChecked(CompiledStateGraph):  # type: ignore[type-arg]
    """The compiled correction graph: LangGraph's, with the resume input checked first."""

    def stream(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        _check_resume(input)
        return super().stream(input, *args, **kwargs)

    def astream(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        _check_resume(input)
        return super().astream(input, *args, **kwargs)


def _check_resume(value: Any) -> None:
    """``Command(resume=None)`` is an empty Command, on which LangGraph fails with an unnamed
    ``UnboundLocalError``; name the problem instead (invoke and ainvoke go through stream)."""
    if isinstance(value, Command) and value == Command():
        raise InputError(f"Command(resume=None) carries no verdict for the paused graph; resume with {VERDICT_SHAPE}")


class ThreadReusedError(InputError):
    """A new prompt was sent on a LangGraph thread that already holds a correction."""


def _reuse_message(state: CorrectionState) -> str:
    # generate is the first node, so it only sees rounds when a new input arrives on a thread
    # whose correction already ran: the input has been merged into the old state, and continuing
    # would mix the two (the old example id, rounds and conversation under the new prompt).
    return (
        f"this thread already holds a correction (example {state.get('example_id')!r}, {len(state['rounds'])} "
        "round(s)); a new prompt on it would inherit that example's id, rounds and conversation. Use one thread "
        "per prompt, e.g. {'configurable': {'thread_id': f'{session}/{turn}'}}, or no checkpointer."
    )


def _streamed_draft(update: dict[str, Any]) -> dict[str, Any]:
    """Announce a new draft on ``graph.stream(stream_mode="custom")`` (a no-op outside a stream)."""
    record = update["pending"]
    get_stream_writer()(
        {
            "event": "draft",
            "round": record["index"],
            "text": record["draft"],
            "n_tokens": record["n_tokens"],
            "finish_reason": record["finish_reason"],
            "latency_s": record["gen_latency_s"],
        }
    )
    return update


def route(state: CorrectionState) -> Literal["revise", "__end__"]:
    """Revise while the status is ``running``; every stop rule has already set another status."""
    return "revise" if state.get("status") == "running" else "__end__"


def build_graph(
    *,
    llm: LLM,
    critics: Sequence[Critic],
    config: CorrectionConfig | None = None,
    store: str | Recorder | None = None,
    checkpointer: Checkpointer = None,
    run_name: str | None = None,
    run_id: str | None = None,
    judges: Mapping[str, Judge] | None = None,
) -> CorrectionGraph:
    """Compile the generate → critique → revise graph.

    Args:
        llm: generates drafts and revisions.
        critics: judge every draft; the loop stops once all of them pass.
        config: rounds, strategy and decoding (default: :class:`CorrectionConfig`'s).
        store: a SQLAlchemy URL or a :class:`Recorder`; every completed round is written in one
            transaction. ``None`` logs nothing. One graph is one run.
        checkpointer: any LangGraph checkpointer; pass ``{"configurable": {"thread_id": ...}}``
            to ``invoke`` to resume an interrupted correction. One thread holds one correction:
            a second prompt on a finished thread raises :class:`ThreadReusedError` instead of
            mixing the two.
        run_name: a label stored with the run.
        run_id: continue recording into this existing run instead of starting a new one
            (resume). The graph's run id is in ``graph.config["metadata"]["redraft_run_id"]``
            and in every output's ``run_id``.
        judges: ground-truth judges by name (``redraft.judges.JUDGES``). A prompt whose
            ``labels["judge"]`` names one of them gets every draft labelled, and the store
            records each critic's agreement with that label (critic accuracy).

    Example:
        >>> from redraft.agents.testing import ScriptedLLM
        >>> from redraft.critics import SelfCritic
        >>> llm = ScriptedLLM(["Lyon.", "VERDICT: INCORRECT\\nIt is Paris.", "Paris.", "VERDICT: CORRECT"])
        >>> graph = build_graph(llm=llm, critics=[SelfCritic(llm)])
        >>> out = graph.invoke({"prompt": "What is the capital of France?"})
        >>> out["final"], out["status"], len(out["rounds"])
        ('Paris.', 'accepted', 2)
    """
    config = config or CorrectionConfig()
    recorder: Recorder | None
    if isinstance(store, str):
        from redraft.store.sql import SQLStore

        recorder = SQLStore(store)
    else:
        recorder = store
    if recorder is not None and run_id is None:
        run_id = recorder.start_run(new_run(llm, critics, config, name=run_name))
    steps = Corrector(llm, critics, config, recorder, run_id, judges)

    def generate(state: CorrectionState) -> dict[str, Any]:
        if state.get("rounds"):
            raise ThreadReusedError(_reuse_message(state))
        with in_round(0):
            return _streamed_draft(steps.draft([state])[0])

    def critique(state: CorrectionState) -> dict[str, Any]:
        with in_round(pending(state)["index"]):
            update = steps.critique([state])[0]
        [record] = update["rounds"]
        get_stream_writer()(
            {
                "event": "critique",
                "round": record["index"],
                "critiques": [
                    {k: c.get(k) for k in ("critic", "passed", "score", "feedback")} for c in record["critiques"]
                ],
                "judgements": record.get("judgements", []),
                "status": update["status"],
            }
        )
        return update

    def revise(state: CorrectionState) -> dict[str, Any]:
        with in_round(len(state["rounds"])):  # the revision is the draft of the next round
            return _streamed_draft(steps.revise([state])[0])

    builder = StateGraph(CorrectionState, input_schema=CorrectionInput)
    builder.add_node("generate", generate)
    builder.add_node("critique", critique)
    builder.add_node("revise", revise)
    builder.add_edge(START, "generate")
    builder.add_edge("generate", "critique")
    builder.add_conditional_edges("critique", route, {"revise": "revise", END: END})
    builder.add_edge("revise", "critique")
    graph = builder.compile(checkpointer=checkpointer, name=run_name or "redraft-correction")
    # LangGraph builds a CompiledStateGraph itself; the checked graph is built from its attributes
    # through the constructor, as LangGraph's own Pregel.copy builds a copy (no class swapped).
    graph = _ResumeChecked(**{k: v for k, v in graph.__dict__.items() if k != "__orig_class__"})
    return graph.with_config(metadata={"redraft_run_id": run_id}) if run_id else graph
