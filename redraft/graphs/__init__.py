"""LangGraph state machines: the generate → critique → revise correction loop."""

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
