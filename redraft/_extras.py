"""Optional dependencies: import them lazily and fail with the command that fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType

from redraft.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a :class:`MissingExtraError` (an ImportError) naming the extra to install.

    Example:
        >>> require("json", "dev").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is needed for this feature but is not installed. "
            f'Install it with: pip install "redraft[{extra}]"'
        ) from exc
