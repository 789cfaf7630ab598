"""The dataset contract: rows with a prompt and the ground truth its judge needs."""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator


class Row(BaseModel):
    """One example: a prompt, a stable key, and its ground-truth labels.

    ``labels["judge"]`` names the judge that labels responses to it (``refusal``, ``answer``,
    ``bbq``); the other labels are that judge's ground truth.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    source: str
    labels: dict[str, JsonValue]

    @model_validator(mode="after")
    def _has_judge(self) -> Row:
        if not isinstance(self.labels.get("judge"), str):
            raise ValueError(
                f"row {self.key!r} has no labels['judge']; name the judge that labels it (refusal, answer or bbq)"
            )
        return self


def sample(rows: Sequence[Row], limit: int | None, seed: int) -> list[Row]:
    """A reproducible sample of ``limit`` rows (all of them when ``limit`` is None), in the
    dataset's own order so that runs over growing limits share their first examples."""
    if limit is None or limit >= len(rows):
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]
