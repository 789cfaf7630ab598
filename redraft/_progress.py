"""Progress as data: long jobs (runs, experiments, index builds, training) report through a
callback, and the command line draws the bars. A library caller passes its own callback or none.

Example:
    >>> seen: list[Progress] = []
    >>> report = reporter(seen.append)
    >>> report(Progress("reading", done=3, total=10, unit="bytes"))
    >>> seen[0].done, seen[0].unit
    (3, 'bytes')
    >>> reporter(None)(Progress("quiet", done=1))  # no callback: nothing happens
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Progress:
    """Where one task of a long job stands. A job may run several tasks at once (one per
    experiment cell); each has its own ``task`` name, and a consumer keeps one bar per name."""

    task: str
    done: int
    total: int | None = None
    status: str = ""
    """What the task is doing now ("round 2: critiquing 8")."""
    unit: Literal["items", "bytes"] = "items"
    note: str | None = None
    """A line worth keeping in a log ("checkpoint saved at step 400"), beside the bar."""


Reporter = Callable[[Progress], None]
"""What a long job calls with each :class:`Progress`."""


def _silent(_: Progress) -> None:
    return None


def reporter(report: Reporter | None) -> Reporter:
    """``report``, or a callback that ignores everything when it is None."""
    return report if report is not None else _silent
