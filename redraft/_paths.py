"""Where redraft keeps its caches (models, demo indexes)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$REDRAFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/redraft`` (``~/.cache/redraft``)."""
    if env := os.environ.get("REDRAFT_CACHE_DIR"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "redraft"
