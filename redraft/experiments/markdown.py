"""Markdown pieces of the reports (``report.md`` and ``compare.md``): numbers with their
intervals, tables, and the final-answer section."""

from __future__ import annotations

import math

from redraft.analysis.metrics import wilson


def fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def ci(lo_hi: tuple[float, float]) -> str:
    lo, hi = lo_hi
    return "" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]"


def proportion(k: int, n: int) -> str:
    """``k/n`` with its Wilson 95% interval: ``0.750 [0.47, 0.91]``."""
    return fmt(k / n) + ci(wilson(k, n)) if n else "–"


def signed(x: float, lo_hi: tuple[float, float]) -> str:
    return "–" if math.isnan(x) else f"{x:+.3f}{ci(lo_hi)}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


FINAL_NOTE = (
    "The share of final answers (each example's last draft) that each critic failed: for the BCI critic "
    "(TraceShield), the answers that still hold a verbatim belief-corpus span above τ. Abstentions, and "
    "final drafts the critic never saw, are counted beside and left out of the rate."
)


def final_section(title: str, columns: list[str], rows: list[list[str]], empty: str) -> list[str]:
    """The final-answer table (run, dataset, critic, then ``columns``) under ``title``, with its note."""
    body = table(["run", "dataset", "critic", *columns], rows) if rows else empty
    return [title, "", FINAL_NOTE, "", body, ""]


def failed_share(failed: dict[str, float]) -> str:
    """The share of 1s in :meth:`DatasetResult.final_failed`'s map, with its Wilson interval."""
    return proportion(int(sum(failed.values())), len(failed))
