"""Lazy attributes of a package face: heavy modules (torch, transformers, Ray) load on first use,
so importing the package stays cheap. One helper instead of a hand-written ``__getattr__`` each."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``homes`` (name →
    module) on first access, and keeps it in the package so later accesses are plain lookups.

    Example:
        >>> getattr_ = lazy_attributes("json", {"OrderedDict": "collections"})
        >>> getattr_("OrderedDict").__name__
        'OrderedDict'
        >>> getattr_("missing")
        Traceback (most recent call last):
        AttributeError: module 'json' has no attribute 'missing'
    """

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
