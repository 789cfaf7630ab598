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
from langgraph.types import Checkpointer, Command

from redraft.agents.base import LLM, Completion, Message, SamplingParams
from redraft.agents.prompts import (
    CritiqueNote,
    Finding,
    external_check_turns,
    fresh_revision,
    grounded_instruction,
    opening,
    reanswer_prompt,
    revise_instruction,
    scaffolding_leak,
    strip_wrappers,
)
from redraft.agents.tracing import in_round
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.evasion import EvasionCheck, shared_evasion_check
from redraft.critics.findings import all_findings, claims_of, flagged_so_far
from redraft.critics.human import VERDICT_SHAPE
from redraft.errors import InputError
from redraft.graphs.config import CorrectionConfig
from redraft.graphs.state import CorrectionInput, CorrectionState, Status
from redraft.judges.base import Judge, JudgeItem, Label
from redraft.store.base import (
    Candidate,
    ClaimCheck,
    CorrectionRecord,
    ExampleInfo,
    OutcomeInfo,
    Recorder,
    RoundRecord,
    RunInfo,
    ground_truth,
)
from redraft.store.corrections import DECLINING_FIXES, classify, is_non_answer, same_text

if TYPE_CHECKING:  # torch and transformers load only when Prov-Decode is asked for
    from redraft.provenance.decode import ProvDecode

CorrectionGraph = CompiledStateGraph[CorrectionState, None, CorrectionInput, CorrectionState]

SINGLE_TURN = ("fresh", "reanswer")
"""Strategies whose revision is a new conversation of one turn, not a continuation."""
STRIPPED = ("fresh", "reanswer", "grounded")
"""Strategies whose revise turn lays data out in tags or labels that a model copies back."""


def _round(index: int, completion: Completion, latency_s: float) -> RoundRecord:
    return {
        "index": index,
        "draft": completion.text,
        "n_tokens": completion.n_tokens,
        "finish_reason": completion.finish_reason,
        "gen_latency_s": latency_s,
        "critiques": [],
    }


