"""The correction loop as a LangGraph state machine: generate → critique → (revise → critique)*.

The step logic lives in :class:`Corrector`, whose methods take and return *lists* of states, so
the graph (a batch of one per ``invoke``) and the experiment runner (round r of many examples in
one ``generate`` call) share one implementation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from redraft.agents.base import LLM, Completion, Message
from redraft.agents.prompts import CritiqueNote, external_check_turns, opening, revise_instruction
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.errors import InputError
from redraft.graphs.config import CorrectionConfig
from redraft.graphs.state import CorrectionInput, CorrectionState, Status
from redraft.judges.base import Judge, JudgeItem, Label
from redraft.store.base import ExampleInfo, OutcomeInfo, Recorder, RoundRecord, RunInfo

if TYPE_CHECKING:  # torch and transformers load only when Prov-Decode is asked for
    from redraft.provenance.decode import ProvDecode

CorrectionGraph = CompiledStateGraph[CorrectionState, None, CorrectionInput, CorrectionState]


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _round(index: int, completion: Completion, latency_s: float) -> RoundRecord:
    return {
        "index": index,
        "draft": completion.text,
        "n_tokens": len(completion.token_ids),
        "finish_reason": completion.finish_reason,
        "gen_latency_s": latency_s,
        "critiques": [],
    }


class Corrector:
    """Batch-first steps of the loop. Each method returns one partial state update per input state."""

    def __init__(
        self,
        llm: LLM,
        critics: Sequence[Critic],
        config: CorrectionConfig,
        recorder: Recorder | None = None,
        run_id: str | None = None,
        judges: Mapping[str, Judge] | None = None,
    ) -> None:
        names = [c.name for c in critics]
        if len(set(names)) != len(names):
            raise InputError(f"critic names must be unique, got {names}; pass name=... to tell them apart")
        self.llm, self.critics, self.config = llm, list(critics), config
        self._prov_decode: ProvDecode | None = None
        self.recorder, self.run_id = recorder, run_id
        self.judges = dict(judges or {})

    # -- validation at the boundary --------------------------------------------------------------

    def opening(self, prompt: object) -> list[Message]:
        """Validate a prompt and return its first conversation, before anything is generated."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(
                f"the prompt is empty or not a string (got {prompt!r}); "
                "invoke the graph with {'prompt': 'your question'}"
            )
        conv = opening(prompt, self.config.system_prompt)
        n, budget = self.llm.count_tokens(conv), self.config.generation.max_new_tokens
        if n + budget > self.llm.context_length:
            raise InputError(
                f"the prompt takes {n} tokens, but {self.llm.model_id!r} has a {self.llm.context_length}-token "
                f"context and each draft may add {budget} tokens. Shorten the prompt, lower "
                "config.generation.max_new_tokens, or use a model with a longer context."
            )
        return conv

    # -- steps -------------------------------------------------------------------------------------

    def _generate(self, conversations: list[list[Message]]) -> tuple[list[Completion], float]:
        start = time.perf_counter()
        completions = self.llm.generate(
            conversations, self.config.generation, logits_processors=self._logits_processors()
        )
        return completions, (time.perf_counter() - start) / max(1, len(conversations))

    def _logits_processors(self) -> tuple[ProvDecode, ...]:
        """Prov-Decode when the config asks for it, built on first use (it loads the index)."""
        pd = self.config.prov_decode
        if pd is None:
            return ()
        if self._prov_decode is None:
            from redraft.provenance.decode import ProvDecode
            from redraft.provenance.index import SuffixIndex

            index = SuffixIndex.load(pd.index)
            self._prov_decode = ProvDecode(index, pd.threshold, mode=pd.mode, penalty=pd.penalty)
        return (self._prov_decode,)

    def draft(self, states: Sequence[CorrectionState]) -> list[dict[str, Any]]:
        """Round 0: the first draft for each prompt."""
        convs = [self.opening(s["prompt"]) for s in states]
        completions, latency = self._generate(convs)
        return [
            {
                "example_id": s.get("example_id") or uuid.uuid4().hex,
                "run_id": self.run_id,
                "messages": [*conv, {"role": "assistant", "content": c.text}],
                "pending": _round(0, c, latency),
                "status": "running",
            }
            for s, conv, c in zip(states, convs, completions, strict=True)
        ]

    def critique(self, states: Sequence[CorrectionState]) -> list[dict[str, Any]]:
        """Run every critic on each pending draft, decide the status, and record the round."""
        pendings = [_pending(s) for s in states]
        items = [
            DraftContext(
                prompt=s["prompt"],
                draft=p["draft"],
                round_index=p["index"],
                history=tuple(s["messages"][:-1]),
                labels=s.get("labels") or {},
            )
            for s, p in zip(states, pendings, strict=True)
        ]
        per_critic = [self._run_critic(c, items) for c in self.critics]
        labels = self._judge(items)
        updates = []
        records: list[tuple[ExampleInfo, RoundRecord, OutcomeInfo | None]] = []
        for i, s in enumerate(states):
            critiques = [results[i] for results in per_critic]
            record: RoundRecord = {**pendings[i], "critiques": [c.model_dump(mode="json") for c in critiques]}
            label = labels[i]
            if label is not None:
                record["judgements"] = [label.model_dump(mode="json")]
            status = self._status(s, record, critiques)
            final = record["draft"] if status != "running" else None
            outcome = None
            if status != "running":
                outcome = OutcomeInfo(status=status, rounds_used=record["index"] + 1, final=record["draft"])
            records.append((_example(s), record, outcome))
            updates.append({"rounds": [record], "pending": None, "status": status, "final": final})
        if self.recorder is not None and self.run_id is not None:
            self.recorder.record_rounds(self.run_id, records)
        return updates

    def _run_critic(self, critic: Critic, items: list[DraftContext]) -> list[Critique]:
        results = critic.critique(items)
        if len(results) != len(items):
            raise RuntimeError(
                f"critic {critic.name!r} returned {len(results)} critiques for {len(items)} drafts; "
                "a Critic must return exactly one critique per draft"
            )
        return results

    def _judge(self, items: list[DraftContext]) -> list[Label | None]:
        """The ground-truth label of each draft whose example names a judge we were given."""
        out: list[Label | None] = [None] * len(items)
        by_judge: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            name = item.labels.get("judge")
            if isinstance(name, str) and name in self.judges:
                by_judge.setdefault(name, []).append(i)
        for name, idx in by_judge.items():
            batch = [JudgeItem(prompt=items[i].prompt, text=items[i].draft, labels=items[i].labels) for i in idx]
            for i, label in zip(idx, self.judges[name].judge(batch), strict=True):
                out[i] = label
        return out

    def _status(self, state: CorrectionState, record: RoundRecord, critiques: list[Critique]) -> Status:
        if all(c.passed is True for c in critiques):
            return "accepted"
        previous = state["rounds"][-1]["draft"] if state["rounds"] else None
        if self.config.stop_on_no_change and previous is not None and _same_text(previous, record["draft"]):
            return "no_change"
        if record["index"] + 1 >= self.config.max_rounds:
            return "max_rounds"
        return "running"

    def revision_turns(self, state: CorrectionState) -> list[Message]:
        """The turns added before a revision: the critiques as context (``cac``) or a revise
        instruction carrying every critic's feedback (``feedback``)."""
        critiques = [Critique.model_validate(c) for c in state["rounds"][-1]["critiques"]]
        if self.config.mode == "feedback":
            notes = [CritiqueNote(critic=c.critic, passed=c.passed, feedback=c.feedback) for c in critiques]
            return [{"role": "user", "content": revise_instruction(notes)}]
        turns: list[Message] = []
        for c in critiques:
            if c.question is not None and c.raw is not None:
                turns += [{"role": "user", "content": c.question}, {"role": "assistant", "content": c.raw}]
            else:
                turns += external_check_turns(c.critic, c.passed, c.feedback)
        return [*turns, {"role": "user", "content": state["prompt"]}]

    def revise(self, states: Sequence[CorrectionState]) -> list[dict[str, Any]]:
        """Round r+1: a new draft from the conversation plus the revision turns."""
        turns = [self.revision_turns(s) for s in states]
        completions, latency = self._generate([[*s["messages"], *t] for s, t in zip(states, turns, strict=True)])
        return [
            {
                "messages": [*t, {"role": "assistant", "content": c.text}],
                "pending": _round(s["rounds"][-1]["index"] + 1, c, latency),
            }
            for s, t, c in zip(states, turns, completions, strict=True)
        ]


def _pending(state: CorrectionState) -> RoundRecord:
    pending = state.get("pending")
    if pending is None:
        raise RuntimeError("critique ran without a pending draft; the graph wiring is broken")
    return pending


def _example(state: CorrectionState) -> ExampleInfo:
    return ExampleInfo(
        key=state.get("example_id") or "",
        prompt=state["prompt"],
        source=state.get("source"),
        labels=state.get("labels"),
    )


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
        config: rounds, mode and decoding (defaults: 3 rounds, ``feedback`` mode, greedy).
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
        info = RunInfo(
            model_id=llm.model_id,
            config=config.model_dump(mode="json"),
            critics=[c.describe() for c in critics],
            name=run_name,
        )
        run_id = recorder.start_run(info)
    steps = Corrector(llm, critics, config, recorder, run_id, judges)

    def generate(state: CorrectionState) -> dict[str, Any]:
        if state.get("rounds"):
            raise ThreadReusedError(_reuse_message(state))
        return _streamed_draft(steps.draft([state])[0])

    def critique(state: CorrectionState) -> dict[str, Any]:
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
    return graph.with_config(metadata={"redraft_run_id": run_id}) if run_id else graph
