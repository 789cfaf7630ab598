"""A person as a critic: the graph pauses with LangGraph's ``interrupt()`` and resumes with their verdict.

This is how researchers label critic ground truth in the loop: the run stops at each draft, a
person says pass or fail (and why), and the verdict is logged like any critic's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from redraft.critics.base import Critic, Critique, DraftContext
from redraft.errors import InputError, invalid_fields


class HumanVerdict(BaseModel):
    """What resumes a paused graph: ``Command(resume={"passed": False, "feedback": "..."})``."""

    model_config = ConfigDict(extra="forbid")

    passed: bool | None
    """True: acceptable; False: revise; None: the person abstains."""
    feedback: str = ""


VERDICT_SHAPE = 'Command(resume={"passed": True | False | None, "feedback": "..."})'
"""What a paused human critic expects, quoted in every error about it."""


class HumanCritic(Critic):
    """Pauses the graph at every draft and waits for a person's :class:`HumanVerdict`.

    Needs a graph with a checkpointer (``redraft run --critic human`` at a terminal, or
    ``build_graph(..., checkpointer=...)`` and ``graph.invoke(Command(resume=...), config)``).
    The value the graph pauses with holds the prompt, the draft and the round; after an invalid
    verdict it asks again, with the reason under ``error``.

    Example:
        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> from langgraph.types import Command
        >>> from redraft.agents.testing import ScriptedLLM
        >>> from redraft.graphs import build_graph
        >>> graph = build_graph(llm=ScriptedLLM(["Lyon."]), critics=[HumanCritic()], checkpointer=InMemorySaver())
        >>> cfg = {"configurable": {"thread_id": "t1"}}
        >>> graph.invoke({"prompt": "Capital of France?"}, cfg)["__interrupt__"][0].value["draft"]
        'Lyon.'
        >>> graph.invoke(Command(resume="pass"), cfg)["__interrupt__"][0].value["error"][:55]
        "invalid fields in the human critic's verdict: (top leve"
        >>> graph.invoke(Command(resume={"passed": True}), cfg)["status"]
        'accepted'
    """

    higher_is_better = True  # score: 1 for a pass, 0 for a fail

    def __init__(self, name: str = "human") -> None:
        self.name = name

    def critique(self, items: Sequence[DraftContext]) -> list[Critique]:
        out = []
        for item in items:
            question: dict[str, Any] = {
                "critic": self.name,
                "prompt": item.prompt,
                "draft": item.draft,
                "round": item.round_index,
            }
            verdict = self._ask(question)
            out.append(
                Critique(
                    critic=self.name,
                    passed=verdict.passed,
                    score=None if verdict.passed is None else float(verdict.passed),
                    feedback=verdict.feedback.strip() or "(no feedback)",
                    evidence=({"source": "human"},),
                    latency_s=0.0,
                )
            )
        return out

    def _ask(self, question: dict[str, Any]) -> HumanVerdict:
        """Pause until a valid verdict arrives. A bad one is answered by asking again, with the
        error in the new pause's ``error`` field; raising instead would poison the example, since
        LangGraph replays every stored resume value when the node reruns, the bad one first."""
        from langgraph.types import interrupt

        while True:
            try:
                answer = interrupt(question)
            except RuntimeError as exc:  # called outside a graph: the batched experiment runner
                raise InputError(
                    f"the {self.name} critic pauses a LangGraph graph for a person's verdict; use it with "
                    "`redraft run --critic human` or graph.invoke with a checkpointer, not in experiments"
                ) from exc
            try:
                return HumanVerdict.model_validate(answer)
            except ValidationError as exc:
                error = str(invalid_fields(f"the {self.name} critic's verdict", exc))
                question = {**question, "error": f"{error}; resume with {VERDICT_SHAPE}"}
