"""The installed version, in its own module so that any layer can record it without importing the
package face (which would load the graph, LangGraph and SQLAlchemy)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("redraft")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
