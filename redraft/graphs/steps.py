"""The loop's steps, batch-first: :class:`Corrector` takes and returns *lists* of states, so the
graph (a batch of one per ``invoke``) and the experiment runner (round r of many examples in one
``generate`` call) share one implementation. What a revision is asked with is the strategy's
(:mod:`redraft.corrections.strategies`), what it did is the verdicts' (:mod:`redraft.corrections.verdicts`);
this module generates, critiques, records and hands states on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redraft._text import same_text
from redraft.agents.base import LLM, Completion, Message, SamplingParams
from redraft.agents.prompts import opening
from redraft.corrections import best_of
from redraft.corrections.config import CorrectionConfig
from redraft.corrections.strategies import RevisionAsk, strategy, strip_wrappers
from redraft.corrections.verdicts import RevisionJob, judge_revisions
from redraft.critics.base import Critic, Critique, DraftContext, Finding
from redraft.critics.evasion import EvasionCheck, shared_evasion_check
from redraft.critics.findings import all_findings, claims_of, flagged_so_far
from redraft.errors import InputError
from redraft.graphs.state import CorrectionState, Status
from redraft.judges.base import Judge, JudgeItem, Label
from redraft.store.base import (
    Candidate,
    ExampleInfo,
    OutcomeInfo,
    Recorder,
    RoundRecord,
    RunInfo,
    truth_of,
)

if TYPE_CHECKING:  # torch and transformers load only when Prov-Decode is asked for
    from redraft.provenance.decode import ProvDecode


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
        self.strategy = strategy(config.mode)
        """How revisions are asked for (the config's mode, looked up once)."""

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
        pendings = [pending(s) for s in states]
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
        example (a claim dropped in round 2 and back in round 3 is judged there too)."""
        index: list[int] = []
        jobs: list[RevisionJob] = []
        for i, s in enumerate(states):
            found = flagged_so_far(s["rounds"])
            if not found:
                continue
            before_good = _truth(s["rounds"][-1], s)
            # The revision's label counts only where the draft's does (a nominal judge has neither).
            label = labels[i]
            index.append(i)
            jobs.append(
                RevisionJob(
                    previous=s["rounds"][-1]["draft"],
                    revision=pendings[i]["draft"],
                    found=found,
                    passes={
                        c.name: results[i].passed is True for c, results in zip(self.critics, per_critic, strict=True)
                    },
                    before_good=before_good,
                    after_good=label.good if label is not None and before_good is not None else None,
                    candidates=[Candidate.model_validate(c) for c in s.get("pending_candidates") or []],
                )
            )
        records = judge_revisions(
            jobs, evasion=self.evasion, critics=[c.name for c in self.critics], strategy=self.config.strategy_label
        )
        out: list[dict[str, Any] | None] = [None] * len(states)
        for i, record in zip(index, records, strict=True):
            out[i] = record.model_dump(mode="json")
        return out

    # -- revision ------------------------------------------------------------------------------------

    def _ask(self, state: CorrectionState) -> RevisionAsk:
        """What the strategy is shown: the last draft's critiques, read back once, and their findings."""
        last = state["rounds"][-1]
        critiques = [Critique.model_validate(c) for c in last["critiques"]]
        return RevisionAsk(state["prompt"], last["draft"], critiques, all_findings(critiques, last["draft"]))

    def revision_turns(self, state: CorrectionState, ask: RevisionAsk | None = None) -> list[Message]:
        """The turns the configured strategy adds before a revision."""
        return self.strategy.turns(ask if ask is not None else self._ask(state))

    def revision_conversation(self, state: CorrectionState, turns: list[Message]) -> list[Message]:
        """What the model sees for a revision: the conversation so far plus ``turns``, or for a
        single-turn strategy only the system turn and ``turns``."""
        if self.strategy.single_turn:
            head: list[Message] = []
            if self.config.system_prompt:
                head.append({"role": "system", "content": self.config.system_prompt})
            return [*head, *turns]
        return [*state["messages"], *turns]

    def _banned(self, found: Sequence[Finding]) -> list[str]:
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
        if self.strategy.strips_wrappers:
            completions = [c.model_copy(update={"text": strip_wrappers(c.text)}) for c in completions]
        return completions, latency

    def revise(self, states: Sequence[CorrectionState]) -> list[dict[str, Any]]:
        """Round r+1: a new draft for each state, by the configured strategy."""
        asks = [self._ask(s) for s in states]  # read once: the turns, the veto and best_of use them
        turns = [self.revision_turns(s, a) for s, a in zip(states, asks, strict=True)]
        convs = [self.revision_conversation(s, t) for s, t in zip(states, turns, strict=True)]
        banned = [self._banned(a.findings) for a in asks]
        if self.config.best_of > 1:
            completions, candidates, latency = self._best_of(states, convs, banned, asks)
        else:
            completions, latency = self._revisions(convs, banned)
            candidates = [[] for _ in states]
        return [
            {
                "messages": [*t, {"role": "assistant", "content": c.text}],
                "pending": _round(s["rounds"][-1]["index"] + 1, c, latency),
                "pending_candidates": extra,
            }
            for s, t, c, extra in zip(states, turns, completions, candidates, strict=True)
        ]

    def _best_of(
        self,
        states: Sequence[CorrectionState],
        convs: list[list[Message]],
        banned: list[list[str]],
        asks: list[RevisionAsk],
    ) -> tuple[list[Completion], list[list[dict[str, Any]]], float]:
        """``best_of`` sampled revisions per state, each scored by every critic and by the
        evasion check; :func:`redraft.corrections.best_of.pick` keeps one, the others are
        returned as candidates."""
        n = self.config.best_of
        params = self.config.generation.model_copy(update={"temperature": self.config.best_of_temperature})
        flat_convs = [c for c in convs for _ in range(n)]
        flat_banned = [b for b in banned for _ in range(n)]
        samples, latency = self._revisions(flat_convs, flat_banned, params)
        texts = [c.text for c in samples]
        items = [_context(states[k // n], t, len(states[k // n]["rounds"]), flat_convs[k]) for k, t in enumerate(texts)]
        verdicts = [self._run_critic(c, items) for c in self.critics]
        claims = [[f.claim for f in claims_of(a.findings)] for a in asks]
        checks = self.evasion.asserts_each([claims[k // n] for k in range(len(texts))], texts)
        asserted = [any(a.asserted for a in row) for row in checks]
        passed = [sum(v[k].passed is True for v in verdicts) for k in range(len(texts))]
        names = [c.name for c in self.critics]
        chosen: list[Completion] = []
        others: list[list[dict[str, Any]]] = []
        for b in range(len(states)):
            group = slice(b * n, (b + 1) * n)
            best, rest = best_of.pick(texts[group], passed[group], asserted[group], names)
            chosen.append(samples[b * n + best])
            others.append([c.model_dump() for c in rest])  # the state is plain JSON
        return chosen, others, latency * n


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
    """The judge's label of a recorded draft, unless the example's judge is nominal."""
    truth = truth_of(record.get("judgements") or [], state.get("labels"))
    good = None if truth is None else truth.get("good")
    return good if isinstance(good, bool) else None


def pending(state: CorrectionState) -> RoundRecord:
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
