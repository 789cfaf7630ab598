"""The correction graph's state.

Everything in the state is plain JSON (strings, numbers, lists, dicts), so every LangGraph
checkpointer (memory, SQLite, Postgres, strict msgpack) round-trips it without custom types.
Critiques are stored as ``Critique.model_dump(mode="json")``; ``Critique.model_validate``
turns them back into objects.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from typing_extensions import TypedDict

from redraft.agents.base import Message
from redraft.store.base import RoundRecord

Status = Literal["running", "accepted", "max_rounds", "no_change"]
"""``accepted``: every critic passed. ``max_rounds``: the round budget ran out.
``no_change``: a revision repeated the previous draft."""


class CorrectionInput(TypedDict):
    """What ``graph.invoke`` takes."""

    prompt: str
    example_id: NotRequired[str]
    """A stable id for the prompt (dataset row id); generated when absent."""
    source: NotRequired[str]
    """Where the prompt came from (a dataset name, a file); stored with the example."""
    labels: NotRequired[dict[str, Any]]
    """Optional ground truth (should refuse, reference answers...), stored with the example."""


class CorrectionState(TypedDict):
    """The full state; nodes return only the keys they change."""

    prompt: str
    example_id: NotRequired[str]
    source: NotRequired[str]
    labels: NotRequired[dict[str, Any]]
    run_id: NotRequired[str | None]
    messages: Annotated[list[Message], operator.add]
    """The conversation the next generation continues (both modes accumulate it)."""
    rounds: Annotated[list[RoundRecord], operator.add]
    """Every draft with its critiques, in order."""
    pending: NotRequired[RoundRecord | None]
    """A draft generated but not yet critiqued."""
    status: NotRequired[Status]
    final: NotRequired[str | None]
