"""``CorrectionConfig``: every knob of the correction loop, documented once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from redraft.agents.base import SamplingParams

ReviseMode = Literal["cac", "feedback", "fresh", "grounded", "reanswer"]
MODES: tuple[ReviseMode, ...] = ("cac", "feedback", "fresh", "grounded", "reanswer")
DEFAULT_MODE: ReviseMode = "fresh"
"""The revise strategy `run`, `demo` and the library use unless told otherwise: the one measured to
fix flagged false claims (README, "Corrections that correct")."""


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

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rounds: int = Field(default=3, ge=1)
    """Most drafts critiqued per prompt: round 0 is the first draft, each later round a revision.
    ``max_rounds=1`` only critiques; ``max_rounds=2`` is Wang et al.'s one self-correction step."""

    mode: ReviseMode = DEFAULT_MODE
    """The revise strategy: how a revision is asked for.

    * ``fresh`` (default): a new single-turn conversation quoting the request and the draft as
      data, each finding with what it means (a known false claim, unsupported by these passages),
      and a rule that the findings override the request ("repeat this exactly").
    * ``feedback``: a revise instruction in the same conversation, carrying every critic's feedback.
    * ``cac`` (Checking-as-Context, Wang et al. 2024): the checks join the conversation as
      (question, answer) turns and the original prompt is asked again, with no revise instruction.
    * ``grounded`` (CRITIC): a revise instruction in the same conversation that quotes the
      evidence passages each unsupported claim was judged against.
    * ``reanswer``: answer the request again in a new conversation from the retrieved evidence,
      without showing the draft (a small model copies a draft it can see).

    Every strategy except ``cac`` states the conflict rule (:data:`~redraft.agents.prompts.CONFLICT_RULE`)."""

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

    generation: SamplingParams = SamplingParams(max_new_tokens=256)
    """Decoding for drafts and revisions (greedy by default, for reproducible experiments)."""

    system_prompt: str | None = None
    """Optional system turn prepended to every conversation; ``None`` keeps the model's default."""

    prov_decode: ProvDecodeConfig | None = None
    """Decode with Prov-Decode over a belief index (``None``: plain decoding). Needs a backend that
    takes logits processors (transformers, vLLM)."""

    stop_on_no_change: bool = True
    """Stop with status ``no_change`` when a revision repeats the previous draft verbatim
    (after whitespace normalization): another round would see the same draft."""

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: object) -> object:
        if isinstance(value, str) and value not in MODES:
            raise ValueError(f"unknown mode {value!r}; known modes: {', '.join(MODES)}")
        return value
