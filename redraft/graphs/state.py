"""The correction graph's state.

Everything in the state is plain JSON (strings, numbers, lists, dicts), so every LangGraph
checkpointer (memory, SQLite, Postgres, strict msgpack) round-trips it without custom types.
Critiques are stored as ``Critique.model_dump(mode="json")``; ``Critique.model_validate``
turns them back into objects.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, Literal, NotRequired, get_origin, get_type_hints

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
    """The conversation so far, every strategy's turns appended. A multi-turn strategy's revision
    continues it; a single-turn one (``Strategy.single_turn``) is asked afresh, but its turn is
    still recorded here."""
    rounds: Annotated[list[RoundRecord], operator.add]
    """Every draft with its critiques, in order."""
    pending: NotRequired[RoundRecord | None]
    """A draft generated but not yet critiqued."""
    pending_candidates: NotRequired[list[dict[str, Any]] | None]
    """The ``best_of`` revisions not kept, until the pending draft's round records them."""
    status: NotRequired[Status]
    final: NotRequired[str | None]


def _reducers() -> dict[str, Callable[[Any, Any], Any]]:
    """The reducer of each state key that has one, read from the annotations LangGraph reads."""
    hints = get_type_hints(CorrectionState, include_extras=True)
    return {
        key: meta
        for key, hint in hints.items()
        if get_origin(hint) is Annotated
        for meta in hint.__metadata__[:1]
        if callable(meta)
    }


REDUCERS = _reducers()
"""State key → reducer (``messages`` and ``rounds`` append). Code that steps the graph's nodes by
hand (the batched driver, :mod:`redraft.graphs.runs`, and the corrections benchmark) merges updates
with :func:`apply_update`, never its own copy."""


def apply_update(state: CorrectionState, update: dict[str, Any]) -> None:
    """Merge a node's update into ``state`` in place, as LangGraph's channels would: a key with a
    reducer combines the old value with the update, any other key is overwritten.

    Example:
        >>> s: CorrectionState = {"prompt": "hi", "messages": [], "rounds": []}
        >>> apply_update(s, {"messages": [{"role": "user", "content": "hi"}], "status": "running"})
        >>> len(s["messages"]), s["status"]
        (1, 'running')
    """
    for key, value in update.items():
        reducer = REDUCERS.get(key)
        current = state.get(key)
        state[key] = reducer(current if current is not None else [], value) if reducer else value  # type: ignore[literal-required]
