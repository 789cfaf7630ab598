"""redraft: agentic self-correction for LLMs.

LangGraph state machines run generate → critique → revise over several rounds, log every round
and every critic's verdict to SQL, and export the revisions as DPO training data.

The package face is lazy: ``import redraft`` loads nothing heavy, and ``redraft.build_graph``
imports the graph (LangGraph) on first use, so ``redraft index build`` never loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from redraft._version import __version__

if TYPE_CHECKING:
    from redraft.graphs import CorrectionConfig, build_graph

__all__ = ["CorrectionConfig", "__version__", "build_graph"]

_LAZY = {"CorrectionConfig": "redraft.graphs", "build_graph": "redraft.graphs"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'redraft' has no attribute {name!r}")
