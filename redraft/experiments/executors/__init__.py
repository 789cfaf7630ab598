"""Executors: ``local`` (this process) and ``ray`` (actors sharing one database; ``redraft[ray]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes
from redraft.errors import InputError
from redraft.experiments.executors.base import Executor, LLMFactory, load_llm
from redraft.experiments.executors.local import LocalExecutor

if TYPE_CHECKING:
    from redraft.experiments.executors.ray import RayExecutor

__all__ = ["EXECUTORS", "Executor", "LLMFactory", "LocalExecutor", "RayExecutor", "load_llm", "make_executor"]


def _local(*, workers: int, shard: tuple[int, int], llm_factory: LLMFactory | None) -> Executor:
    return LocalExecutor(llm_factory=llm_factory, shard=shard, workers=workers)


def _ray(*, workers: int, shard: tuple[int, int], llm_factory: LLMFactory | None) -> Executor:
    if shard != (0, 1):
        raise InputError("--shard is for the local executor; the ray executor shards the experiment over its actors")
    from redraft.experiments.executors.ray import RayExecutor

    # Each actor loads its own model with load_llm: a factory from the driver would have to pickle.
    return RayExecutor(workers)  # fails early, naming the extra, without Ray


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": _local, "ray": _ray}
"""Executors by ``--executor`` name; each takes ``workers``, ``shard`` and ``llm_factory``."""


def make_executor(
    name: str,
    *,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    llm_factory: LLMFactory | None = None,
) -> Executor:
    """The executor named ``name``, or an error listing the known ones.

    Example:
        >>> type(make_executor("local")).__name__
        'LocalExecutor'
    """
    if name not in EXECUTORS:
        raise InputError(f"unknown executor {name!r}; known executors: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers=workers, shard=shard, llm_factory=llm_factory)


# Ray is optional and slow to import: only the ray executor pays for it.
__getattr__ = lazy_attributes(__name__, {"RayExecutor": "redraft.experiments.executors.ray"})
