"""Executors: ``local`` (this process) and ``ray`` (actors sharing one database; ``redraft[ray]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redraft.experiments.executors.base import Executor, LLMFactory, load_llm
from redraft.experiments.executors.local import LocalExecutor

if TYPE_CHECKING:
    from redraft.experiments.executors.ray import RayExecutor

__all__ = ["Executor", "LLMFactory", "LocalExecutor", "RayExecutor", "load_llm"]


def __getattr__(name: str) -> Any:
    # Ray is optional and slow to import: only the ray executor pays for it.
    if name == "RayExecutor":
        from redraft.experiments.executors.ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'redraft.experiments.executors' has no attribute {name!r}")
