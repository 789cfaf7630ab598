"""``compare.md``: B − A of two experiments or runs, paired by cell and, where both ran the same
prompts, by example, with bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redraft._atomic import atomic_file
from redraft.analysis.metrics import Confusion, diff_ci, mean
from redraft.errors import InputError
from redraft.experiments import markdown as md
from redraft.experiments.report import DatasetResult, ReportData, provenance_lines, report_data
from redraft.store.models import Run
from redraft.store.sql import SQLStore


@dataclass(frozen=True, slots=True)
class Comparison:
    """One dataset under a pair of runs, A and B: B − A of the first draft's outcome (the model
    alone: two models on the same prompts), of the final outcome and of the gain."""

    a: DatasetResult
    b: DatasetResult
    paired: bool
    """Both runs judged the same examples (same keys), so differences are paired by example."""
    first_diff: float
    first_ci: tuple[float, float]
    outcome_diff: float
    outcome_ci: tuple[float, float]
    gain_diff: float
    gain_ci: tuple[float, float]


def _difference(a: dict[str, float], b: dict[str, float]) -> tuple[bool, float, tuple[float, float]]:
    common = sorted(a.keys() & b.keys())
    # Paired when both sides ran the same prompts (the same dataset seed and limit); otherwise two samples.
    paired = bool(common) and len(common) == len(a) == len(b)
    xs, ys = ([a[k] for k in common], [b[k] for k in common]) if paired else (list(a.values()), list(b.values()))
    return paired, mean(ys) - mean(xs), diff_ci(xs, ys, paired=paired)


def _pair_runs(a: ReportData, b: ReportData) -> list[tuple[Run, Run]]:
    cells_b = {r.label: r for r in b.runs}
    pairs = [(r, cells_b[r.label]) for r in a.runs if r.label in cells_b]
    if pairs:
        return pairs
    if len(a.runs) == 1 and len(b.runs) == 1:
        return [(a.runs[0], b.runs[0])]
    raise InputError(
        f"cannot pair the runs: A has cells {', '.join(r.label for r in a.runs)} and B has "
        f"{', '.join(r.label for r in b.runs)}; compare experiments with the same cells, or two single runs"
    )


def compare(a: ReportData, b: ReportData) -> list[Comparison]:
    """Each dataset both sides ran, for each pair of runs (same cell, or the only run of each)."""
    out = []
    for run_a, run_b in _pair_runs(a, b):
        by_source = {d.source: d for d in b.datasets if d.run.id == run_b.id}
        for da in (d for d in a.datasets if d.run.id == run_a.id):
            db = by_source.get(da.source)
            if db is None or da.metric != db.metric:
                continue
            _, first, first_ci = _difference(da.values(0), db.values(0))
            paired, outcome, outcome_ci = _difference(da.values(-1), db.values(-1))
            _, gain, gain_ci = _difference(da.gains(), db.gains())
            out.append(Comparison(da, db, paired, first, first_ci, outcome, outcome_ci, gain, gain_ci))
    return out


COMPARE_COLUMNS = [
    *("run", "dataset", "A final", "n", "B final", "n"),
    *("B − A first draft", "B − A final", "B − A gain", "pairing"),
]


def render_comparison(a: ReportData, b: ReportData) -> str:
    """``compare.md``: B − A for every dataset and paired run, then critic accuracy side by side."""
    rows = []
    comparisons = compare(a, b)  # bootstraps every difference: computed once for both tables
    for c in comparisons:
        da, db = c.a, c.b
        rows.append(
            [
                da.cell if da.cell == db.cell else f"{da.cell} → {db.cell}",
                da.source,
                f"{da.metric} {md.proportion(da.hits[-1], da.n[-1])}",
                str(da.n[-1]),
                f"{db.metric} {md.proportion(db.hits[-1], db.n[-1])}",
                str(db.n[-1]),
                md.signed(c.first_diff, c.first_ci),
                md.signed(c.outcome_diff, c.outcome_ci),
                md.signed(c.gain_diff, c.gain_ci),
                "paired" if c.paired else "independent",
            ]
        )
    final_rows = []
    for c in comparisons:
        for critic in sorted(c.a.final.keys() & c.b.final.keys()):
            fa, fb = c.a.final_failed(critic), c.b.final_failed(critic)
            paired, diff, ci = _difference(fa, fb)
            final_rows.append(
                [
                    c.a.cell if c.a.cell == c.b.cell else f"{c.a.cell} → {c.b.cell}",
                    c.a.source,
                    critic,
                    f"{md.failed_share(fa)} (n={len(fa)})",
                    f"{md.failed_share(fb)} (n={len(fb)})",
                    md.signed(diff, ci),
                    "paired" if paired else "independent",
                ]
            )
    crit_rows = []
    acc_b = {
        (r.label, c.critic): c
        for r in b.runs
        for c in b.critic_accuracy(by_round=False, by_source=False)
        if c.run_id == r.id
    }
    for r in a.runs:
        for ca in (c for c in a.critic_accuracy(by_round=False, by_source=False) if c.run_id == r.id):
            cb = acc_b.get((r.label, ca.critic))
            if cb is None:
                continue
            diff = cb.accuracy - ca.accuracy
            crit_rows.append(
                [
                    r.label,
                    ca.critic,
                    f"{md.proportion(ca.tp + ca.tn, ca.n)} (n={ca.n})",
                    f"{md.proportion(cb.tp + cb.tn, cb.n)} (n={cb.n})",
                    md.signed(diff, diff_ci(_outcomes(ca), _outcomes(cb), paired=False)),
                ]
            )
    return "\n".join(
        [
            "# Comparison: B − A",
            "",
            f"**A**: {a.title}",
            "",
            *provenance_lines(a),
            "",
            f"**B**: {b.title}",
            "",
            *provenance_lines(b),
            "",
            "Differences are B − A with 95% percentile-bootstrap intervals (2,000 resamples): paired by "
            "example where both ran the same prompts, else two independent samples. Outcomes are ASR (lower "
            "is better) or accuracy, of the first draft (the model alone) and of the final answer; gain is "
            "final − first judge-good rate.",
            "",
            "## Outcomes",
            "",
            md.table(COMPARE_COLUMNS, rows),
            "",
            *md.final_section(
                "## Final answers failed, by critic",
                ["A", "B", "B − A", "pairing"],
                final_rows,
                "No critic saw final answers under both.",
            ),
            "## Critic accuracy (whole run)",
            "",
            md.table(["run", "critic", "A", "B", "B − A"], crit_rows) if crit_rows else "No critic ran under both.",
            "",
        ]
    )


def _outcomes(c: Confusion) -> list[float]:
    """A critic's verdicts as 1 (right) and 0 (wrong), for bootstrapping its accuracy."""
    return [1.0] * (c.tp + c.tn) + [0.0] * (c.fp + c.fn)


def write_comparison(store: SQLStore, ident_a: str, ident_b: str, out_dir: Path) -> Path:
    """Write ``compare.md`` for two experiments or runs (B − A); return its path."""
    text = render_comparison(report_data(store, ident_a), report_data(store, ident_b))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "compare.md"
    with atomic_file(path) as f:
        f.write(text)
    return path
