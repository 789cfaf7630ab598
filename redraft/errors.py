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


class NotFoundError(RedraftError, LookupError):
    """No run or experiment has that id (or id prefix); the message lists recent ones."""


class AmbiguousIdError(RedraftError, LookupError):
    """An id prefix that matches more than one run or experiment; the message says to give more."""


class MissingExtraError(RedraftError, ImportError):
    """An optional dependency is not installed; the message names the command that installs it."""


def invalid_fields(where: str, exc: ValueError) -> InputError:
    """An :class:`InputError` listing each bad field of a pydantic ``ValidationError`` by its path
    (``datasets.0.limit: ...``), so a config error names what to fix."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return InputError(f"{where}: {exc}")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in errors()
    )
    return InputError(f"invalid fields in {where}: {problems}")
