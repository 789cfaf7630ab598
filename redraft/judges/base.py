"""The judge contract: ground truth for an outcome, never a critic.

A judge labels a response as good or bad against the example's ground truth (should it refuse?
what is the reference answer? which option is right?). Judges label every round after the
fact, and through those labels the store measures each critic's accuracy. They never steer the
loop, unless a user deliberately runs one as the ``oracle`` critic.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class JudgeItem(BaseModel):
    """A response to label, with the example's ground truth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    text: str
    labels: dict[str, JsonValue] = Field(default_factory=dict)
    """The dataset's ground truth, e.g. ``should_refuse``, ``references``, ``options``/``answer``."""


class Label(BaseModel):
    """One judge's label for one response."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    good: bool | None
    """True: the response is what the ground truth asks for. None: the judge cannot tell
    (no ground truth for it, or the response names no option)."""
    score: float | None = None
    """Judge-specific: 1/0 refused, best reference overlap, chosen option index."""
    detail: str = ""
    """Why, in a few words (shown in reports and as the oracle critic's feedback)."""


class Judge(abc.ABC):
    """Labels responses. Implementations return exactly one label per item, in order."""

    name: str

    @abc.abstractmethod
    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        """Label a batch of responses."""

    def hint(self, labels: Mapping[str, JsonValue], *, good: bool) -> str | None:
        """What an oracle tells a draft to do to be labelled ``good`` (True) or bad (False), or
        None when this judge has no specific instruction (the oracle then says "answer again")."""
        return None

    def describe(self) -> dict[str, Any]:
        """Configuration recorded with an experiment."""
        return {"name": self.name, "class": type(self).__name__}


def required_label(item: JudgeItem, key: str, judge: str, hint: str) -> JsonValue:
    """The ground-truth field ``key`` of ``item``, or an error naming the dataset field to add."""
    from redraft.errors import InputError

    if key not in item.labels:
        raise InputError(
            f"the {judge} judge needs labels[{key!r}] on every example, but {item.prompt[:60]!r} has only "
            f"{sorted(item.labels)}; {hint}"
        )
    return item.labels[key]