def check_prompt(llm: LLM, config: CorrectionConfig, prompt: object) -> list[Message]:
    """The first conversation for ``prompt``, or an :class:`InputError` when it is empty or
    leaves no room in ``llm``'s context for a draft; needs no critic, run or store."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(
            f"the prompt is empty or not a string (got {prompt!r}); invoke the graph with {{'prompt': 'your question'}}"
        )
    conv = opening(prompt, config.system_prompt)
    n, budget = llm.count_tokens(conv), config.generation.max_new_tokens
    if n + budget > llm.context_length:
        raise InputError(
            f"the prompt takes {n} tokens, but {llm.model_id!r} has a {llm.context_length}-token "
            f"context and each draft may add {budget} tokens. Shorten the prompt, lower "
            "config.generation.max_new_tokens, or use a model with a longer context."
        )
    return conv


def new_run(llm: LLM, critics: Sequence[Critic], config: CorrectionConfig, **fields: Any) -> RunInfo:
    """What identifies a run of ``critics`` on ``llm`` with ``config`` (plus ``name``,
    ``experiment_id``, ``cell``): the record every driver starts a run with."""
    return RunInfo(
        model_id=llm.model_id,
        config=config.model_dump(mode="json"),
        critics=[c.describe() for c in critics],
        **fields,
    )


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
        evasion: EvasionCheck | None = None,
    ) -> None:
        names = [c.name for c in critics]
        if len(set(names)) != len(names):
            raise InputError(f"critic names must be unique, got {names}; pass name=... to tell them apart")
        self.llm, self.critics, self.config = llm, list(critics), config
        self._prov_decode: ProvDecode | None = None
        self.recorder, self.run_id = recorder, run_id
        self.judges = dict(judges or {})
        self.evasion = evasion if evasion is not None else shared_evasion_check()

    # -- validation at the boundary --------------------------------------------------------------

    def opening(self, prompt: object) -> list[Message]:
        """Validate a prompt and return its first conversation, before anything is generated."""
        return check_prompt(self.llm, self.config, prompt)

    # -- steps -------------------------------------------------------------------------------------

    def _generate(
        self,
        conversations: list[list[Message]],
        *,
        banned: Sequence[Sequence[str]] = (),
        params: SamplingParams | None = None,
    ) -> tuple[list[Completion], float]:
        start = time.perf_counter()
        processors: tuple[Any, ...] = self._logits_processors()
        if any(banned):
            from redraft.provenance.veto import SpanVeto

            processors = (*processors, SpanVeto(banned))
        completions = self.llm.generate(conversations, params or self.config.generation, logits_processors=processors)
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
        items = [_context(s, p["draft"], p["index"], s["messages"][:-1]) for s, p in zip(states, pendings, strict=True)]
        per_critic = [self._run_critic(c, items) for c in self.critics]
        labels = self._judge(items)
        corrections = self._corrections(states, pendings, per_critic, labels)
        updates = []
        records: list[tuple[ExampleInfo, RoundRecord, OutcomeInfo | None]] = []
        for i, s in enumerate(states):
            critiques = [results[i] for results in per_critic]
            record: RoundRecord = {**pendings[i], "critiques": [c.model_dump(mode="json") for c in critiques]}
            label = labels[i]
            if label is not None:
                record["judgements"] = [label.model_dump(mode="json")]
            correction = corrections[i]
            if correction is not None:
                record["correction"] = correction
            status = self._status(s, record, critiques)
            final = record["draft"] if status != "running" else None
            outcome = None
            if status != "running":
                outcome = OutcomeInfo(status=status, rounds_used=record["index"] + 1, final=record["draft"])
            records.append((_example(s), record, outcome))
            updates.append(
                {"rounds": [record], "pending": None, "pending_candidates": None, "status": status, "final": final}
            )
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
        if self.config.stop_on_no_change and previous is not None and same_text(previous, record["draft"]):
            return "no_change"
        if record["index"] + 1 >= self.config.max_rounds:
            return "max_rounds"
        return "running"

    # -- what a revision did ----------------------------------------------------------------------

    def _corrections(
        self,
        states: Sequence[CorrectionState],
        pendings: Sequence[RoundRecord],
        per_critic: list[list[Critique]],
        labels: list[Label | None],
    ) -> list[dict[str, Any] | None]:
        """For each pending revision, what it did to every claim flagged in any earlier round of its
        example (a claim dropped in round 2 and back in round 3 is judged there too): the claims
        checked for meaning (one batch of the evasion check), then the verdict."""
        jobs: list[tuple[int, str, list[Finding], dict[str, bool]]] = []
        for i, s in enumerate(states):
            if not s["rounds"]:
                continue
            found = flagged_so_far(s["rounds"])
            if not found:
                continue
            passes = {c.name: results[i].passed is True for c, results in zip(self.critics, per_critic, strict=True)}
            jobs.append((i, s["rounds"][-1]["draft"], found, passes))
        flagged_claims = [claims_of(found) for _, _, found, _ in jobs]
        checks = self.evasion.asserts_each(
            [[f.claim for f in group] for group in flagged_claims], [pendings[i]["draft"] for i, *_ in jobs]
        )
        out: list[dict[str, Any] | None] = [None] * len(states)
        for (i, draft, found, passes), group, assertions in zip(jobs, flagged_claims, checks, strict=True):
            claims = [
                ClaimCheck.model_validate(
                    {"critic": f.critic, "kind": f.kind, "claim": f.claim, "quote": f.quote, **a.as_json()}
                )
                for f, a in zip(group, assertions, strict=True)
            ]
            before_good = _truth(states[i]["rounds"][-1], states[i])
            # The revision's label counts only where the draft's does (a nominal judge has neither).
            label = labels[i]
            after_good = label.good if label is not None and before_good is not None else None
            same = same_text(draft, pendings[i]["draft"])
            flagged = list(dict.fromkeys(f.critic for f in found))
            non_answer = is_non_answer(pendings[i]["draft"])
            leak = scaffolding_leak(pendings[i]["draft"], [c.name for c in self.critics])
            per = {
                name: classify(
                    same=same,
                    asserted=[c.asserted for c in claims if c.critic == name],
                    passes_now=passes.get(name, False),
                    before_good=before_good,
                    after_good=after_good,
                    non_answer=non_answer,
                    declining_fixes=all(f.kind in DECLINING_FIXES for f in found if f.critic == name),
                    leaked=leak is not None,
                )
                for name in flagged
            }
            verdict = classify(
                same=same,
                asserted=[c.asserted for c in claims],
                passes_now=all(passes.get(n, False) for n in flagged),
                before_good=before_good,
                after_good=after_good,
                non_answer=non_answer,
                declining_fixes=all(f.kind in DECLINING_FIXES for f in found),
                leaked=leak is not None,
            )
            extra = states[i].get("pending_candidates") or []
            out[i] = CorrectionRecord(
                strategy=self.config_label,
                verdict=verdict,
                critics=per,
                claims=claims,
                flag_true=None if before_good is None else not before_good,
                candidates=[Candidate.model_validate(c) for c in extra],
                leak=leak,
            ).model_dump(mode="json")
        return out

    @property
    def config_label(self) -> str:
        """The revise strategy as recorded: the mode, ``+constrained``, ``+best_of_N``."""
        c = self.config
        return c.mode + ("+constrained" if c.constrain else "") + (f"+best_of_{c.best_of}" if c.best_of > 1 else "")

    # -- revision ------------------------------------------------------------------------------------

    def _findings(self, state: CorrectionState) -> list[Finding]:
        last = state["rounds"][-1]
        return all_findings([Critique.model_validate(c) for c in last["critiques"]], last["draft"])

    def revision_turns(self, state: CorrectionState, found: list[Finding] | None = None) -> list[Message]:
        """The turns added to the conversation before a revision.

        ``feedback`` and ``grounded`` add a revise instruction, ``cac`` the checks as (question,
        answer) turns and the prompt again; ``fresh`` and ``reanswer`` add the new single turn
        their conversation consists of (:meth:`revision_conversation`). ``found``: the last
        draft's findings, when the caller has them already.
        """
        mode = self.config.mode
        if mode in ("grounded", "fresh", "reanswer"):
            found = found if found is not None else self._findings(state)
            if mode == "grounded":
                text = grounded_instruction(found)
            elif mode == "fresh":
                text = fresh_revision(state["prompt"], state["rounds"][-1]["draft"], found)
            else:
                text = reanswer_prompt(state["prompt"], found)
            return [{"role": "user", "content": text}]
        critiques = [Critique.model_validate(c) for c in state["rounds"][-1]["critiques"]]
        if mode == "feedback":
            notes = [CritiqueNote(critic=c.critic, passed=c.passed, feedback=c.feedback) for c in critiques]
            return [{"role": "user", "content": revise_instruction(notes)}]
        turns: list[Message] = []
        for c in critiques:
            if c.question is not None and c.raw is not None:
                turns += [{"role": "user", "content": c.question}, {"role": "assistant", "content": c.raw}]
            else:
                turns += external_check_turns(c.critic, c.passed, c.feedback)
        return [*turns, {"role": "user", "content": state["prompt"]}]

    def revision_conversation(self, state: CorrectionState, turns: list[Message]) -> list[Message]:
        """What the model sees for a revision: the conversation so far plus ``turns``, or for the
        single-turn strategies (``fresh``, ``reanswer``) only the system turn and ``turns``."""
        if self.config.mode in SINGLE_TURN:
            head: list[Message] = []
            if self.config.system_prompt:
                head.append({"role": "system", "content": self.config.system_prompt})
            return [*head, *turns]
        return [*state["messages"], *turns]

    def _banned(self, found: list[Finding]) -> list[str]:
        """The spans a constrained revision may not write: those the BCI critic flagged."""
        if not self.config.constrain:
            return []
        # Without its closing punctuation: a flagged "X is Y.." must not come back as "X is Y, ...".
        return [q for f in found if f.quote and (q := f.quote.strip().rstrip(".,;:!?").strip())]

    def _revisions(
        self, conversations: list[list[Message]], banned: list[list[str]], params: SamplingParams | None = None
    ) -> tuple[list[Completion], float]:
        """Generate revisions, without the wrapper tags the strategies that lay out data invite."""
        completions, latency = self._generate(conversations, banned=banned, params=params)
        if self.config.mode in STRIPPED:
            completions = [c.model_copy(update={"text": strip_wrappers(c.text)}) for c in completions]
        return completions, latency

    def revise(self, states: Sequence[CorrectionState]) -> list[dict[str, Any]]:
        """Round r+1: a new draft for each state, by the configured strategy."""
        found = [self._findings(s) for s in states]  # read once: the turns, the veto and best_of use them
        turns = [self.revision_turns(s, f) for s, f in zip(states, found, strict=True)]
        convs = [self.revision_conversation(s, t) for s, t in zip(states, turns, strict=True)]
        banned = [self._banned(f) for f in found]
        if self.config.best_of > 1:
            completions, candidates, latency = self._best_of(states, convs, banned, found)
        else:
            completions, latency = self._revisions(convs, banned)
            candidates = [[] for _ in states]
        out = []
        for s, t, c, extra in zip(states, turns, completions, candidates, strict=True):
            update: dict[str, Any] = {
                "messages": [*t, {"role": "assistant", "content": c.text}],
                "pending": _round(s["rounds"][-1]["index"] + 1, c, latency),
                "pending_candidates": extra,
            }
            out.append(update)
        return out

    def _best_of(
        self,
        states: Sequence[CorrectionState],
        convs: list[list[Message]],
        banned: list[list[str]],
        found: list[list[Finding]],
    ) -> tuple[list[Completion], list[list[dict[str, Any]]], float]:
        """``best_of`` sampled revisions per state, each scored by every critic and by the
        evasion check; the best is kept (first: asserts no flagged claim; then: answers, and
        without the loop's scaffolding; then: most critics passed; then: the earliest sample), the
        others returned as candidates."""
        n = self.config.best_of
        params = self.config.generation.model_copy(update={"temperature": self.config.best_of_temperature})
        flat_convs = [c for c in convs for _ in range(n)]
        flat_banned = [b for b in banned for _ in range(n)]
        samples, latency = self._revisions(flat_convs, flat_banned, params)
        texts = [c.text for c in samples]
        items = [_context(states[k // n], t, len(states[k // n]["rounds"]), flat_convs[k]) for k, t in enumerate(texts)]
        verdicts = [self._run_critic(c, items) for c in self.critics]
        claims = [[c.claim for c in claims_of(draft_findings)] for draft_findings in found]
        checks = self.evasion.asserts_each([claims[k // n] for k in range(len(texts))], texts)
        asserted = [any(a.asserted for a in row) for row in checks]
        # A non-answer or a revision that repeats the revise turn's wording loses to a clean answer
        # (the ranking once favoured texts that shouted "FALSE claim", which the turn had said).
        names = [c.name for c in self.critics]
        unusable = [is_non_answer(t) or scaffolding_leak(t, names) is not None for t in texts]
        chosen: list[Completion] = []
        others: list[list[dict[str, Any]]] = []
        for b in range(len(states)):
            ks = list(range(b * n, (b + 1) * n))
            passed = {k: sum(v[k].passed is True for v in verdicts) for k in ks}
            best = min(ks, key=lambda k: (asserted[k], unusable[k], -passed[k], k))
            chosen.append(samples[best])
            others.append(
                [
                    Candidate(
                        text=texts[k], critics_passed=passed[k], asserts_flagged=asserted[k], unusable=unusable[k]
                    ).model_dump()  # the state is plain JSON
                    for k in ks
                    if k != best
                ]
            )
        return chosen, others, latency * n


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


def _context(state: CorrectionState, draft: str, round_index: int, history: Sequence[Message]) -> DraftContext:
    """What a critic sees of a draft: a pending draft and a ``best_of`` candidate alike, so a
    candidate is scored with the example's labels (the oracle's ground truth) like any draft."""
    return DraftContext(
        prompt=state["prompt"],
        draft=draft,
        round_index=round_index,
        history=tuple(history),
        labels=state.get("labels") or {},
    )


def _truth(record: RoundRecord, state: CorrectionState) -> bool | None:
    """The judge's label of a recorded draft (the first judgement is the truth), unless the
    example's judge is nominal (the drift datasets: compliance is not the measure there)."""
    if (state.get("labels") or {}).get("judge_nominal") is True:
        return None
    truth = ground_truth(record.get("judgements") or [])
    good = None if truth is None else truth.get("good")
    return good if isinstance(good, bool) else None


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
        run_id = recorder.start_run(new_run(llm, critics, config, name=run_name))
    steps = Corrector(llm, critics, config, recorder, run_id, judges)

    def generate(state: CorrectionState) -> dict[str, Any]:
        if state.get("rounds"):
            raise ThreadReusedError(_reuse_message(state))
        with in_round(0):
            return _streamed_draft(steps.draft([state])[0])

    def critique(state: CorrectionState) -> dict[str, Any]:
        with in_round(_pending(state)["index"]):
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
    graph.__class__ = _ResumeChecked  # adds only an input check: no state, same behaviour otherwise
    return graph.with_config(metadata={"redraft_run_id": run_id}) if run_id else graph
