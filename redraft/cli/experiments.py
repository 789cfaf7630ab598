"""``redraft experiment run``, ``redraft report`` and ``redraft calibrate``: experiments over datasets,
and what they measured."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.markup import escape
from rich.table import Table

from redraft._db import DB_ENV, DEFAULT_FILE, redact
from redraft.cli._common import Bars, DbOpt, app, cli_errors, console, group, load_model, open_store
from redraft.critics import preflight
from redraft.errors import InputError, RedraftError

experiment_app = group("Multi-round correction experiments over datasets.")
app.add_typer(experiment_app, name="experiment")


def _shard(value: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError as exc:
        raise InputError(f"--shard must look like i/n (e.g. 0/2), got {value!r}") from exc
    return i, n


@experiment_app.command("run")
@cli_errors
def experiment_run(
    spec_file: Annotated[Path | None, typer.Argument(help="Experiment YAML file.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this experiment id (its spec is read from the database).")
    ] = None,
    shard: Annotated[str, typer.Option("--shard", help="Run only shard i of n (i/n), for parallel workers.")] = "0/1",
    db: Annotated[
        str | None,
        typer.Option("--db", envvar=DB_ENV, help="Database URL; overrides the file's `database` (or set REDRAFT_DB)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (local) or actors (ray), one shard each.")
    ] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="local (this machine) | ray (actors; redraft[ray], RAY_ADDRESS).")
    ] = "local",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Overrides the file's `model`, e.g. a `redraft train dpo` checkpoint on the same prompts."
        ),
    ] = None,
) -> None:
    """Run an experiment grid (datasets × critics × modes × max_rounds), or resume one.

    With --workers N this process runs shard 0 and spawns N-1 workers for the other shards;
    each loads its own model and writes to the same database (use PostgreSQL for many workers).
    """
    from redraft.experiments import ExperimentSpec
    from redraft.experiments.executors import make_executor

    if (spec_file is None) == (resume is None):
        raise InputError("pass an experiment file to start, or --resume EXPERIMENT_ID (with --db) to continue")
    if model is not None and resume is not None:
        raise InputError("--model starts a new experiment; a resumed one keeps the model it started with")
    if spec_file is not None:
        spec = ExperimentSpec.from_file(spec_file)
        if model is not None:
            spec = ExperimentSpec.parse({**spec.model_dump(mode="json"), "model": model}, str(spec_file))
        store = open_store(db or spec.database)
        experiment_id = None
    else:
        store = open_store(db or DEFAULT_FILE)
        experiment = store.experiment(cast(str, resume))
        spec, experiment_id = ExperimentSpec.from_stored(experiment.spec, f"experiment {experiment.id}"), experiment.id
    preflight(sorted({name for names in spec.critics for name in names}), spec.critic_options)
    runner = make_executor(executor, workers=workers, shard=_shard(shard), llm_factory=load_model)
    if experiment_id is None:
        # Recorded for reports; a database URL in it (--db) keeps its password masked.
        command = shlex.join(["redraft", *(redact(a) if "://" in a else a for a in sys.argv[1:])])
        experiment_id = store.start_experiment(spec.name, spec.stored(command))
    try:
        with Bars(enabled=not quiet) as bars:
            runner.run(spec, store, experiment_id, progress=bars)
    except RedraftError:
        # Every finished round is stored; say how to continue instead of leaving an anonymous stop.
        console.print(f"[yellow]experiment {experiment_id} stopped; continue with --resume {experiment_id[:8]}[/]")
        raise
    console.print(f"experiment [bold]{experiment_id}[/] done; report: redraft report {experiment_id[:8]} -o report/")


@app.command()
@cli_errors
def report(
    ident: Annotated[str, typer.Argument(help="Experiment id or run id (or a unique prefix).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for report.md and the PNG plots.")],
    other: Annotated[
        str | None, typer.Argument(help="A second experiment or run: write compare.md (this one − the first).")
    ] = None,
    db: DbOpt = DEFAULT_FILE,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw PNG plots (needs matplotlib).")] = True,
) -> None:
    """Write report.md (outcomes, critic accuracy, gain vs accuracy, with 95% intervals) and PNG
    plots; with a second id, compare.md (B − A with bootstrap intervals) instead."""
    from redraft.experiments.compare import write_comparison
    from redraft.experiments.report import write_report

    store = open_store(db, readonly=True)
    if other is not None:
        path = write_comparison(store, ident, other, output)
    else:
        path = write_report(store, ident, output, plots=plots)
    console.print(f"wrote {path}")


@app.command("calibrate")
@cli_errors
def calibrate_command(
    critic: Annotated[str, typer.Argument(help="The critic's name in the runs (e.g. self-harm).")],
    ident: Annotated[str, typer.Argument(help="Experiment id or run id (or a unique prefix).")],
    db: DbOpt = DEFAULT_FILE,
) -> None:
    """Pick a critic's threshold from the judge labels of a run: AUROC, and accuracy, precision and
    recall at the threshold with the best balanced accuracy."""
    from redraft.analysis.metrics import critic_threshold

    store = open_store(db, readonly=True)
    label, runs = store.resolve(ident)
    cal = critic_threshold(store, [r.id for r in runs], critic)
    rule = "≤" if cal.higher_is_better else "≥"
    console.print(f"{critic} on {escape(label)}: {cal.n} judged critiques, {cal.bad} of them on bad drafts")
    table = Table("AUROC", "τ (fail when score " + rule + " τ)", "accuracy", "precision", "recall")
    c = cal.at_tau
    table.add_row(
        f"{cal.auroc:.3f}", f"{cal.score_threshold:.4f}", f"{c.accuracy:.3f}", f"{c.precision:.3f}", f"{c.recall:.3f}"
    )
    console.print(table)
