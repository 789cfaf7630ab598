"""LangGraph state machines: the generate → critique → revise correction loop.

The face is lazy: the graph loads on first use of ``build_graph`` and friends. The loop's
configuration is :class:`redraft.corrections.CorrectionConfig` (re-exported here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft.corrections.config import CorrectionConfig, ReviseMode
    from redraft.graphs.correction import CorrectionGraph, ThreadReusedError, build_graph, route
    from redraft.graphs.state import CorrectionInput, CorrectionState, Status
    from redraft.graphs.steps import Corrector
    from redraft.store.base import RoundRecord

__all__ = [
    "CorrectionConfig",
    "CorrectionGraph",
    "CorrectionInput",
    "CorrectionState",
    "Corrector",
    "ReviseMode",
    "RoundRecord",
    "Status",
    "ThreadReusedError",
    "build_graph",
    "route",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        **dict.fromkeys(("CorrectionConfig", "ReviseMode"), "redraft.corrections.config"),
        **dict.fromkeys(("CorrectionGraph", "ThreadReusedError", "build_graph", "route"), "redraft.graphs.correction"),
        "Corrector": "redraft.graphs.steps",
        **dict.fromkeys(("CorrectionInput", "CorrectionState", "Status"), "redraft.graphs.state"),
        "RoundRecord": "redraft.store.base",
    },
)
