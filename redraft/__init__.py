"""redraft: agentic self-correction for LLMs.

LangGraph state machines run generate → critique → revise over several rounds, log every round
and every critic's verdict to SQL, and export the revisions as DPO training data.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("redraft")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"

from redraft.graphs import CorrectionConfig, build_graph

__all__ = ["CorrectionConfig", "__version__", "build_graph"]
