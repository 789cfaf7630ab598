"""``report.md`` and PNG plots for an experiment (or a single run), from the store alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from redraft._extras import require
from redraft.store.metrics import (
    Confusion,
    Trajectory,
    aggregate,
    changes,
    critic_accuracy,
    good_rate,
    pearson,
    trajectories,
)
from redraft.store.models import Run
from redraft.store.sql import SQLStore


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def _metric(trajs: list[Trajectory]) -> tuple[str, bool]:
    """(name, invert): a dataset whose every row should be refused reports the attack success
    rate (1 − good), any other accuracy. The rows' labels decide, not the dataset's name, so a
    user's harmful JSONL set reports ASR too."""
    harmful = bool(trajs) and all(t.should_refuse for t in trajs)
    return ("ASR" if harmful else "accuracy", harmful)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class DatasetResult:
    """One run's outcomes on one dataset."""

    run: Run
    source: str
    metric: str
    """``ASR`` on a harmful set (lower is better), else ``accuracy``."""
    rates: tuple[float, ...]
    """The metric at each round."""
    n: tuple[int, ...]
    """Judged examples at each round."""
    changes: dict[str, int]
    """Improved / worsened / unchanged / unlabelled, first draft → final answer."""
    gain: float
    """Judge-good rate of the final answer minus that of the first draft."""

    @property
    def cell(self) -> str:
        return self.run.label


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report shows, read from the store once; Markdown and plots render from it."""

    title: str
    runs: list[Run]
    confusions: list[Confusion]
    """Critic accuracy per run, critic, round and dataset (the one query); coarser views sum it."""
    datasets: list[DatasetResult]

    def critic_accuracy(self, *, by_round: bool, by_source: bool) -> list[Confusion]:
        return aggregate(self.confusions, by_round=by_round, by_source=by_source)

    def gain_points(self) -> list[tuple[str, float, float]]:
        """(run · dataset · critic, critic accuracy, gain): Wang et al. Fig. 3c's points."""
        by_source = self.critic_accuracy(by_round=False, by_source=True)
        return [
            (f"{d.cell} · {d.source} · {c.critic}", c.accuracy, d.gain)
            for d in self.datasets
            for c in by_source
            if c.run_id == d.run.id and (c.source or "") == d.source
        ]


def report_data(store: SQLStore, ident: str) -> ReportData:
    """Read everything a report of an experiment id or run id shows."""
    title, runs = store.resolve(ident)
    confusions = critic_accuracy(store, [r.id for r in runs], by_source=True)
    datasets = []
    for run in runs:
        max_rounds = int(run.config.get("max_rounds", 1))
        trajs = trajectories(store, run.id, max_rounds)
        for source in sorted({t.source or "" for t in trajs}):
            subset = [t for t in trajs if (t.source or "") == source]
            metric, invert = _metric(subset)
            good = [good_rate(subset, k) for k in range(max_rounds)]
            rates = tuple(1 - rate if invert and not math.isnan(rate) else rate for rate, _ in good)
            datasets.append(
                DatasetResult(
                    run=run,
                    source=source,
                    metric=metric,
                    rates=rates,
                    n=tuple(n for _, n in good),
                    changes=changes(subset),
                    gain=good[-1][0] - good[0][0],
                )
            )
    return ReportData(title, runs, confusions, datasets)


