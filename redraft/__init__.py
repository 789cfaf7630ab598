"""redraft: agentic self-correction for LLMs.

LangGraph state machines run generate → critique → revise over several rounds, log every round
and every critic's verdict to SQL, and export the revisions as DPO training data.

The package face is lazy: ``import redraft`` loads nothing heavy, and ``redraft.build_graph``
imports the graph (LangGraph) on first use, so ``redraft index build`` never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redraft._lazy import lazy_attributes

if TYPE_CHECKING:
    from redraft._version import __version__
    from redraft.graphs import CorrectionConfig, build_graph

__all__ = ["CorrectionConfig", "__version__", "build_graph"]

# __version__ too: reading it scans the installed distributions (~35 ms of every CLI start).
__getattr__ = lazy_attributes(
    __name__,
    {"CorrectionConfig": "redraft.graphs", "build_graph": "redraft.graphs", "__version__": "redraft._version"},
)
