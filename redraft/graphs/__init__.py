"""LangGraph state machines: the generate → critique → revise correction loop.

The face is lazy: ``redraft.graphs.config`` (what the command line validates its options with)
imports neither LangGraph nor torch; the graph loads on first use of ``build_graph`` and friends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft.graphs.config import MODES, CorrectionConfig, ReviseMode
    from redraft.graphs.correction import CorrectionGraph, Corrector, ThreadReusedError, build_graph, route
    from redraft.graphs.state import CorrectionInput, CorrectionState, Status
    from redraft.store.base import RoundRecord

__all__ = [
    "MODES",
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
        **dict.fromkeys(("MODES", "CorrectionConfig", "ReviseMode"), "redraft.graphs.config"),
        **dict.fromkeys(
            ("CorrectionGraph", "Corrector", "ThreadReusedError", "build_graph", "route"), "redraft.graphs.correction"
        ),
        **dict.fromkeys(("CorrectionInput", "CorrectionState", "Status"), "redraft.graphs.state"),
        "RoundRecord": "redraft.store.base",
    },
)
