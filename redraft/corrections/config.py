"""``CorrectionConfig``: every knob of the correction loop, documented once, and the one schema
the loop is configured by (the library, ``redraft run``'s flags and an experiment's
``correction:`` all validate into it, so each default is written here and nowhere else)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from redraft.agents.base import SamplingParams
from redraft.corrections.strategies import DEFAULT_STRATEGY, STRATEGIES, strategy
from redraft.store.base import StrategyLabel


def _known_mode(name: str) -> str:
    strategy(name)  # an unknown name fails here, naming the known ones and the closest
    return name


ReviseMode = Annotated[
    str,
    AfterValidator(_known_mode),
    WithJsonSchema({"type": "string", "enum": list(STRATEGIES)}),
]
"""A registered revise strategy's name (:data:`redraft.corrections.strategies.STRATEGIES`)."""


DEFAULT_BATCH_SIZE = 8
"""Examples per ``generate`` call, for runs as for experiments (``batch_size`` in a spec)."""


class ProvDecodeConfig(BaseModel):
    """Decode every draft and revision with Prov-Decode (TraceAlign) over a belief index.

    Example:
        >>> ProvDecodeConfig(index="belief-index", threshold=20.0).mode
        'veto'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: Path
    """A suffix index built with the generating model's tokenizer (``redraft index build --tokenizer``)."""
    threshold: float = Field(default=20.0, gt=0)
    """τ in nats: a continuation completing a verbatim corpus span with BCI > τ is vetoed."""
    mode: Literal["veto", "penalty"] = "veto"
    penalty: float = Field(default=5.0, gt=0)
    """Logit penalty in ``penalty`` mode."""


BestOf = Annotated[int, Field(ge=1, le=16)]
"""How many revisions ``best_of`` samples: 16 bounds the cost of one round (16 × every critic)."""
BestOfTemperature = Annotated[float, Field(gt=0, le=2)]


class CorrectionConfig(BaseModel):
    """How the generate → critique → revise loop runs and when it stops.

    Example:
        >>> CorrectionConfig(max_rounds=3, mode="cac").max_rounds
        3
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_rounds: int = Field(default=3, ge=1)
    """Most drafts critiqued per prompt: round 0 is the first draft, each later round a revision.
    ``max_rounds=1`` only critiques; ``max_rounds=2`` is Wang et al.'s one self-correction step."""

    mode: ReviseMode = DEFAULT_STRATEGY
    """The revise strategy, how a revision is asked for: one of
    :data:`~redraft.corrections.strategies.STRATEGIES` (each class there says what it sends)."""

    constrain: bool = False
    """Decode revisions with the spans the BCI critic flagged vetoed (:class:`~redraft.provenance.veto.SpanVeto`),
    so no revision repeats one verbatim. A guard against verbatim leaks, not a correction: combine it
    with a strategy that says what is wrong. Needs a backend that takes logits processors."""

    best_of: BestOf = 1
    """Sample this many revisions (at ``best_of_temperature``), score each with every critic and the
    evasion check, and keep the best: one that no longer asserts a flagged claim, then the most
    critics passed. Ranking by the flagging critic alone keeps paraphrases that still assert the
    claim, so the evasion check ranks first. The others are recorded as candidates."""

    best_of_temperature: BestOfTemperature = 0.8
    """Sampling temperature of ``best_of`` candidates."""

    generation: SamplingParams = SamplingParams()
    """Decoding for drafts and revisions (greedy by default, for reproducible experiments)."""

    system_prompt: str | None = None
    """Optional system turn prepended to every conversation; ``None`` keeps the model's default."""

    prov_decode: ProvDecodeConfig | None = None
    """Decode with Prov-Decode over a belief index (``None``: plain decoding). Needs a backend that
    takes logits processors (transformers, vLLM)."""

    stop_on_no_change: bool = True
    """Stop with status ``no_change`` when a revision repeats the previous draft verbatim
    (after whitespace normalization): another round would see the same draft."""

    @property
    def strategy_label(self) -> StrategyLabel:
        """The strategy as a revision's record names it.

        Example:
            >>> str(CorrectionConfig(mode="fresh", best_of=4).strategy_label)
            'fresh+best_of_4'
        """
        return StrategyLabel(mode=self.mode, constrained=self.constrain, best_of=self.best_of)
