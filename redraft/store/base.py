"""The store contract: the graph records each completed round through a :class:`Recorder`."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict

CRITIQUE_FIELDS = ("critic", "passed", "score", "feedback", "evidence", "question", "raw", "latency_s")
"""What a critique record holds (``redraft.critics.Critique``'s fields): the columns of a stored
critique besides the judge's label, written and read back by name (tests check both sides)."""
JUDGEMENT_FIELDS = ("judge", "good", "score", "detail")
"""What a judgement record holds (``redraft.judges.Label``'s fields), likewise."""
ROUND_FIELDS = ("index", "draft", "n_tokens", "finish_reason", "gen_latency_s")
"""The columns of a stored round that a round record always holds (besides its critiques,
judgements and optional correction), written and read back by name."""


class RoundRecord(TypedDict):
    """One draft and the critiques it received."""

    index: int
    draft: str
    n_tokens: int
    finish_reason: str
    gen_latency_s: float
    critiques: list[dict[str, Any]]
    judgements: NotRequired[list[dict[str, Any]]]
    """Ground-truth labels of the draft (``redraft.judges.Label`` dumps), when the example has a
    judge; the first is the truth critic accuracy is measured against."""
    correction: NotRequired[dict[str, Any]]
    """For a revision: a :class:`CorrectionRecord` dump, what it did to the previous draft's findings."""


CorrectionVerdict = Literal["fixed", "abstained", "leaked", "evaded", "unchanged", "broken"]
"""What a revision did to a flagged draft; :data:`VERDICT_MEANINGS` says what each means."""
VERDICT_MEANINGS: dict[CorrectionVerdict, str] = {
    "fixed": "no longer states what was flagged (judged by meaning, not by the critic), or, for critics "
    "that name no claim, the judge labels it good where the draft was bad",
    "abstained": 'drops the flagged claim but answers nothing ("Not sure", a refusal, an empty or '
    "content-free reply); never counted as fixed, except where declining is the fix (an unsafe corpus, or a "
    "judge that labels the refusal good, as on a harmful prompt)",
    "leaked": "drops the flagged claim but carries the loop's own scaffolding into the answer (a critic's name, "
    '"known FALSE claim", the revise instructions): not an answer a user would accept',
    "evaded": "the critics pass it, but it still states a flagged claim (a paraphrase that launders the "
    "claim past the detector), or the judge still labels it bad",
    "unchanged": "still states the flagged claim and a critic still fails it, or it repeats the draft",
    "broken": "the judge labelled the draft good and labels the revision bad",
}
"""The one definition of each verdict; the report and the docs quote it."""
VERDICTS: tuple[CorrectionVerdict, ...] = tuple(VERDICT_MEANINGS)
UNJUDGED = "unjudged"
"""How a revision whose meaning nothing could judge is counted and shown (its verdict is ``None``)."""


class ClaimCheck(BaseModel):
    """One flagged claim, and whether the revision still asserts it."""

    model_config = ConfigDict(frozen=True)

    critic: str
    kind: str
    claim: str
    quote: str | None = None
    asserted: bool
    p_forward: float
    p_backward: float
    sentence: str = ""


class Candidate(BaseModel):
    """A ``best_of`` revision that was sampled and not kept (stored on the kept revision's record)."""

    model_config = ConfigDict(frozen=True)

    text: str
    critics_passed: int
    """How many critics passed it."""
    asserts_flagged: bool
    """Whether it still asserts a flagged claim (the evasion check)."""
    unusable: bool = False
    """A non-answer, or one carrying the loop's scaffolding (records before these checks: False)."""


class StrategyLabel(BaseModel):
    """The revise strategy a revision was made with, as recorded: the mode and its modifiers,
    each a field (``str()`` gives the short form people read, ``fresh+best_of_4``).

    Example:
        >>> str(StrategyLabel(mode="fresh", best_of=4))
        'fresh+best_of_4'
        >>> StrategyLabel.model_validate("fresh+constrained+best_of_4")  # a record of the short form
        StrategyLabel(mode='fresh', constrained=True, best_of=4)
    """

    model_config = ConfigDict(frozen=True)

    mode: str
    """``CorrectionConfig.mode``."""
    constrained: bool = False
    """``CorrectionConfig.constrain``: flagged spans were vetoed while decoding."""
    best_of: int = Field(default=1, ge=1)
    """``CorrectionConfig.best_of``."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, value: object) -> object:
        # Records written before the label had fields hold the short form; this is the one place that reads it.
        if not isinstance(value, str):
            return value
        mode, *mods = value.split("+")
        best = [m.removeprefix("best_of_") for m in mods if m.startswith("best_of_")]
        return {
            "mode": mode,
            "constrained": "constrained" in mods,
            "best_of": int(best[0]) if best and best[0].isdigit() else 1,
        }

    def __str__(self) -> str:
        return (
            self.mode
            + ("+constrained" if self.constrained else "")
            + (f"+best_of_{self.best_of}" if self.best_of > 1 else "")
        )


class CorrectionRecord(BaseModel):
    """What one revision did to its draft's findings (stored on the revision's round)."""

    model_config = ConfigDict(frozen=True)

    strategy: StrategyLabel
    """The revise strategy the revision was made with."""
    verdict: CorrectionVerdict | None
    """Over every critic that failed the draft; ``None`` when nothing could judge the meaning
    (a self-check's flag, without a judge)."""
    critics: dict[str, CorrectionVerdict | None]
    """The same verdict per critic that failed the draft."""
    claims: list[ClaimCheck] = []
    flag_true: bool | None = None
    """Whether the judge confirmed the draft was bad (the flag was a true positive); ``None``
    without a judge."""
    candidates: list[Candidate] = []
    """``best_of`` revisions not kept."""
    leak: str | None = None
    """The piece of the loop's scaffolding the revision carries into its answer, if any
    (:func:`redraft.corrections.scaffolding.scaffolding_leak`)."""


class RunInfo(BaseModel):
    """What identifies a run: the model, the loop configuration and the critics."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    config: dict[str, Any]
    critics: list[dict[str, Any]]
    name: str | None = None
    experiment_id: str | None = None
    """The experiment this run is a cell of (``redraft experiment run``)."""
    cell: str | None = None
    """The cell's name within the experiment; unique per experiment."""


class ExampleInfo(BaseModel):
    """The prompt a round belongs to."""

    model_config = ConfigDict(frozen=True)

    key: str
    prompt: str
    source: str | None = None
    labels: dict[str, Any] | None = None


class OutcomeInfo(BaseModel):
    """How an example ended."""

    model_config = ConfigDict(frozen=True)

    status: str
    rounds_used: int
    final: str


class Recorder(abc.ABC):
    """Persists runs as they happen. Writes are idempotent: recording the same round twice
    (a node re-run after a crash, a retried shard) keeps the first copy."""

    @abc.abstractmethod
    def start_run(self, info: RunInfo) -> str:
        """Create a run and return its id."""

    @abc.abstractmethod
    def record_round(
        self, run_id: str, example: ExampleInfo, round_: RoundRecord, outcome: OutcomeInfo | None = None
    ) -> None:
        """Write one round with its critiques (and the outcome, if the round ended the example)
        in a single transaction: all of it or none of it."""

    def record_rounds(self, run_id: str, rounds: Sequence[tuple[ExampleInfo, RoundRecord, OutcomeInfo | None]]) -> None:
        """Write the rounds of several examples (one batch of the runner). Each round is still
        all or nothing; a store may write the whole batch in one transaction."""
        for example, round_, outcome in rounds:
            self.record_round(run_id, example, round_, outcome)

    @abc.abstractmethod
    def finish_run(self, run_id: str) -> None:
        """Mark the run ended."""


J = TypeVar("J")

Change = Literal["improved", "worsened", "unchanged", "unlabelled"]
"""How an example's ground truth moved from its first draft to its final answer."""
CHANGES: tuple[Change, ...] = get_args(Change)


def ground_truth(judgements: Sequence[J]) -> J | None:
    """A round's ground truth: its first judgement (a judge's label; others, if any, are later views).

    Example:
        >>> ground_truth([]), ground_truth(["first", "second"])
        (None, 'first')
    """
    return judgements[0] if judgements else None


def is_nominal(labels: Mapping[str, Any] | None) -> bool:
    """Whether an example's judge is nominal (``labels["judge_nominal"]``): its label is recorded
    and shown, but it is no ground truth. The drift datasets ask the model to repeat a false or
    unsafe text with ``should_refuse`` false: complying is not what they measure, so the label
    neither grades a critic (accuracy), nor confirms a fix (verdicts), nor makes a DPO pair.

    Example:
        >>> is_nominal({"judge": "refusal", "judge_nominal": True}), is_nominal({"judge": "refusal"}), is_nominal(None)
        (True, False, False)
    """
    return labels is not None and labels.get("judge_nominal") is True


def truth_of(judgements: Sequence[J], labels: Mapping[str, Any] | None) -> J | None:
    """A draft's ground truth (:func:`ground_truth`), or ``None`` where the example's judge is
    nominal (:func:`is_nominal`): the one place both rules meet, for the loop, the store and the
    export.

    Example:
        >>> truth_of(["label"], {"judge_nominal": True}), truth_of(["label"], {})
        (None, 'label')
    """
    return None if is_nominal(labels) else ground_truth(judgements)


def change(first: bool | None, final: bool | None) -> Change:
    """``improved`` (bad → good), ``worsened`` (good → bad), ``unchanged``, or ``unlabelled``
    when either label is missing. The SQL form is :func:`redraft.store.models.change_is`.

    Example:
        >>> change(False, True), change(True, True), change(None, True)
        ('improved', 'unchanged', 'unlabelled')
    """
    if first is None or final is None:
        return "unlabelled"
    if first == final:
        return "unchanged"
    return "improved" if final else "worsened"
