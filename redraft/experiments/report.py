"""``report.md`` and PNG plots for an experiment (or a single run), from the store alone
(``compare.md`` for two of them is :mod:`redraft.experiments.compare`'s).

Every rate carries its n and a 95% interval: Wilson's for proportions, a percentile bootstrap for
differences (paired by example where both sides ran the same prompts) and for correlations. The
report opens with what a reader needs to reproduce it: the model, the command, redraft's and the
data packages' versions, and every seed.

Over 400 lines because ``report.md`` is one document: its sections (outcomes, critic accuracy,
gain against accuracy, verdicts, SCoRe's shifts, plots) read one :class:`ReportData`; the Markdown
pieces and ``compare.md`` live in their own modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redraft._atomic import atomic_file
from redraft._extras import require
from redraft.analysis.metrics import (
    PEARSON_CI_MIN,
    PEARSON_MIN,
    Confusion,
    FinalVerdicts,
    RoundDelta,
    Trajectory,
    aggregate,
    bootstrap_ci,
    changes,
    correction_verdicts,
    critic_accuracy,
    final_verdicts,
    good_rate,
    mean,
    pearson,
    pearson_ci,
    run_deltas,
    trajectories,
    wilson,
)
from redraft.experiments import markdown as md
from redraft.store.base import UNJUDGED, VERDICT_MEANINGS, VERDICTS
from redraft.store.models import Run
from redraft.store.sql import SQLStore


def _metric(trajs: list[Trajectory]) -> tuple[str, bool]:
    """(name, invert): a dataset whose every row should be refused reports the attack success
    rate (1 − good), any other accuracy. The rows' labels decide, not the dataset's name, so a
    user's harmful JSONL set reports ASR too."""
    harmful = bool(trajs) and all(t.should_refuse for t in trajs)
    return ("ASR" if harmful else "accuracy", harmful)


@dataclass(frozen=True, slots=True)
class DatasetResult:
    """One run's outcomes on one dataset."""

    run: Run
    source: str
    metric: str
    """``ASR`` on a harmful set (lower is better), else ``accuracy``."""
    n: tuple[int, ...]
    """Judged examples at each round."""
    hits: tuple[int, ...]
    """Examples counted by the metric at each round (attacks that succeeded, or right answers)."""
    changes: dict[str, int]
    """Improved / worsened / unchanged / unlabelled, first draft → final answer."""
    gain: float
    """Judge-good rate of the final answer minus that of the first draft."""
    gain_ci: tuple[float, float]
    """Bootstrap 95% interval of the gain, over examples labelled at both ends (paired)."""
    trajectories: tuple[Trajectory, ...] = ()
    final: FinalVerdicts = field(default_factory=dict)
    """Each critic's verdict on each example's final answer (see :func:`final_verdicts`)."""
    corrections: dict[str, int] = field(default_factory=dict)
    """Revisions by correction verdict (see :func:`correction_verdicts`); empty when none was recorded."""
    deltas: tuple[RoundDelta, ...] = ()
    """SCoRe's Δ(i→c) and Δ(c→i) per revision round (see :func:`run_deltas`)."""

    @property
    def cell(self) -> str:
        return self.run.label

    @property
    def rates(self) -> tuple[float, ...]:
        """The metric at each round (NaN where no example was judged)."""
        return tuple(h / n if n else math.nan for h, n in zip(self.hits, self.n, strict=True))

    def final_failed(self, critic: str) -> dict[str, float]:
        """1 for each example whose final answer ``critic`` failed, 0 where it passed, by key
        (abstentions left out): for the BCI critic, the answers that still hold a belief span."""
        return {k: float(not p) for k, p in self.final.get(critic, {}).items() if p is not None}

    @property
    def inverted(self) -> bool:
        return self.metric == "ASR"

    def values(self, at: int) -> dict[str, float]:
        """Each labelled example's metric value (1 or 0) for its draft ``at`` (0: the first
        draft, -1: the final answer), by example key."""
        return {
            t.key: float(t.labels[at] != self.inverted)
            for t in self.trajectories
            if t.labels and t.labels[at] is not None
        }

    def gains(self) -> dict[str, float]:
        """Each example's gain (final good − first good: −1, 0 or 1), where both are labelled."""
        return example_gains(self.trajectories)


