"""Critics: judge drafts. ``CRITICS`` maps the names used on the command line to factories."""

from __future__ import annotations

from collections.abc import Callable

from redraft.agents.base import LLM
from redraft.critics.base import Critic, Critique, DraftContext
from redraft.critics.self_critic import SelfCritic, parse_verdict
from redraft.errors import InputError

CriticFactory = Callable[[LLM], Critic]

CRITICS: dict[str, CriticFactory] = {
    "self": lambda llm: SelfCritic(llm),
    "self-error": lambda llm: SelfCritic(llm, check="error", name="self-error"),
    "self-harm": lambda llm: SelfCritic(llm, check="harm", name="self-harm"),
    "self-bias": lambda llm: SelfCritic(llm, check="bias", name="self-bias"),
}


def make_critic(name: str, llm: LLM) -> Critic:
    """Build a critic by its command-line name.

    Example:
        >>> make_critic("nope", None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        redraft.errors.InputError: unknown critic 'nope'; known critics: self, self-bias, self-error, self-harm
    """
    if name not in CRITICS:
        raise InputError(f"unknown critic {name!r}; known critics: {', '.join(sorted(CRITICS))}")
    return CRITICS[name](llm)


__all__ = ["CRITICS", "Critic", "Critique", "DraftContext", "SelfCritic", "make_critic", "parse_verdict"]
