"""The installed version, in a module that imports nothing of redraft's, so any layer (the index
build records it in each header) can read it without a cycle."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("redraft")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
