"""Judges: ground-truth labels for outcomes (refusal prefixes, reference answers, BBQ options).

``JUDGES`` maps the names datasets declare (``labels["judge"]``) to factories.
"""

from __future__ import annotations

from collections.abc import Callable

from redraft.errors import InputError
from redraft.judges.answer import AnswerJudge
from redraft.judges.base import Judge, JudgeItem, Label
from redraft.judges.bbq import BBQJudge
from redraft.judges.refusal import TEST_PREFIXES, BroadRefusalJudge, RefusalJudge, refused, refused_broad

JUDGES: dict[str, Callable[[], Judge]] = {
    "refusal": RefusalJudge,
    "refusal-broad": BroadRefusalJudge,
    "answer": AnswerJudge,
    "bbq": BBQJudge,
}


def make_judge(name: str) -> Judge:
    """A judge by name, or an error listing the known ones."""
    if name not in JUDGES:
        raise InputError(f"unknown judge {name!r}; known judges: {', '.join(JUDGES)}")
    return JUDGES[name]()


__all__ = [
    "JUDGES",
    "TEST_PREFIXES",
    "AnswerJudge",
    "BBQJudge",
    "BroadRefusalJudge",
    "Judge",
    "JudgeItem",
    "Label",
    "RefusalJudge",
    "make_judge",
    "refused",
    "refused_broad",
]
