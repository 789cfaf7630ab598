"""``report.md`` and PNG plots for an experiment (or a single run), from the store alone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from redraft._extras import require
from redraft.store.metrics import Confusion, Trajectory, changes, critic_accuracy, good_rate, pearson, trajectories
from redraft.store.models import Run
from redraft.store.sql import SQLStore


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a plot: a run's metric by round for one dataset."""

    label: str
    values: tuple[float, ...]


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


def write_report(store: SQLStore, ident: str, out_dir: Path, *, plots: bool = True) -> Path:
    """Write ``report.md`` (and plots) for an experiment id or run id; return the report path.

    Tables: outcome rate, critic pass rate and critic accuracy per round; the correction gain
    against critic accuracy with their correlation (Wang et al. Fig. 3c); improved / worsened /
    unchanged counts per run.
    """
    title, runs = store.resolve(ident)
    run_ids = [r.id for r in runs]
    conf_round = critic_accuracy(store, run_ids, by_source=True)
    conf_source = critic_accuracy(store, run_ids, by_round=False, by_source=True)
    conf_all = {(c.run_id, c.critic): c for c in critic_accuracy(store, run_ids, by_round=False)}
    sections = [f"# Correction report: {title}", ""]

    outcome_series: list[Series] = []
    gain_points: list[tuple[str, float, float]] = []
    round_rows: list[list[str]] = []
    change_rows: list[list[str]] = []
    for run in runs:
        max_rounds = int(run.config.get("max_rounds", 1))
        trajs = trajectories(store, run.id, max_rounds)
        cell = run.cell or run.name or run.id[:8]
        for source in sorted({t.source or "" for t in trajs}):
            subset = [t for t in trajs if (t.source or "") == source]
            metric, invert = _metric(subset)
            rates = []
            for k in range(max_rounds):
                rate, n = good_rate(subset, k)
                value = 1 - rate if invert and not math.isnan(rate) else rate
                rates.append(value)
                critics = [c for c in conf_round if c.run_id == run.id and c.round == k and (c.source or "") == source]
                passes = ", ".join(f"{c.critic} {_pass_rate(c)}" for c in critics) or "–"
                acc = ", ".join(f"{c.critic} {_fmt(c.accuracy)}" for c in critics) or "–"
                round_rows.append([cell, source, str(k), f"{metric} {_fmt(value)}", str(n), passes, acc])
            outcome_series.append(Series(f"{cell} · {source} ({metric})", tuple(rates)))
            counts = changes(subset)
            change_rows.append(
                [cell, source, *(str(counts[k]) for k in ("improved", "worsened", "unchanged", "unlabelled"))]
            )
            first, last = good_rate(subset, 0)[0], good_rate(subset, max_rounds - 1)[0]
            for c in (c for c in conf_source if c.run_id == run.id and (c.source or "") == source):
                gain_points.append((f"{cell} · {source} · {c.critic}", c.accuracy, last - first))

    correlation = pearson([a for _, a, _ in gain_points], [g for *_, g in gain_points])
    sections += [
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
            [_confusion_row(runs, c) for c in conf_all.values()],
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
    out_dir.mkdir(parents=True, exist_ok=True)
    if plots:
        _plots(out_dir, outcome_series, critic_accuracy(store, run_ids), runs, gain_points)
        sections += ["![outcome by round](outcome_by_round.png)", "", "![critic accuracy](critic_accuracy.png)", ""]
        sections += ["![gain vs accuracy](gain_vs_accuracy.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(sections), encoding="utf-8")
    return path


def _pass_rate(c: Confusion) -> str:
    """Pass rate over the critic's verdicts, with how many drafts it abstained on (``passed=None``
    never counts as a pass, but a rate over 2 verdicts out of 24 drafts must say so)."""
    passed, failed = c.tn + c.fn, c.tp + c.fp
    rate = _fmt(passed / (passed + failed)) if passed + failed else "–"
    return f"{rate} ({c.abstained} abstained)" if c.abstained else rate


def _confusion_row(runs: list[Run], c: Confusion) -> list[str]:
    cell = next((r.cell or r.name or r.id[:8] for r in runs if r.id == c.run_id), c.run_id[:8])
    nums = [c.tp, c.fp, c.tn, c.fn, c.abstained]
    return [cell, c.critic, str(c.n), _fmt(c.accuracy), _fmt(c.precision), _fmt(c.recall), *map(str, nums)]


def _plots(
    out_dir: Path,
    outcome: list[Series],
    conf_round: list[Confusion],
    runs: list[Run],
    gain: list[tuple[str, float, float]],
) -> None:
    require("matplotlib", "report")
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for s in outcome:
        ax.plot(range(len(s.values)), s.values, marker="o", label=s.label)
    ax.set(xlabel="round", ylabel="outcome rate", title="Outcome by round", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "outcome_by_round.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    cells = {r.id: r.cell or r.name or r.id[:8] for r in runs}
    for run_id, critic in sorted({(c.run_id, c.critic) for c in conf_round}):
        pts = sorted((c.round or 0, c.accuracy) for c in conf_round if c.run_id == run_id and c.critic == critic)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{cells[run_id]} · {critic}")
    ax.set(xlabel="round", ylabel="critic accuracy", title="Critic accuracy by round", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "critic_accuracy.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([a for _, a, _ in gain], [g for *_, g in gain])
    for label, a, g in gain:
        ax.annotate(label, (a, g), fontsize=6)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="critic accuracy", ylabel="gain (final − first good rate)", title="Gain vs critic accuracy")
    fig.tight_layout()
    fig.savefig(out_dir / "gain_vs_accuracy.png", dpi=120)
    plt.close(fig)
