"""The critic contract: a batch of drafts in, one frozen :class:`Critique` per draft out."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from redraft.agents.base import Message


class DraftContext(BaseModel):
    """What a critic may look at: the prompt, the draft, and the earlier rounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    draft: str
    round_index: int = Field(default=0, ge=0)
    """0 for the first draft, 1 for the first revision, ..."""
    history: tuple[Message, ...] = ()
    """The conversation that produced the draft (ending with the user turn it answers)."""
    labels: dict[str, JsonValue] = Field(default_factory=dict)
    """The example's ground truth, when it has one. Only the ``oracle`` critic may read it: a
    critic that peeks at labels is an oracle by definition."""


class Critique(BaseModel):
    """One critic's verdict on one draft."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    critic: str
    """Name of the critic that produced this verdict."""
    passed: bool | None
    """True: acceptable. False: must be revised. None: the critic could not judge (not applicable,
    unparseable answer). None never counts as a pass."""
    score: float | None = None
    """Critic-specific score (share of supported claims, max span BCI, 1/0 for a self-check)."""
    feedback: str = ""
    """Text the reviser sees."""
    evidence: tuple[dict[str, JsonValue], ...] = ()
    """Structured evidence (spans, passages, raw model output), stored as JSON."""
    question: str | None = None
    """For critics that ask the model: the check question, used as context in ``cac`` mode."""
    raw: str | None = None
    """For critics that ask the model: its unparsed answer."""
    latency_s: float = Field(default=0.0, ge=0.0)
    """Wall time this critique took; for batched critics, the batch time divided evenly."""


class Critic(abc.ABC):
    """Judges drafts. Implementations must return exactly one critique per input, in order.

    Every critic declares which way its score points (``higher_is_better``), because scores are
    read back as rewards: BCI is higher-is-worse, the share of supported claims higher-is-better,
    and a recipe that takes the maximum of the wrong one builds inverted preference pairs. The
    direction is recorded with each run (:meth:`describe`), so exports read it from the log.
    """

    name: str
    higher_is_better: ClassVar[bool]
    """True when a larger ``Critique.score`` means a better draft."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and not isinstance(
            getattr(cls, "higher_is_better", None), bool
        ):
            raise TypeError(
                f"critic class {cls.__name__} must declare `higher_is_better: ClassVar[bool]` (which way its "
                "score points), so exports never rank drafts upside down"
            )

    @abc.abstractmethod
    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        """Critique a batch of drafts."""

    def describe(self) -> dict[str, Any]:
        """Configuration recorded with a run (override to add thresholds, prompts...)."""
        return {"name": self.name, "class": type(self).__name__, "higher_is_better": self.higher_is_better}


class EvidencePassage(BaseModel):
    """A retrieved passage a claim was judged against."""

    model_config = ConfigDict(frozen=True)

    title: str = ""
    text: str


class Finding(BaseModel):
    """One problem a critic found, as a reviser is shown it (read from critiques by :mod:`redraft.critics.findings`).

    ``claim`` is the draft's sentence at issue (empty for a critic that names none, such as a
    self-check); ``quote`` the verbatim corpus text it repeats (BCI); ``passages`` the evidence it
    was judged against (factuality); ``advice`` what fixes it.
    """

    model_config = ConfigDict(frozen=True)

    critic: str
    kind: str
    """The corpus kind for BCI findings (``false-claims``, ``unsafe``, ...); ``unsupported`` for
    factuality; ``check`` for critics that give only feedback."""
    claim: str = ""
    quote: str | None = None
    passages: tuple[EvidencePassage, ...] = ()
    advice: str = ""
    feedback: str = ""