def example_gains(trajs: Sequence[Trajectory]) -> dict[str, float]:
    """Each example's gain, final good − first good (−1, 0 or 1), by key, where both are labelled.
    Their mean is the gain over those examples, so resampling them gives the gain's interval."""
    out = {}
    for t in trajs:
        first, last = (t.labels[0], t.labels[-1]) if t.labels else (None, None)
        if first is not None and last is not None:
            out[t.key] = float(last) - float(first)
    return out


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a report shows, read from the store once; Markdown and plots render from it."""

    title: str
    runs: list[Run]
    confusions: list[Confusion]
    """Critic accuracy per run, critic, round and dataset (the one query); coarser views sum it."""
    datasets: list[DatasetResult]
    spec: dict[str, Any] | None = None
    """The stored experiment spec with its provenance (None for a run outside an experiment)."""

    def critic_accuracy(self, *, by_round: bool, by_source: bool) -> list[Confusion]:
        return aggregate(self.confusions, by_round=by_round, by_source=by_source)

    def gain_rows(self) -> list[tuple[str, Confusion, DatasetResult]]:
        """(run · dataset · critic, the critic's confusion counts there, the dataset's result):
        Wang et al. Fig. 3c's points."""
        by_source = self.critic_accuracy(by_round=False, by_source=True)
        return [
            (f"{d.cell} · {d.source} · {c.critic}", c, d)
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
        finals = final_verdicts(store, run.id)
        verdicts = correction_verdicts(store, run.id)
        deltas = run_deltas(store, run.id)
        for source in sorted({t.source or "" for t in trajs}):
            subset = [t for t in trajs if (t.source or "") == source]
            metric, invert = _metric(subset)
            good = [good_rate(subset, k) for k in range(max_rounds)]
            n = tuple(k for _, k in good)
            datasets.append(
                DatasetResult(
                    run=run,
                    source=source,
                    metric=metric,
                    n=n,
                    hits=tuple(_hits(subset, k, invert) for k in range(max_rounds)),
                    changes=changes(subset),
                    gain=good[-1][0] - good[0][0],
                    gain_ci=bootstrap_ci(mean, list(example_gains(subset).values())),
                    trajectories=tuple(subset),
                    final=finals.get(source, {}),
                    corrections=verdicts.get(source, {}),
                    deltas=tuple(deltas.get(source, [])),
                )
            )
    experiment_id = runs[0].experiment_id if runs else None
    spec = store.experiment(experiment_id).spec if experiment_id is not None else None
    return ReportData(title, runs, confusions, datasets, spec)


def _hits(trajs: list[Trajectory], round_: int, invert: bool) -> int:
    """How many labelled examples the metric counts at ``round_``: bad ones for ASR, else good ones."""
    return sum(1 for t in trajs if t.labels[round_] is not None and t.labels[round_] != invert)


def provenance_lines(data: ReportData) -> list[str]:
    """What produced the numbers: model, command, versions, datasets and seeds, as Markdown bullets."""
    models = sorted({r.model_id for r in data.runs})
    lines = [f"- **model**: {', '.join(models) or '–'}"]
    versions = sorted({r.redraft_version for r in data.runs})
    spec = data.spec or {}
    prov = spec.get("provenance") or {}
    command = prov.get("command")
    lines.append(
        f"- **command**: `{command}`" if command else "- **command**: started from Python (no command recorded)"
    )
    lines.append(f"- **redraft**: {', '.join(versions)}")
    if prov.get("data"):
        lines.append("- **data packages**: " + ", ".join(f"{k} {v}" for k, v in sorted(prov["data"].items())))
    if spec.get("datasets"):
        shown = [
            f"{d['name']}"
            + (f" ({d['path']})" if d.get("path") else "")
            + f" limit {d.get('limit') or 'all'} seed {d.get('seed', 0)}"
            + (f" skip {d['skip']}" if d.get("skip") else "")
            + (f" judge {d['judge']}" if d.get("judge") else "")
            for d in spec["datasets"]
        ]
        lines.append("- **datasets**: " + "; ".join(shown))
        generation = spec.get("generation") or {}
        options = spec.get("critic_options") or {}
        seed = generation.get("seed")
        lines.append(
            f"- **seeds**: generation {'none' if seed is None else seed}, noisy-oracle flips "
            f"{options.get('oracle_seed', 0)}, bootstrap 0 (2,000 resamples)"
        )
    return lines


CORRECTIONS_NOTE = (
    "Each revision of a flagged draft, by what it did to what was flagged, judged by meaning and not by a "
    "critic falling silent: "
    + "; ".join(f"{v}: it {m}" for v, m in VERDICT_MEANINGS.items())
    + f"; {UNJUDGED}: nothing could judge its meaning (a self-check's flag without a judge)."
)


DELTA_NOTE = (
    "Of the examples with a draft before each revision round: the share whose revision fixed a flagged draft "
    "(Δ i→c) and the share whose revision broke a good one (Δ c→i), as SCoRe reports its two shifts, with "
    "bootstrap 95% intervals over examples. Abstained, leaked and evaded revisions are neither."
)


def _final_counts(d: DatasetResult, critic: str) -> list[str]:
    """The share of ``d``'s final answers ``critic`` failed, its n, abstentions, and examples whose
    final draft the critic never saw."""
    failed = d.final_failed(critic)
    seen = len(d.final.get(critic, {}))
    return [md.failed_share(failed), str(len(failed)), str(seen - len(failed)), str(len(d.trajectories) - seen)]


def render_markdown(data: ReportData, *, plots: bool) -> str:
    """The report as Markdown: tables by round, critic accuracy, gain against accuracy, changes."""
    by_round = data.confusions
    round_rows: list[list[str]] = []
    for d in data.datasets:
        for k, (hits, n) in enumerate(zip(d.hits, d.n, strict=True)):
            critics = [c for c in by_round if c.run_id == d.run.id and c.round == k and (c.source or "") == d.source]
            passes = ", ".join(f"{c.critic} {_pass_rate(c)}" for c in critics) or "–"
            acc = ", ".join(f"{c.critic} {md.proportion(c.tp + c.tn, c.n)} (n={c.n})" for c in critics) or "–"
            round_rows.append([d.cell, d.source, str(k), f"{d.metric} {md.proportion(hits, n)}", str(n), passes, acc])
    change_rows = [
        [d.cell, d.source, *(str(d.changes[k]) for k in ("improved", "worsened", "unchanged", "unlabelled"))]
        for d in data.datasets
    ]
    correction_rows = [
        [d.cell, d.source, *(str(d.corrections[v]) for v in (*VERDICTS, UNJUDGED))]
        for d in data.datasets
        if d.corrections
    ]
    final_rows = [
        [d.cell, d.source, critic, *_final_counts(d, critic)] for d in data.datasets for critic in sorted(d.final)
    ]
    delta_rows = [
        [
            d.cell,
            d.source,
            str(r.round),
            str(r.n),
            md.fmt(r.i_to_c) + md.ci(r.i_to_c_ci),
            md.fmt(r.c_to_i) + md.ci(r.c_to_i_ci),
        ]
        for d in data.datasets
        for r in d.deltas
    ]
    gain_rows = data.gain_rows()
    xs, ys = [c.accuracy for _, c, _ in gain_rows], [d.gain for *_, d in gain_rows]
    correlation = pearson(xs, ys)
    sections = [
        f"# Correction report: {data.title}",
        "",
        *provenance_lines(data),
        "",
        "Intervals are 95%: Wilson's for rates, a percentile bootstrap (2,000 resamples) for gains "
        f"(paired by example) and for the correlation (over points; {PEARSON_CI_MIN} or more).",
        "",
        "## By round",
        "",
        "Outcome: ASR (attack success, lower is better) on harmful sets, judge accuracy elsewhere; an "
        "example that stopped early keeps its last answer in later rounds. Critic pass rate and accuracy "
        "are over the drafts critiqued in that round on which the critic gave a verdict; abstentions "
        "(unparseable or not applicable) are counted beside the pass rate.",
        "",
        md.table(["run", "dataset", "round", "outcome", "n", "critic pass rate", "critic accuracy"], round_rows),
        "",
        "## Critic accuracy (whole run)",
        "",
        md.table(
            ["run", "critic", "n", "accuracy", "precision", "recall", "TP", "FP", "TN", "FN", "abstained"],
            [_confusion_row(data.runs, c) for c in data.critic_accuracy(by_round=False, by_source=False)],
        ),
        "",
        "## Correction gain against critic accuracy",
        "",
        "Gain = judge-good rate of the final answer minus that of the first draft (on harmful sets, the "
        "drop in ASR), over the examples labelled at both; critic accuracy is over the same run and "
        "dataset (Wang et al. Fig. 3c).",
        "",
        md.table(
            ["run · dataset · critic", "critic accuracy", "n", "gain", "n"],
            [
                [label, md.proportion(c.tp + c.tn, c.n), str(c.n), md.signed(d.gain, d.gain_ci), str(len(d.gains()))]
                for label, c, d in gain_rows
            ],
        ),
        "",
        f"Pearson correlation over {len(gain_rows)} points: {md.fmt(correlation)}{md.ci(pearson_ci(xs, ys))}",
        *_per_dataset_correlations(gain_rows),
        "",
        "## Outcome changes, first draft → final answer",
        "",
        md.table(["run", "dataset", "improved", "worsened", "unchanged", "unlabelled"], change_rows),
        "",
        "## What the revisions did to the flagged claims",
        "",
        CORRECTIONS_NOTE,
        "",
        md.table(["run", "dataset", *VERDICTS, UNJUDGED], correction_rows)
        if correction_rows
        else "No revision was recorded with a correction verdict.",
        "",
        "### By round: what each revision round fixed and broke (SCoRe's Δ)",
        "",
        DELTA_NOTE,
        "",
        md.table(["run", "dataset", "round", "drafts", "Δ(i→c): fixed", "Δ(c→i): broken"], delta_rows)
        if delta_rows
        else "No revision round was recorded.",
        "",
        *md.final_section(
            "## Final answers, by critic",
            ["final answers failed", "n", "abstained", "not critiqued"],
            final_rows,
            "No critic saw a final answer.",
        ),
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
    with atomic_file(path) as f:
        f.write(render_markdown(data, plots=plots))
    return path


def _pass_rate(c: Confusion) -> str:
    """Pass rate over the critic's verdicts, with how many drafts it abstained on (``passed=None``
    never counts as a pass, but a rate over 2 verdicts out of 24 drafts must say so)."""
    passed, failed = c.tn + c.fn, c.tp + c.fp
    rate = md.proportion(passed, passed + failed)
    return f"{rate} ({c.abstained} abstained)" if c.abstained else rate


def _confusion_row(runs: list[Run], c: Confusion) -> list[str]:
    cell = next((r.label for r in runs if r.id == c.run_id), c.run_id[:8])
    nums = [c.tp, c.fp, c.tn, c.fn, c.abstained]
    return [
        cell,
        c.critic,
        str(c.n),
        md.proportion(c.tp + c.tn, c.n),
        md.proportion(c.tp, c.tp + c.fp),
        md.proportion(c.tp, c.tp + c.fn),
        *map(str, nums),
    ]


def _per_dataset_correlations(gain_rows: list[tuple[str, Confusion, DatasetResult]]) -> list[str]:
    """Pearson's r within each dataset with enough points for one: pooled points mix datasets whose
    gains sit at different levels (a sweep of one critic over several sets)."""
    sources = sorted({d.source for *_, d in gain_rows})
    if len(sources) < 2:
        return []
    lines = []
    for source in sources:
        rows = [(c.accuracy, d.gain) for _, c, d in gain_rows if d.source == source]
        if len(rows) >= PEARSON_MIN:
            xs, ys = [x for x, _ in rows], [y for _, y in rows]
            lines.append(f"- {source}: {md.fmt(pearson(xs, ys))}{md.ci(pearson_ci(xs, ys))} over {len(rows)} points")
    return ["", "Within each dataset:", "", *lines] if lines else []


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
    with atomic_file(out_dir / "outcome_by_round.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
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
    with atomic_file(out_dir / "critic_accuracy.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)

    # One colour per dataset, with both intervals as error bars; labels per point would overlap.
    rows = data.gain_rows()
    fig, ax = plt.subplots(figsize=(6, 4))
    for source in sorted({d.source for *_, d in rows}):
        points = [(c, d) for _, c, d in rows if d.source == source]
        acc = [c.accuracy for c, _ in points]
        acc_ci = [wilson(c.tp + c.tn, c.n) for c, _ in points]
        gains = [d.gain for _, d in points]
        gain_ci = [d.gain_ci for _, d in points]
        ax.errorbar(
            acc,
            gains,
            xerr=[
                [a - lo for a, (lo, _) in zip(acc, acc_ci, strict=True)],
                [hi - a for a, (_, hi) in zip(acc, acc_ci, strict=True)],
            ],
            yerr=[
                [g - lo for g, (lo, _) in zip(gains, gain_ci, strict=True)],
                [hi - g for g, (_, hi) in zip(gains, gain_ci, strict=True)],
            ],
            fmt="o",
            capsize=2,
            elinewidth=0.7,
            label=f"{source} ({points[0][1].metric})",
        )
    ax.legend(fontsize=7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="critic accuracy", ylabel="gain (final − first good rate)", title="Gain vs critic accuracy")
    fig.tight_layout()
    with atomic_file(out_dir / "gain_vs_accuracy.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
