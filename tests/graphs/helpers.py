"""Scripted two-role LLMs for graph tests: drafts for generation calls, checks for critic calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redraft.agents.base import Conversation
from redraft.agents.prompts import CHECK_PROMPTS
from redraft.agents.testing import ScriptedLLM
from redraft.critics.base import Critic, Critique, DraftContext

CHECK_QUESTIONS = {p.question for p in CHECK_PROMPTS.values()}


class Roles:
    """Replies by role: a generation call pops a draft, a self-check call pops a check."""

    def __init__(self, drafts: Sequence[str | Callable[[Conversation], str]], checks: Sequence[str]) -> None:
        self.drafts, self.checks = list(drafts), list(checks)

    def __call__(self, conv: Conversation) -> str:
        queue = self.checks if conv[-1]["content"] in CHECK_QUESTIONS else self.drafts
        if not queue:
            raise AssertionError(f"unexpected call: {conv[-1]['content'][:80]!r}")
        reply = queue.pop(0)
        return reply if isinstance(reply, str) else reply(conv)


def scripted(
    drafts: Sequence[str | Callable[[Conversation], str]], checks: Sequence[str], **kwargs: object
) -> ScriptedLLM:
    roles = Roles(drafts, checks)
    return ScriptedLLM([roles] * (len(drafts) + len(checks)), **kwargs)  # type: ignore[arg-type]


class KeywordCritic(Critic):
    """A deterministic external critic: fails drafts containing a banned word."""

    higher_is_better = True

    def __init__(self, banned: str, name: str = "keyword") -> None:
        self.banned, self.name = banned, name

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        return [
            Critique(
                critic=self.name,
                passed=self.banned not in i.draft,
                score=float(self.banned not in i.draft),
                feedback=f"Do not say {self.banned!r}." if self.banned in i.draft else "",
                evidence=({"banned": self.banned},),
            )
            for i in items
        ]


def use_backend(monkeypatch: Any, load: Callable[[Any], Any]) -> None:
    """Make every backend of the registry load through ``load(spec)``: the one seam where tests
    put a test double in place of a model."""
    from redraft.agents.backends import BACKENDS

    for name in list(BACKENDS):
        monkeypatch.setitem(BACKENDS, name, load)


def use_llm(monkeypatch: Any, llm: Any) -> None:
    """Every backend returns ``llm``."""
    use_backend(monkeypatch, lambda spec: llm)
