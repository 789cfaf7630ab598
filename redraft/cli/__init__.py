"""The ``redraft`` command line. It parses options and prints; the work is done by the library.

Commands, by module:

- ``runs``: ``demo``, ``run``, ``show``
- ``experiments``: ``experiment run``, ``report``, ``calibrate``
- ``export``: ``export dpo``, ``export sft``
- ``train``: ``train dpo``, ``verifier train``, ``verifier export``
- ``index``: ``index build``, ``index stats``, ``index verify``, ``index query``, ``index calibrate``
- ``data``: ``data install``, ``data list``
- ``view``: ``view``, ``serve``
"""

from __future__ import annotations

# Each module adds its commands to `app` when imported; the order is `redraft --help`'s.
from redraft.cli import data, experiments, export, index, runs, train, view  # noqa: F401
from redraft.cli._common import app
from redraft.cli.runs import DEMO_BCI_MIN_LEN, DEMO_BCI_THRESHOLD, DEMO_PROMPTS

__all__ = ["DEMO_BCI_MIN_LEN", "DEMO_BCI_THRESHOLD", "DEMO_PROMPTS", "app"]
