"""``CorrectionConfig``: every knob of the correction loop, documented once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from redraft.agents.base import SamplingParams

ReviseMode = Literal["cac", "feedback"]
MODES: tuple[ReviseMode, ...] = ("cac", "feedback")


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

    mode: ReviseMode = "feedback"
    """``feedback``: an explicit revise instruction carrying every critic's feedback.
    ``cac`` (Checking-as-Context, Wang et al. 2024): the checks join the conversation as
    (question, answer) turns and the original prompt is asked again, with no revise instruction."""

    generation: SamplingParams = SamplingParams(max_new_tokens=256)
    """Decoding for drafts and revisions (greedy by default, for reproducible experiments)."""

    system_prompt: str | None = None
    """Optional system turn prepended to every conversation; ``None`` keeps the model's default."""

    stop_on_no_change: bool = True
    """Stop with status ``no_change`` when a revision repeats the previous draft verbatim
    (after whitespace normalization): another round would see the same draft."""

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value: object) -> object:
        if isinstance(value, str) and value not in MODES:
            raise ValueError(f"unknown mode {value!r}; known modes: {', '.join(MODES)}")
        return value