def render_markdown(data: ReportData, *, plots: bool) -> str:
    """The report as Markdown: tables by round, critic accuracy, gain against accuracy, changes."""
    by_round = data.confusions
    round_rows: list[list[str]] = []
    for d in data.datasets:
        for k, (value, n) in enumerate(zip(d.rates, d.n, strict=True)):
            critics = [c for c in by_round if c.run_id == d.run.id and c.round == k and (c.source or "") == d.source]
            passes = ", ".join(f"{c.critic} {_pass_rate(c)}" for c in critics) or "–"
            acc = ", ".join(f"{c.critic} {_fmt(c.accuracy)}" for c in critics) or "–"
            round_rows.append([d.cell, d.source, str(k), f"{d.metric} {_fmt(value)}", str(n), passes, acc])
    change_rows = [
        [d.cell, d.source, *(str(d.changes[k]) for k in ("improved", "worsened", "unchanged", "unlabelled"))]
        for d in data.datasets
    ]
    gain_points = data.gain_points()
    correlation = pearson([a for _, a, _ in gain_points], [g for *_, g in gain_points])
    sections = [
        f"# Correction report: {data.title}",
        "",
        "## By round",
        "",
        "Outcome: ASR (attack success, lower is better) on harmful sets, judge accuracy elsewhere; an "
        "example that stopped early keeps its last answer in later rounds. Critic pass rate and accuracy "
        "are over the drafts critiqued in that round on which the critic gave a verdict; abstentions "
        "(unparseable or not applicable) are counted beside the pass rate.",
        "",
        _table(["run", "dataset", "round", "outcome", "n", "critic pass rate", "critic accuracy"], round_rows),
        "",
        "## Critic accuracy (whole run)",
        "",
        _table(
            ["run", "critic", "n", "accuracy", "precision", "recall", "TP", "FP", "TN", "FN", "abstained"],
            [_confusion_row(data.runs, c) for c in data.critic_accuracy(by_round=False, by_source=False)],
        ),
        "",
        "## Correction gain against critic accuracy",
        "",
        "Gain = judge-good rate of the final answer minus that of the first draft (on harmful sets, the "
        "drop in ASR); critic accuracy is over the same run and dataset (Wang et al. Fig. 3c).",
        "",
        _table(
            ["run · dataset · critic", "critic accuracy", "gain"], [[p, _fmt(a), _fmt(g)] for p, a, g in gain_points]
        ),
        "",
        f"Pearson correlation over {len(gain_points)} points: {_fmt(correlation)}",
        "",
        "## Outcome changes, first draft → final answer",
        "",
        _table(["run", "dataset", "improved", "worsened", "unchanged", "unlabelled"], change_rows),
        "",
    ]
    if plots:
        sections += ["![outcome by round](outcome_by_round.png)", "", "![critic accuracy](critic_accuracy.png)", ""]
        sections += ["![gain vs accuracy](gain_vs_accuracy.png)", ""]
    return "\n".join(sections)


def write_report(store: SQLStore, ident: str, out_dir: Path, *, plots: bool = True) -> Path:
    """Write ``report.md`` (and plots) for an experiment id or run id; return the report path.

    Tables: outcome rate, critic pass rate and critic accuracy per round; the correction gain
    against critic accuracy with their correlation (Wang et al. Fig. 3c); improved / worsened /
    unchanged counts per run. The store is read once (:func:`report_data`).
    """
    data = report_data(store, ident)
    out_dir.mkdir(parents=True, exist_ok=True)
    if plots:
        _plots(out_dir, data)
    path = out_dir / "report.md"
    path.write_text(render_markdown(data, plots=plots), encoding="utf-8")
    return path


def _pass_rate(c: Confusion) -> str:
    """Pass rate over the critic's verdicts, with how many drafts it abstained on (``passed=None``
    never counts as a pass, but a rate over 2 verdicts out of 24 drafts must say so)."""
    passed, failed = c.tn + c.fn, c.tp + c.fp
    rate = _fmt(passed / (passed + failed)) if passed + failed else "–"
    return f"{rate} ({c.abstained} abstained)" if c.abstained else rate


def _confusion_row(runs: list[Run], c: Confusion) -> list[str]:
    cell = next((r.label for r in runs if r.id == c.run_id), c.run_id[:8])
    nums = [c.tp, c.fp, c.tn, c.fn, c.abstained]
    return [cell, c.critic, str(c.n), _fmt(c.accuracy), _fmt(c.precision), _fmt(c.recall), *map(str, nums)]


def _plots(out_dir: Path, data: ReportData) -> None:
    require("matplotlib", "report")
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for d in data.datasets:
        ax.plot(range(len(d.rates)), d.rates, marker="o", label=f"{d.cell} · {d.source} ({d.metric})")
    ax.set(xlabel="round", ylabel="outcome rate", title="Outcome by round", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "outcome_by_round.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    cells = {r.id: r.label for r in data.runs}
    conf_round = data.critic_accuracy(by_round=True, by_source=False)
    for run_id, critic in sorted({(c.run_id, c.critic) for c in conf_round}):
        pts = sorted((c.round or 0, c.accuracy) for c in conf_round if c.run_id == run_id and c.critic == critic)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{cells[run_id]} · {critic}")
    ax.set(xlabel="round", ylabel="critic accuracy", title="Critic accuracy by round", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "critic_accuracy.png", dpi=120)
    plt.close(fig)

    gain = data.gain_points()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([a for _, a, _ in gain], [g for *_, g in gain])
    for label, a, g in gain:
        ax.annotate(label, (a, g), fontsize=6)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="critic accuracy", ylabel="gain (final − first good rate)", title="Gain vs critic accuracy")
    fig.tight_layout()
    fig.savefig(out_dir / "gain_vs_accuracy.png", dpi=120)
    plt.close(fig)
