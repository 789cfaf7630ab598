"""Exceptions raised at redraft's boundaries.

Every error names the bad value and the fix. They subclass the built-in exception a caller
would expect (``ValueError``, ``FileNotFoundError``, ``ConnectionError``) so generic handlers work.
"""

from __future__ import annotations


class RedraftError(Exception):
    """Base class of redraft's own errors."""


class InputError(RedraftError, ValueError):
    """A prompt or configuration value cannot be used (empty, too long, unknown name)."""


class ModelNotFoundError(RedraftError, FileNotFoundError):
    """A model path or hub id could not be resolved offline."""


class StoreUnavailableError(RedraftError, ConnectionError):
    """The database URL given as ``store=`` cannot be opened."""
